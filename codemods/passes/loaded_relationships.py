"""Which relationships of an object an async function holds are loaded.

An object that a project function loaded with a query (``await get_subscription(db, id)``)
has the relationships that query's loader options named (``selectinload(Subscription.user)``)
and those the mapping loads eagerly (``lazy="selectin"``); every other relationship with the
default ``lazy="select"`` is unloaded, and reading it in async code runs an implicit load,
which raises ``MissingGreenlet`` (``DetachedInstanceError`` once the session closed). An
object reached through a loaded relationship (``user = sub.user``) has, at most, what the same
options name. ``getattr(obj, "rel", default)`` is such a read too: the default catches a
missing attribute, not the failed load.

The loaded set is an over-estimate wherever the code is not plain: every relationship an
eager option of this function, or of a project function it calls, names counts as loaded (a
second query with options fills in the same instance of the identity map), and an object
whose loading query takes options the index cannot read (``*opts``, ``raiseload``, ``"*"``)
is not followed. ``await session.refresh(obj)`` leaves it as it is: a refresh loads again with
the options the object was first loaded with; ``refresh(obj, ["rel"])`` adds ``rel``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING

from ..lazy import lazy
from . import match as m
from .awaited_values import awaitable_attr, comprehension_reads, gather_targets, gathered, is_gather
from .base import nodes, visit_order_children
from .flow import (
    BindingKind,
    Event,
    EventKind,
    binding_of,
    class_of,
    eager_in,
    eager_in_calls,
    falls_through_to,
    keyed_name,
    lazy_relationships_read,
    loaded_eagerly,
    model_for,
    qualname_of,
    raising_relationships_read,
    reachable_only_through,
    read_key,
)
from .helpers import argument_position, dotted

if TYPE_CHECKING:
    import libcst as cst

    from .. import index as index_mod
    from ..index import Function, keyed
    from ..index.facts import Model
    from .base import FileContext
else:
    cst = lazy("libcst")
    index_mod = lazy("codemods.index")
    keyed = lazy("codemods.index.keyed")


@dataclass(frozen=True)
class Holding:
    """A local name holding an ORM instance (or a list of them) whose loaded relationships
    are known."""

    model: Model
    loaded: frozenset[str]  # relationship names loaded (an over-estimate)
    source: str  # what loaded it, for the message: "the query of `get_subscription_by_id`"
    via: str | None  # the relationship read it was reached through: `sub.user`
    detached: bool  # the loading function closed its session before it returned
    path: str = ""  # the loader option that reaches it: `selectinload(Subscription.user).`
    many: bool = False  # a list of instances (its loop variable holds one)
    built: bool = False  # built here (`Model(...)`), not loaded: `loaded` is what it was given
    pending: bool = False  # built and not flushed yet: its reads load nothing
    session: str | None = None  # the session a built object was added to
    maker: str | None = None  # the project function that built it and returned it, as called
    settled: Event | None = None  # the flush, commit or refresh that made a built object persistent
    # a parameter: what each project caller passes (see .loaded_callers); `loaded` is what all
    # of them loaded
    given_by: tuple[Given, ...] = ()
    # the loader-option paths of the query that loaded it (`project.mirrors` for
    # selectinload(Job.project).selectinload(Project.mirrors)), relative to this object; None
    # when not known (then every depth counts `loaded` as loaded)
    tree: frozenset[str] | None = None
    query_calls: frozenset[int] = frozenset()  # id() of the calls in that query's expression
    # for each path in `tree`, the loader option (an argument of `.options(...)`) whose chain
    # ends there, or else the first that loads it: where a missing step is added
    options: tuple[tuple[str, cst.BaseExpression], ...] = ()
    result: bool = False  # the Result of `await session.execute(...)`, not an instance
    # its deferred columns are known unloaded: loaded by a query here whose options do not
    # undefer them (`undefer(Model.col)` loads one; `undefer_group`/`load_only` are not followed)
    deferred_known: bool = False
    # the models on the loading path from the query's entity to this object (this one's
    # included), and the relationships whose eager strategy that path stops (a cycle)
    on_path: frozenset[str] = frozenset()
    stopped: frozenset[str] = frozenset()
    awaitable: bool = False  # `X.awaitable_attrs.rel` not awaited yet: awaiting it gives the instances


@dataclass(frozen=True)
class Given:
    """What one project caller passes a parameter."""

    caller: str  # its qualified name in the module
    line: int  # of the call
    holding: Holding
    through_table: bool  # a call through a table of functions (`HANDLERS[action](db, obj)`)


@dataclass(frozen=True)
class UnloadedRead:
    event: Event  # the read (or the call handing the object to a function that reads it)
    name: str  # the object's local name
    relationship: str
    holding: Holding
    callee: str | None = None  # the project function that reads it, as written
    option: cst.BaseExpression | None = None  # the loader option that stops short of it
    line: int = 0  # of the call, when `option` is given


def unloaded_reads(ctx: FileContext, fn: cst.FunctionDef, evs: list[Event],
                   given: dict[str, Holding] | None = None) -> Iterator[UnloadedRead]:
    """Reads, in the async function ``fn``, of lazy relationships that the query which loaded
    the object did not load, or that an object built here was never given; ``given``: what its
    callers pass its parameters."""
    yield from _walk(ctx, fn, evs, given or {}, None)


def held_at(ctx: FileContext, fn: cst.FunctionDef, evs: list[Event], call: cst.Call, name: str) -> Holding | None:
    """What the async function ``fn`` knows of the object ``name`` where it passes it to ``call``."""
    box: list[Holding | None] = []
    for _ in _walk(ctx, fn, evs, {}, (call, name, box)):
        pass
    return box[0] if box else None


def _walk(ctx: FileContext, fn: cst.FunctionDef, evs: list[Event], given: dict[str, Holding],
          probe: tuple[cst.Call, str, list[Holding | None]] | None) -> Iterator[UnloadedRead]:
    if fn.asynchronous is None:
        return
    sessions = _async_session_params(fn)
    facts = _Facts(ctx, fn)
    held = {k: v for k, v in given.items() if k not in facts.uses.unsure} if given else {}
    seen: set[tuple[str, str]] = set()
    comps: dict[int, cst.CompFor] | None = None
    clause: cst.CompFor | None = None  # the comprehension whose variable is bound in `held`
    for ev in evs:
        comp = None
        if ev.kind in (EventKind.READ, EventKind.METHOD) and held:
            comps = comprehension_reads(fn) if comps is None else comps
            comp = comps.get(id(ev.node))
        if clause is not None and comp is not clause:
            var = clause.target.value  # type: ignore[attr-defined]
            if var in (ev.owner, ev.name):  # the name used otherwise than `var.attr` inside the
                held.pop(var, None)  # comprehension (handed to a call), or outside it: not followed
                clause = None
        if comp is not None and comp is not clause and ev.owner:
            element = _element(ctx, comp.iter, held, sessions)
            held.pop(ev.owner, None)
            if element is not None:
                held[ev.owner] = element
            clause = comp
        if ev.kind == EventKind.METHOD and ev.owner in held and (key := read_key(ev)) in held[ev.owner].model.properties:
            ev = replace(ev, kind=EventKind.READ, name=key)  # `X.to_dict()`: what the method reads
        if probe is not None and ev.kind == EventKind.USE and ev.value is probe[0] and ev.name == probe[1]:
            h = held.get(ev.name)
            probe[2].append(None if h is None or facts.guarded else facts.widened(h))
            return
        if ev.kind == EventKind.ASSIGN and ev.name is not None:
            if isinstance(ev.node, cst.For):
                found = _element(ctx, ev.node.iter, held, sessions)
            else:
                found = _load(ctx, ev.value, sessions) or _reached(ctx, ev, held) or _from_result(ev.value, held) \
                    or _awaited_attr(ctx, fn, ev.value, held)
                if found is None and (built := _built(ctx, ev.value)) is not None:
                    found = built if ev.name not in facts.uses.shared else None
            held.pop(ev.name, None)
            for key in [k for k in held if k.startswith(ev.name + "[")]:
                del held[key]  # what `name["key"]` held
            if not isinstance(ev.node, cst.For) and (keys := _keyed(ctx, fn, ev.name, ev.value)) \
                    and ev.name not in facts.uses.unsure:  # the function-wide walk only when a key holds
                held.update(keys)
            if found is not None and ev.name not in facts.uses.unsure:
                held[ev.name] = found
        elif ev.kind == EventKind.CALL and is_gather(ev.owner, ev.name):
            pairs = gathered(ev.statement, ev.node) or []
            results = {a: held.get(x) for a, x in pairs}
            for a, h in results.items():
                held.pop(a, None)
                if h is not None and h.awaitable:
                    held[a] = replace(h, awaitable=False)
        elif ev.kind == EventKind.CALL:
            _session_call(ctx, ev, held)
        elif ev.kind == EventKind.WRITE and ev.owner in held and ev.name:
            h = held[ev.owner]
            held[ev.owner] = replace(h, loaded=h.loaded | {ev.name})
        elif ev.kind == EventKind.USE and ev.name in held and not held[ev.name].many and not held[ev.name].result \
                and not held[ev.name].awaitable \
                and not held[ev.name].given_by and not held[ev.name].pending and isinstance(ev.value, cst.Call):
            h = facts.widened(held[ev.name])
            deep = _read_by_callee(ctx, ev.value, ev.node, h, facts.outside(h))
            if deep is not None and deep[2] in deep[0].model.deferred and facts.undefers(h):
                deep = None
            if deep is not None and deep[0].model.relationships.get(deep[2]) == "raise" and _caught(ev):
                deep = None
            if deep is not None and not facts.guarded:
                inner, hop, rel = deep
                name = f"{ev.name}.{hop}" if hop else ev.name
                inner = replace(inner, via=name) if hop else inner
                if (name, rel) not in seen:
                    seen.add((name, rel))
                    option = next((node for path, node in h.options if path == hop), None) if hop else None
                    yield UnloadedRead(replace(ev, node=ev.value), name, rel, inner, dotted(ev.value.func), option,
                                       ctx.position(ev.value).start.line if option is not None else 0)
        elif ev.kind == EventKind.READ and ev.owner in held and ev.name and not held[ev.owner].result:
            X = ev.owner
            if ev.name == "awaitable_attrs":  # `await X.awaitable_attrs.rel`: loaded from here on
                del held[X]
                continue
            h = held[X]
            if h.many or h.awaitable:
                continue
            if h.pending:  # not flushed yet: whatever it reads counts as given
                held[X] = replace(h, loaded=h.loaded | set(lazy_relationships_read(h.model, ev.name, h.loaded)))
                continue
            if h.settled is not None and not (reachable_only_through(ev, h.settled)
                                              and falls_through_to(h.settled.path, ev.path)):
                continue  # a branch that may not have flushed it
            if not _unloaded(h, ev.name) and (h.built or ev.name not in h.model.relationships):
                continue  # nothing to report: skip the function-wide facts
            if ev.name in h.model.deferred and facts.undefers(h):
                continue  # another query may load it on the same instance
            h = facts.widened(h)
            rels = [r for r in _unloaded(h, ev.name) if not (h.model.relationships.get(r) == "raise" and _caught(ev))]
            if facts.guarded:
                return
            if rels and h.given_by:
                blamed = blame(h, rels[0], X in given)
                if blamed is None:
                    continue
                h = blamed
            if rels and (X, rels[0]) not in seen:
                seen.add((X, rels[0]))
                yield UnloadedRead(ev, X, rels[0], h)
            elif not rels and not h.built:
                yield from _chained(ctx, ev, h, seen, facts.uses.outer.get(id(ev.node)), facts)


class _Facts:
    """What the function as a whole says, worked out on first use (most async functions never
    need it)."""

    def __init__(self, ctx: FileContext, fn: cst.FunctionDef) -> None:
        self.ctx, self.fn = ctx, fn
        self._outside: dict[frozenset[int], frozenset[str]] = {}

    @property
    def guarded(self) -> bool:
        return self.uses.guarded

    @cached_property
    def uses(self) -> _Uses:
        fn = self.fn
        return self.ctx.cached(("loaded-uses", id(fn)), lambda: _uses(fn))  # a caller's walk asks again

    @cached_property
    def also(self) -> frozenset[str]:
        """Relationships an eager option of the function, or of a project function it calls,
        names: a second query fills them in on the same instance."""
        return eager_in_calls(self.calls) | self.callee_eager

    def undefers(self, h: Holding) -> bool:
        """Does a query other than the one that loaded ``h`` name a column loader option
        (`undefer`, `load_only`)? It may load a deferred column on the same instance."""
        return any(_last(c.func) in ("undefer", *_UNDEFER_ALL) for c in self.calls if id(c) not in h.query_calls)

    def widened(self, h: Holding) -> Holding:
        """Below the first step of a known option tree, only other queries' options widen."""
        return replace(h, loaded=h.loaded | (self.outside(h) if h.tree is not None and h.via else self.also))

    def outside(self, h: Holding) -> frozenset[str]:
        """Relationships named by eager options other than those of the query that loaded
        ``h``: another query may fill them in on any instance of their model."""
        if h.tree is None:
            return self.also
        if h.query_calls not in self._outside:
            calls = [c for c in self.calls if id(c) not in h.query_calls]
            self._outside[h.query_calls] = eager_in_calls(calls) | self.callee_eager
        return self._outside[h.query_calls]

    @cached_property
    def calls(self) -> list[cst.Call]:
        return m.findall(self.fn.body, m.Call())  # type: ignore[return-value]

    @cached_property
    def callee_eager(self) -> frozenset[str]:
        fn = self.fn
        return self.ctx.cached(("callee-eager", id(fn)), lambda: _callee_eager(self.ctx, fn))


