"""SQF010's collections: instances loaded together (a list, a dict or list built from one)
carry the expiry of the session to the elements taken out of them later, and a loop over such
a collection carries an expiry made late in one round to the reads early in the next."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import names
from ..lazy import lazy
from .flow import (
    BindingKind,
    Event,
    EventKind,
    binding_of,
    eager_in,
    inside,
    model_for,
)
from .helpers import dotted

if TYPE_CHECKING:
    import libcst as cst

    from .. import index as index_mod
    from ..passes.base import FileContext
    from .expiry_state import Expiry, Tracked
else:
    cst = lazy("libcst")
    index_mod = lazy("codemods.index")

# `R.scalars().all()`, `R.scalars()`... on the result `R` of `S.execute(select(M))`: its instances
_RESULT_LISTS = (["scalars"], ["scalars", "all"], ["unique", "scalars", "all"], ["scalars", "unique", "all"])
# methods of a dict (or list) that give one of its elements
_TAKE = {"get": True, "pop": True, "setdefault": True}


@dataclass
class Collections:
    """The collections of one session's instances a function holds, by local name, and the
    results of `S.execute(select(M))` (model, relationships loaded eagerly) not yet unpacked."""

    bags: dict[str, Tracked]
    results: dict[str, tuple[str, frozenset[str]]]

    def forget(self, X: str) -> None:
        self.bags.pop(X, None)
        self.results.pop(X, None)


def _unwrap(value: cst.BaseExpression | None) -> cst.BaseExpression | None:
    while isinstance(value, cst.Await):
        value = value.expression
    if isinstance(value, cst.Call) and isinstance(value.func, cst.Name) and value.func.value in ("list", "tuple") \
            and len(value.args) == 1 and not value.args[0].star:
        return _unwrap(value.args[0].value)  # `list(result.scalars().all())`
    return value


def _result_list(value: cst.BaseExpression | None, results: dict[str, tuple[str, frozenset[str]]]) -> str | None:
    """``R.scalars().all()`` where ``R`` holds a session's result: ``R``."""
    chain: list[str] = []
    node = _unwrap(value)
    while isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        chain.insert(0, node.func.attr.value)
        node = node.func.value
    if isinstance(node, cst.Name) and node.value in results and chain in _RESULT_LISTS:
        return node.value
    return None


def bind_collection(ctx: FileContext, e: Event, S: str, sessions_: dict, owned: Collections, make) -> bool:
    """Record the assignment ``e`` when it binds a collection of ``S``'s instances (or a result
    to unpack into one); ``make(model, eager)`` builds the record of a fresh load. True when it did."""
    X = e.name or ""
    value = _unwrap(e.value)
    binding = binding_of(ctx, value, sessions_)
    if binding.kind in (BindingKind.LIST, BindingKind.LOADED) and binding.model is not None:
        model = model_for(ctx, binding.model)
        method = _load_method(value, S)
        if model is not None and binding.kind == BindingKind.LIST:
            owned.bags[X] = make(model, e, eager_in(value))  # type: ignore[arg-type]
            return True
        if model is not None and method == "execute":
            owned.results[X] = (binding.model, eager_in(value))  # type: ignore[arg-type]
            return False  # the caller may still track it as it did
    source = _result_list(value, owned.results)
    if source is not None:
        name, eager = owned.results[source]
        model = model_for(ctx, name)
        if model is not None:
            owned.bags[X] = make(model, e, eager)
            return True
    returned = _returned_list(ctx, value, S)
    if returned is not None:
        owned.bags[X] = make(returned[0], e, returned[1])
        return True
    bag = _comprehended(value, owned.bags)
    if bag is not None:
        owned.bags[X] = bag.element(e)
        return True
    return False


def _load_method(value: cst.BaseExpression | None, S: str) -> str | None:
    if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and dotted(value.func.value) == S:
        return value.func.attr.value
    return None


def _returned_list(ctx: FileContext, value: cst.BaseExpression | None, S: str):
    """``helper(S, ...)``, a project function handed the session that returns a list of
    instances: (model, relationships it loads eagerly)."""
    if not isinstance(value, cst.Call) or not any(dotted(a.value) == S for a in value.args):
        return None
    callee = dotted(value.func)
    if callee is None or callee.startswith("self."):
        return None
    returned = ctx.index.returned(ctx.qualify(callee))
    if returned is None or returned.shape is not index_mod.Stage.LIST:
        return None
    return returned.model, frozenset(returned.function.eager) | eager_in(value)


def _comprehended(value: cst.BaseExpression | None, bags: dict[str, Tracked]) -> Tracked | None:
    """``{u.email: u for u in users}``, ``[u for u in users if ...]``: a collection of the
    elements of a collection ``bags`` holds, as they are."""
    if isinstance(value, cst.DictComp):
        element = value.value
    elif isinstance(value, (cst.ListComp, cst.SetComp)):
        element = value.elt
    else:
        return None
    comp = value.for_in
    if comp.inner_for_in is not None or not isinstance(comp.target, cst.Name) or not isinstance(comp.iter, cst.Name):
        return None
    if not isinstance(element, cst.Name) or element.value != comp.target.value:
        return None
    return bags.get(comp.iter.value)