def blame(h: Holding, rel: str, param: bool) -> Holding | None:
    """The holding of the first caller that passes an object without ``rel`` loaded, its source
    naming that caller. A read of the parameter itself is reported at a direct call already
    (the callee's ``param_reads``): only a call through a table of functions counts then."""
    for g in h.given_by:
        if (g.through_table or not param) and rel not in g.holding.loaded:
            return replace(h, source=f"{g.holding.source}, in `{g.caller}` (which passes it here, line {g.line}),",
                           detached=g.holding.detached, path=g.holding.path + h.path)
    return None


def _unloaded(h: Holding, attr: str) -> list[str]:
    """The lazy relationships reading ``attr`` loads that ``h`` does not have: for an object
    built here, only collections (a many-to-one may come from the identity map, or be None,
    with no query); or ``attr`` itself, a deferred column its query did not undefer."""
    if attr in h.model.deferred:  # one declared with raiseload raises instead of loading
        known = h.deferred_known and not h.built and attr not in h.model.raising
        return [attr] if known and attr not in h.loaded else []
    rels = [r for r in lazy_relationships_read(h.model, attr, h.loaded, stopped=h.stopped)
            if h.model.relationships.get(r) != "dynamic"]
    rels = [r for r in rels if r in h.model.collections] if h.built else rels
    if h.built:  # what it was given, or nothing (see _unloaded's callers for built objects)
        return rels
    return rels + [r for r in raising_relationships_read(h.model, attr, h.loaded) if r not in rels]


_UNDEFER_ALL = ("undefer_group", "load_only")
_CATCHING = frozenset({"Exception", "BaseException", "InvalidRequestError", "SQLAlchemyError"})


def _caught(ev: Event) -> bool:
    """Is ``ev`` in the body of a ``try`` with a handler that catches InvalidRequestError
    (what reading a ``lazy="raise"`` relationship that was not loaded raises)?"""
    for i, node in enumerate(ev.path[:-1]):
        if isinstance(node, cst.Try) and ev.path[i + 1] is node.body:
            for handler in node.handlers:
                if handler.type is None:
                    return True
                kinds = [e.value for e in handler.type.elements] if isinstance(handler.type, cst.Tuple) \
                    else [handler.type]
                if any(_last(k) in _CATCHING for k in kinds):
                    return True
    return False


def _stray_options(value: cst.CSTNode) -> bool:
    """A loader option outside any ``.options(...)`` call (``db.get(User, 1, options=[...])``)."""
    from ..index.astutil import READABLE_LOADERS

    calls = m.findall(value, m.Call())
    inside = {id(c) for o in calls if _last(o.func) == "options"  # type: ignore[attr-defined]
              for c in m.findall(o, m.Call()) if c is not o}
    return any(id(c) not in inside and _last(c.func) in READABLE_LOADERS | {"raiseload", "noload"}  # type: ignore[attr-defined]
               for c in calls)