def taken(value: cst.BaseExpression | None, bags: dict[str, Tracked]) -> tuple[Tracked, bool] | None:
    """``D.get(key)``, ``D[key]``: an element of a collection ``bags`` holds, and whether it
    may be None."""
    value = _unwrap(value)
    if isinstance(value, cst.Subscript) and isinstance(value.value, cst.Name) and value.value.value in bags:
        if len(value.slice) == 1 and isinstance(value.slice[0].slice, cst.Index):
            return bags[value.value.value], False
    if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and value.func.attr.value in _TAKE \
            and isinstance(value.func.value, cst.Name) and value.func.value.value in bags:
        return bags[value.func.value.value], _TAKE[value.func.attr.value]
    return None


def iterated(loop: cst.For, bags: dict[str, Tracked]) -> Tracked | None:
    """The collection a `for` loop walks: ``for u in users``, ``for u in users_by_id.values()``."""
    it = loop.iter
    if isinstance(it, cst.Name):
        return bags.get(it.value)
    if isinstance(it, cst.Call) and not it.args and isinstance(it.func, cst.Attribute) \
            and it.func.attr.value == "values" and isinstance(it.func.value, cst.Name):
        return bags.get(it.func.value.value)
    return None


# --------------------------------------------------------------------------- loops


@dataclass
class Round:
    """A `for X in collection:` loop over instances the session loaded before it."""

    loop: cst.For
    X: str
    obj: Tracked
    start: int  # how many expiries the walk had made when the loop began


def reaches_next_round(e: Event, loop: cst.For) -> bool:
    """Does the code after ``e`` (in the body of ``loop``) go on to the loop's next round:
    no `return`, `raise` (or `break` of this loop) after it in the blocks that hold it?"""
    try:
        start = next(i for i, node in enumerate(e.path) if node is loop)
    except StopIteration:
        return False
    if start + 1 >= len(e.path) or e.path[start + 1] is not loop.body:
        return False  # in the loop's `else`
    inner = False
    for k in range(start + 1, len(e.path)):
        node = e.path[k]
        if k > start + 1 and isinstance(node, (cst.For, cst.While)):
            inner = True  # a `break` below ends that loop, not this one
        if isinstance(node, cst.SimpleStatementLine) and any(isinstance(s, (cst.Return, cst.Raise)) for s in node.body):
            return False
        if not isinstance(node, cst.IndentedBlock) or k + 1 >= len(e.path):
            continue
        body = list(node.body)
        child = e.path[k + 1]
        if child not in body:
            continue
        for stmt in body[body.index(child) + 1:]:  # type: ignore[arg-type]
            if isinstance(stmt, cst.SimpleStatementLine) and any(
                    isinstance(s, (cst.Return, cst.Raise)) or isinstance(s, cst.Break) and not inner for s in stmt.body):
                return False
    return True


@dataclass
class RoundStart:
    """The start of a loop's round, when an expiry later in the round before leaves its element
    expired (loaded before the loop, expired with every instance of the session): the reads of
    the element, and the calls it is handed to (each with what the round set on it before),
    that come before anything reloads it."""

    later: list[Expiry]  # the round's expiries that reach the next round, in order
    reads: list[Event]
    handed: list[tuple[Event, frozenset[str]]]

    def cause(self, e: Event) -> Expiry:
        """The expiry that leaves the element expired at ``e`` in the next round: the first one
        after it (the call ``e`` hands it to, too: its arguments are read before it)."""
        return next(x for x in self.later if x.event.index > e.index or x.event.node is e.value)


def carried_reads(region: list[Event], watch: Round, expiries: list[Expiry], S: str) -> RoundStart | None:
    """What the loop's body does with ``watch.X`` early in a round (see :class:`RoundStart`).
    None when no expiry of the round reaches the next one, or when a refresh, a load through
    the session or a new value of ``X`` comes first."""
    body = watch.loop.body
    later = sorted((x for x in expiries if x.expires_all and inside(x.event, body)
                    and reaches_next_round(x.event, watch.loop)), key=lambda x: x.event.index)
    if not later:
        return None
    model, X = watch.obj.model, watch.X
    readable = model.columns | model.deferred | watch.obj.eager
    loaded: set[str] = set()
    reads: list[Event] = []
    handed: list[tuple[Event, frozenset[str]]] = []
    first = later[0].event
    for e in region:
        if not inside(e, body) or e.index >= first.index and not (e.kind == EventKind.USE and e.value is first.node):
            continue
        if e.kind == EventKind.ASSIGN and e.name == X:
            break
        if e.kind == EventKind.CALL and e.owner == S and (e.name == "refresh" or e.name in names.LOAD_METHODS):
            break  # it may load the element again
        if e.kind == EventKind.WRITE and e.owner == X:
            loaded.add(e.name or "")
        elif e.kind == EventKind.READ and e.owner == X and e.name in readable and e.name not in loaded:
            reads.append(e)
        elif e.kind == EventKind.USE and e.name == X and e.owner:
            handed.append((e, frozenset(loaded)))  # `charge(db, X)`: the callee's reads may be the first
    if not reads and not handed:
        return None
    return RoundStart(later, reads, handed)