def _names_call(node: cst.CSTNode, names: tuple[str, ...]) -> bool:
    return any(_last(c.func) in names for c in m.findall(node, m.Call()))  # type: ignore[attr-defined]


def _session_call(ctx: FileContext, ev: Event, held: dict[str, Holding]) -> None:
    """What a session method call does to the objects held: ``refresh(X, [names])`` loads
    those; a plain ``refresh(X)`` of an object built here leaves every lazy relationship
    unloaded (it has no loader options to load again with); ``add(X)`` then an awaited
    ``flush()``/``commit()`` of that session makes a built object persistent; a rollback or
    an expunge ends the tracking."""
    S, method = ev.owner, ev.name
    X = ev.args[0] if ev.args else None
    if method == "refresh" and X in held:
        named = _refreshed(ev.node)  # type: ignore[arg-type]
        h = held[X]
        if named is None:
            del held[X]
        elif h.built:
            held[X] = replace(h, loaded=(h.loaded | named) if named else named, pending=False,
                              source="refresh" if not named else h.source, settled=ev)
        else:
            held[X] = replace(h, loaded=h.loaded | named)
    elif method == "add" and X in held and held[X].built:
        held[X] = replace(held[X], session=S)
    elif method in ("flush", "commit"):
        pending = [name for name, h in held.items() if h.built and h.session == S and h.pending]
        if pending and any(isinstance(a, cst.Await) and a.expression is ev.node
                           for a in m.findall(ev.statement, m.Await())):
            for name in pending:
                held[name] = replace(held[name], pending=False, settled=ev)
    elif method in ("rollback", "expunge", "expunge_all", "close"):
        for name, h in list(held.items()):
            if h.built and h.session == S:
                del held[name]


def _built(ctx: FileContext, value: cst.BaseExpression | None) -> Holding | None:
    """``X = Model(rel=..., ...)``: an object built here; the relationships it was given."""
    if not isinstance(value, cst.Call):
        return None
    binding = binding_of(ctx, value, {})
    model = model_for(ctx, binding.model) if binding.kind == BindingKind.NEW else None
    if model is None or any(a.star for a in value.args):
        return None
    given = frozenset(a.keyword.value for a in value.args if a.keyword is not None)
    return Holding(model, given, "", None, False, built=True, pending=True)


@dataclass
class _Uses:
    """One walk over a function body: how its names are used."""

    shared: set[str]  # names used otherwise than as `X.attr`, assigned, tested, returned, or
    # handed to a session's add/refresh/flush/expunge: other code may change that object
    unsure: set[str]  # names also bound where the event walk sees no assignment
    # (`a, b = ...`, `with ... as a`, `(a := ...)`, `for a, b in ...`, `a += ...`)
    outer: dict[int, cst.Attribute]  # `X.rel` (by id) -> the `X.rel.other` around it
    guarded: bool = False  # looks at load state itself (`inspect(obj).unloaded`), catches the
    # failed load (`except MissingGreenlet`) or overwrites loaded state (`populate_existing`)


_GUARDS = {"unloaded", "MissingGreenlet", "populate_existing"}


_KEEPING = ("add", "refresh", "flush", "expunge")


def _uses(fn: cst.FunctionDef) -> _Uses:
    out = _Uses(set(), set(), {})
    gathers = gather_targets(fn)
    # each node with its parent and grandparent; the answers are sets and a map by node, so
    # the order of the walk does not matter
    todo: list[tuple[cst.CSTNode, cst.CSTNode | None, cst.CSTNode | None]] = [(fn.body, None, None)]
    while todo:
        node, parent, grand = todo.pop()
        if isinstance(node, cst.Name):
            out.guarded |= node.value in _GUARDS
            if parent is not None and not _kept(node, parent, grand):
                out.shared.add(node.value)
            continue  # a name has no node below it
        if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Attribute) \
                and isinstance(node.value.value, cst.Name):
            out.outer[id(node.value)] = node
        target: cst.CSTNode | None = None
        if isinstance(node, (cst.AssignTarget, cst.For)) and isinstance(node.target, (cst.Tuple, cst.List)):
            target = node.target
        elif isinstance(node, cst.AsName):
            target = node.name
        elif isinstance(node, (cst.NamedExpr, cst.AugAssign)):
            target = node.target
        if target is not None and id(target) not in gathers:
            out.unsure.update(_bound_names(target))
        todo.extend((child, node, parent) for child in visit_order_children(node))
    return out


def _kept(name: cst.Name, parent: cst.CSTNode, grand: cst.CSTNode | None) -> bool:
    """Is this use of a name one that leaves the object to this function?"""
    if isinstance(parent, cst.Attribute):
        return parent.value is name or parent.attr is name
    if isinstance(parent, (cst.AssignTarget, cst.Comparison, cst.ComparisonTarget, cst.If, cst.UnaryOperation,
                           cst.Return, cst.Param, cst.ImportAlias, cst.Decorator)) \
            or isinstance(parent, cst.Call) and parent.func is name:
        return True
    if isinstance(parent, cst.Arg):
        if parent.keyword is name:
            return True
        return parent.keyword is None and isinstance(grand, cst.Call) and isinstance(grand.func, cst.Attribute) \
            and grand.func.attr.value in _KEEPING
    return isinstance(parent, (cst.FunctionDef, cst.ClassDef))


def _bound_names(node: cst.CSTNode) -> Iterator[str]:
    return (n.value for n in nodes(node) if isinstance(n, cst.Name))


def _last(node: cst.CSTNode) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return ""


def _callee_eager(ctx: FileContext, fn: cst.FunctionDef) -> frozenset[str]:
    """Relationships the project functions ``fn`` calls name in eager loader options."""
    out: set[str] = set()
    for call in m.findall(fn.body, m.Call()):
        found = _project_function(ctx, call)  # type: ignore[arg-type]
        if found is not None:
            out |= found.eager
    return frozenset(out)


def _project_function(ctx: FileContext, call: cst.Call) -> Function | None:
    callee = dotted(call.func)
    if callee is None or callee.split(".")[0] in ("self", "cls"):
        return None
    return ctx.index.function(ctx.qualify(callee))


def _async_session_params(fn: cst.FunctionDef) -> dict[str, None]:
    """Parameters annotated as an ``AsyncSession`` (``db: AsyncSession = Depends(get_db)``)."""
    params = [*fn.params.posonly_params, *fn.params.params, *fn.params.kwonly_params]
    return {p.name.value: None for p in params if p.annotation is not None and _names(p.annotation.annotation)}


def _names(node: cst.CSTNode, wanted: str = "AsyncSession", depth: int = 0) -> bool:
    """Does an annotation name ``wanted`` (``AsyncSession``, ``Annotated[AsyncSession, ...]``,
    ``sqlalchemy.ext.asyncio.AsyncSession``)? A plain walk: annotations are small."""
    if isinstance(node, cst.Name):
        return node.value == wanted
    if isinstance(node, cst.Attribute):
        return node.attr.value == wanted
    return depth < 8 and any(_names(child, wanted, depth + 1) for child in visit_order_children(node))


def _load(ctx: FileContext, value: cst.BaseExpression | None, sessions: dict[str, None]) -> Holding | None:
    """What ``value`` loads: ``await load_x(...)``, an async project function returning what its
    query loaded, or a query on an ``AsyncSession`` parameter (``await db.get(User, id)``)."""
    if value is None:
        return None
    binding = binding_of(ctx, value, sessions) if sessions else None  # type: ignore[arg-type]
    if binding is not None and binding.kind in (BindingKind.LOADED, BindingKind.LIST):
        model = model_for(ctx, binding.model)
        if model is None or not _awaited(value) or _opaque(value):
            return None
        plain = not _stray_options(value)  # every loader option is in a `.options(...)` call
        options = option_paths(value) if plain else ()
        level = frozenset(p for p, _ in options if "." not in p)
        return Holding(model, eager_in(value) | level, "its query", None, False,
                       many=binding.kind == BindingKind.LIST, on_path=frozenset({model.qualified}),
                       stopped=_stopped(ctx, model, frozenset({model.qualified})),
                       tree=frozenset(p for p, _ in options) if plain else None, options=options,
                       query_calls=frozenset(id(c) for c in m.findall(value, m.Call())),
                       result=_executed(value), deferred_known=plain and not _names_call(value, _UNDEFER_ALL))
    if not isinstance(value, cst.Await) or not isinstance(value.expression, cst.Call):
        return None
    call = value.expression
    called = _project_function(ctx, call)
    if called is None or not called.is_async:
        return None
    index = ctx.index
    built = index.model(called.returns_built) if called.returns_built else None
    if built is not None:  # an object it built: nothing loaded by a query; pending until refreshed here
        return Holding(built, frozenset(), "", None, False, built=True, pending=True, maker=dotted(call.func))
    if called.opaque_options:
        return None
    returned = index.returned(ctx.qualify(dotted(call.func)))
    if returned is None:
        return None
    loader = returned.function
    if loader.returns_load is None or loader.opaque_options:
        return None  # what it returns may be an object it built, or loaded with unknown options
    return Holding(returned.model, frozenset(loader.eager | called.eager) | eager_in(call),
                   f"the query of `{dotted(call.func)}`", None, closes_its_sessions(index, called),
                   many=returned.shape is index_mod.Stage.LIST, on_path=frozenset({returned.model.qualified}),
                   stopped=_stopped(ctx, returned.model, frozenset({returned.model.qualified})))


def _awaited_attr(ctx: FileContext, fn: cst.FunctionDef, value: cst.BaseExpression | None,
             held: dict[str, Holding]) -> Holding | None:
    """``await self.awaitable_attrs.rel`` in an async method of a model (or the awaitable kept
    to await later), or ``await x`` of such a kept awaitable: the instances of ``rel``,
    loaded along a path from the model (its eager strategies stop at a cycle back to it),
    with what any loader option of the project names counted as loaded (the query that
    loaded ``self`` is not known)."""
    if isinstance(value, cst.Await) and isinstance(value.expression, cst.Name):
        kept = held.get(value.expression.value)
        return replace(kept, awaitable=False) if kept is not None and kept.awaitable else None
    found = awaitable_attr(value)
    if found is None or found[0] != "self":
        return None
    owner, rel, awaited = found
    qualname = qualname_of(ctx, fn)
    model = ctx.index.instance_model(ctx.qualify(qualname.rsplit(".", 1)[0])) \
        if qualname is not None and "." in qualname else None
    target = model_for(ctx, model.targets.get(rel)) if model is not None and rel in model.relationships else None
    if model is None or target is None:
        return None
    from ..index.model_reads import eager_anywhere

    on_path = frozenset({model.qualified, target.qualified})
    return Holding(target, eager_anywhere(ctx.index), f"the load of `self.{rel}`", f"self.{rel}", False,
                   f"selectinload({model.name}.{rel}).", many=rel in model.collections, on_path=on_path,
                   stopped=_stopped(ctx, target, on_path), awaitable=not awaited)


def _keyed(ctx: FileContext, fn: cst.FunctionDef, name: str, value: cst.BaseExpression | None) -> dict[str, Holding]:
    """``prep = await self._prepare(...)``, an async project function (or a method of this
    function's class) every ``return`` of which is a dict literal: what ``prep["chat"]``
    holds, for each constant key whose name there holds an instance its query loaded (see
    index.keyed). Left out when ``prep`` is stored into (``prep["chat"] = other``)."""
    if not isinstance(value, cst.Await) or not isinstance(value.expression, cst.Call):
        return {}
    call = value.expression
    callee = dotted(call.func)
    if callee is None:
        return {}
    receiver = None
    if callee.startswith("self.") and callee.count(".") == 1:
        cls = class_of(ctx, fn)
        if cls is None or ctx.facts is None:
            return {}
        receiver = f"{ctx.facts.module}.{cls}"
        qualified: str | None = f"{receiver}.{callee[5:]}"
    elif callee.split(".")[0] in ("self", "cls"):
        return {}
    else:
        qualified = ctx.qualify(callee)
    called = ctx.index.function(qualified)
    if called is None or not called.is_async or called.opaque_options or not called.returns_keys \
            or _stored_into(fn, name):
        return {}
    out: dict[str, Holding] = {}
    for key in called.returns_keys:
        returned = keyed.returned_under(ctx.index, qualified, key, receiver)
        if returned is not None:
            out[keyed_name(name, key)] = Holding(
                returned.model, frozenset(returned.function.eager) | eager_in(call), f"the query of `{callee}`",
                None, closes_its_sessions(ctx.index, called), many=returned.shape is index_mod.Stage.LIST)
    return out


def _stored_into(fn: cst.FunctionDef, name: str) -> bool:
    """Does ``fn`` assign to or delete a key of ``name`` (``name["k"] = v``, ``del name["k"]``,
    ``name.update(...)``, ``name.pop(...)``)?"""
    targets = [t.target for a in m.findall(fn.body, m.Assign()) for t in a.targets]  # type: ignore[attr-defined]
    targets += [a.target for a in m.findall(fn.body, m.AugAssign() | m.AnnAssign() | m.Del())]  # type: ignore[attr-defined]
    targets += [e.value for t in targets if isinstance(t, (cst.Tuple, cst.List)) for e in t.elements]
    if any(isinstance(t, cst.Subscript) and isinstance(t.value, cst.Name) and t.value.value == name for t in targets):
        return True
    return any(isinstance(c.func, cst.Attribute) and isinstance(c.func.value, cst.Name)  # type: ignore[attr-defined]
               and c.func.value.value == name and c.func.attr.value in _DICT_CHANGES  # type: ignore[attr-defined]
               for c in m.findall(fn.body, m.Call()))


_DICT_CHANGES = frozenset({"update", "pop", "popitem", "setdefault", "clear", "__setitem__"})


def _opaque(value: cst.BaseExpression) -> bool:
    """Loader options in ``value`` whose effect is not plain (the libcst twin of the index's
    ``readable_option``)."""
    from ..index.astutil import READABLE_LOADERS

    for call in m.findall(value, m.Call(func=m.Attribute(attr=m.Name("options")))):
        for arg in call.args:  # type: ignore[attr-defined]
            node = arg.value
            if arg.star:
                return True
            while isinstance(node, cst.Call):
                if _last(node.func) not in READABLE_LOADERS or any(a.keyword for a in node.args) \
                        or not all(isinstance(a.value, cst.Attribute) or isinstance(a.value, cst.SimpleString)
                                   and "*" not in a.value.value for a in node.args):
                    return True
                if not isinstance(node.func, cst.Attribute):
                    break
                node = node.func.value
            else:
                return True
    return False


def _awaited(value: cst.BaseExpression) -> bool:
    return bool(m.findall(value, m.Await()))


def _element(ctx: FileContext, iterable: cst.BaseExpression, held: dict[str, Holding],
             sessions: dict[str, None]) -> Holding | None:
    """The loop variable of ``for x in xs`` / ``for x in await load_xs(...)`` /
    ``for x in result.scalars()``."""
    if isinstance(iterable, cst.Attribute):  # `for b in X.rel`: the related instances
        return _descend(ctx, iterable, held)
    whole = held.get(iterable.value) if isinstance(iterable, cst.Name) else \
        _load(ctx, iterable, sessions) or _from_result(iterable, held)
    return replace(whole, many=False) if whole is not None and whole.many and not whole.result \
        and not whole.awaitable else None


# what a Result gives: its instances (a list), or one of them
_RESULT_LISTS = (("scalars",), ("scalars", "all"), ("unique", "scalars", "all"), ("scalars", "unique", "all"),
                 ("scalars", "fetchall"), ("unique", "scalars"))
_RESULT_ONES = (("scalar_one",), ("scalar_one_or_none",), ("scalar",), ("scalars", "first"), ("scalars", "one"),
                ("scalars", "one_or_none"), ("unique", "scalar_one"), ("unique", "scalar_one_or_none"))


def _executed(value: cst.BaseExpression) -> bool:
    """``await session.execute(...)`` as it is: a Result, not an instance."""
    return isinstance(value, cst.Await) and isinstance(value.expression, cst.Call) \
        and isinstance(value.expression.func, cst.Attribute) and value.expression.func.attr.value == "execute"


def _from_result(value: cst.BaseExpression | None, held: dict[str, Holding]) -> Holding | None:
    """``result.scalars().all()`` / ``result.scalar_one()`` of a held Result: its instances."""
    chain: list[str] = []
    node = value
    while isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and not node.args:
        chain.insert(0, node.func.attr.value)
        node = node.func.value
    whole = held.get(node.value) if isinstance(node, cst.Name) else None
    if whole is None or not whole.result:
        return None
    if tuple(chain) in _RESULT_LISTS:
        return replace(whole, result=False, many=True)
    if tuple(chain) in _RESULT_ONES:
        return replace(whole, result=False, many=False)
    return None


def _reached(ctx: FileContext, ev: Event, held: dict[str, Holding]) -> Holding | None:
    """``Y = X.rel`` (or ``X.rel.other``) with each step loaded: the related instance has, at
    most, what the same options name below that path."""
    return _descend(ctx, ev.value, held)


def _descend(ctx: FileContext, node: cst.BaseExpression | None, held: dict[str, Holding]) -> Holding | None:
    """What ``X.a.b`` holds, ``X`` held and ``a``, ``b`` loaded relationships."""
    steps: list[str] = []
    while isinstance(node, cst.Attribute):
        steps.insert(0, node.attr.value)
        node = node.value
    owner = held.get(node.value) if isinstance(node, cst.Name) and steps else None
    via = node.value if isinstance(node, cst.Name) else ""
    for rel in steps:
        if owner is None:
            return None
        via = f"{via}.{rel}"
        owner = _step(ctx, owner, rel, via)
    return owner


def _step(ctx: FileContext, owner: Holding, rel: str, via: str) -> Holding | None:
    """The holding of what ``owner.rel`` gives, when ``rel`` is loaded: the options' paths below
    ``rel`` where they are known, else the same loaded set."""
    if owner.many or owner.result or rel not in owner.model.relationships \
            or not loaded_eagerly(owner.model, rel, owner.loaded, owner.stopped):
        return None
    target = model_for(ctx, owner.model.targets.get(rel))
    if target is None:
        return None
    loaded, tree, options = owner.loaded, owner.tree, owner.options
    if tree is not None:
        tree = _below(tree, rel)
        options = tuple((p[len(rel) + 1:], n) for p, n in options if p.startswith(rel + "."))
        loaded = frozenset(p for p in tree if "." not in p)
    on_path = owner.on_path | {target.qualified}
    return Holding(target, loaded, owner.source, via, owner.detached,
                   f"{owner.path}selectinload({owner.model.name}.{rel}).", given_by=owner.given_by,
                   tree=tree, options=options, query_calls=owner.query_calls,
                   deferred_known=owner.deferred_known and tree is not None,
                   on_path=on_path, stopped=_stopped(ctx, target, on_path))


def _stopped(ctx: FileContext, model: Model, on_path: frozenset[str]) -> frozenset[str]:
    """The relationships of ``model`` whose eager strategy a loading path through ``on_path``
    stops at a cycle."""
    from ..index.model_reads import stops_at_cycle

    return frozenset(rel for rel in model.relationships
                     if stops_at_cycle(model, rel, model_for(ctx, model.targets.get(rel)), on_path))


def _below(tree: frozenset[str], rel: str) -> frozenset[str]:
    return frozenset(p[len(rel) + 1:] for p in tree if p.startswith(rel + "."))


def _read_by_callee(ctx: FileContext, call: cst.Call, arg: cst.CSTNode, h: Holding,
                    outside: frozenset[str]) -> tuple[Holding, str, str] | None:
    """The first lazy relationship, not loaded, that the project function ``call`` calls reads
    of the argument ``arg``, directly or along a path (``job.project.upstreams.mirrors``), or
    in a function it hands the argument on to (:func:`~codemods.index.paths.param_paths`):
    the holding at that depth, the path to it, and the relationship. None when that function
    rebinds the parameter or looks at load state itself."""
    fn = _project_function(ctx, call)
    if fn is None:
        return None
    given = next((a for a in call.args if a.value is arg), None)
    passed = argument_position(call, given) if given is not None else None
    if passed is None or passed in ("self", "cls"):
        return None
    from ..index.paths import param_paths  # the index loads only where a pass runs

    for path in sorted(param_paths(ctx.index, ctx.qualify(dotted(call.func)), passed), key=lambda p: (p.count("."), p)):
        found = path_unloaded(ctx, h, path, outside)
        if found is not None:
            return found
    return None


def path_unloaded(ctx: FileContext, h: Holding, path: str, outside: frozenset[str]) -> tuple[Holding, str, str] | None:
    """The first lazy relationship along ``path`` (dotted attribute names read of the object
    ``h`` holds) that is not loaded: the holding at that depth, the relationships walked to
    reach it (dotted), and its name. Below the first level, what is loaded is what the
    loading query's options name at that depth, plus ``outside`` (relationships any other
    eager option names); where the options are not known, ``h.loaded`` at every depth. A
    ``lazy="raise"`` relationship not loaded is one too (its read raises InvalidRequestError);
    one that never loads implicitly (``raise_on_sql``, ``noload``, ``dynamic``) or an
    attribute the model does not know ends the walk."""
    model, tree, loaded = h.model, h.tree, h.loaded
    hops: list[str] = []
    option = h.path
    on_path, stopped = h.on_path, h.stopped
    for depth, attr in enumerate(path.split(".")):
        if depth:
            loaded = (frozenset(p for p in tree if "." not in p) | outside) if tree is not None else h.loaded
            if on_path:
                on_path = on_path | {model.qualified}
                stopped = _stopped(ctx, model, on_path)
        at = replace(h, model=model, loaded=loaded, path=option, on_path=on_path, stopped=stopped)
        strategy = model.relationships.get(attr)
        if strategy is None:
            known = attr in model.properties or attr in model.deferred
            rels = _unloaded(at, attr) if known and not (h.built and depth) else []
            return (at, ".".join(hops), rels[0]) if rels else None
        if strategy == "raise" and attr not in loaded:
            return at, ".".join(hops), attr  # not loaded: the read raises InvalidRequestError
        if strategy in ("dynamic", "raise_on_sql", "noload", "write_only"):
            return None
        if not loaded_eagerly(model, attr, loaded, stopped):
            return (at, ".".join(hops), attr) if _unloaded(at, attr) else None
        target = model_for(ctx, model.targets.get(attr))
        if target is None or h.built:
            return None  # what a built object was given is not followed further
        option = f"{option}selectinload({model.name}.{attr})."
        tree = _below(tree, attr) if tree is not None else None
        hops.append(attr)
        model = target
    return None


def option_paths(value: cst.CSTNode) -> tuple[tuple[str, cst.BaseExpression], ...]:
    """The relationship paths the loader options in ``value`` load, dotted, each with the
    option that loads it (the one whose chain ends there first):
    ``selectinload(Job.project).selectinload(Project.mirrors)`` loads ``project`` and
    ``project.mirrors``; ``defaultload(Job.project).selectinload(Project.mirrors)`` loads
    ``project.mirrors`` alone (the first step keeps its own strategy)."""
    from ..index import EAGER_LOADERS

    ending: dict[str, cst.BaseExpression] = {}
    passing: dict[str, cst.BaseExpression] = {}
    for call in m.findall(value, m.Call(func=m.Attribute(attr=m.Name("options")))):
        for arg in call.args:  # type: ignore[attr-defined]
            steps: list[tuple[str, bool]] = []  # (relationship, loaded by this step), innermost first
            node = arg.value
            while isinstance(node, cst.Call):
                loader = _last(node.func)
                names = [_option_name(a.value) for a in node.args]
                steps[:0] = [(n, loader in EAGER_LOADERS or loader == "undefer") for n in names if n]
                node = node.func.value if isinstance(node.func, cst.Attribute) else None
            prefix = ""
            for i, (name, eager) in enumerate(steps):
                prefix = f"{prefix}.{name}" if prefix else name
                if eager:
                    (ending if i == len(steps) - 1 else passing).setdefault(prefix, arg.value)
    return tuple((path, ending.get(path) or passing[path]) for path in sorted(ending.keys() | passing.keys()))


def _option_name(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Attribute):
        return node.attr.value
    if isinstance(node, cst.SimpleString) and isinstance(node.evaluated_value, str):
        return node.evaluated_value.rsplit(".", 1)[-1]
    return None


def _chained(ctx: FileContext, ev: Event, h: Holding, seen: set[tuple[str, str]],
             outer: cst.Attribute | None, facts: _Facts) -> Iterator[UnloadedRead]:
    """``X.rel.other`` (``outer``) with ``rel`` loaded: a read of ``other`` on the related instance."""
    rel = ev.name or ""
    if outer is None or rel not in h.model.relationships:
        return
    found = path_unloaded(ctx, h, f"{rel}.{outer.attr.value}", facts.outside(h))
    if found is None or not found[1] or found[2] in found[0].model.deferred and facts.undefers(h):
        return
    hop = f"{ev.owner}.{rel}"
    inner, other = replace(found[0], via=hop), found[2]
    if inner.given_by:
        blamed = blame(inner, other, False)
        if blamed is None:
            return
        inner = blamed
    if (hop, other) not in seen:
        seen.add((hop, other))
        yield UnloadedRead(replace(ev, node=outer, owner=hop, name=outer.attr.value), hop, other, inner)


def _refreshed(call: cst.Call) -> frozenset[str] | None:
    """The relationship names ``session.refresh(X, ["a", "b"])`` loads: none for a plain
    ``refresh(X)`` (it loads again what the first query loaded); None when the names are not
    literal."""
    names = [a for a in call.args[1:] if a.keyword is None or a.keyword.value == "attribute_names"]
    if not names:
        return frozenset()
    value = names[0].value
    if not isinstance(value, (cst.List, cst.Tuple, cst.Set)):
        return None
    out: set[str] = set()
    for el in value.elements:
        if not isinstance(el.value, cst.SimpleString) or not isinstance(el.value.evaluated_value, str):
            return None
        out.add(el.value.evaluated_value)
    return frozenset(out)


def closes_its_sessions(index, fn: Function | None) -> bool:
    """A project function that opens sessions and closes all of them before it returns:
    what it returns is detached."""
    if fn is None:
        return False
    sessions = [o for o in fn.opened if index.opens_session(o.factory) is not None]
    return bool(sessions) and all(o.closed_on_return for o in sessions)
