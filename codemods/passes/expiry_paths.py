"""SQF010's questions about where a call or a read sits in a function: can one follow the
other, does the caller go on after a call, is a name known not to be None there."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy
from .base import visit_with
from .flow import Event, EventKind, none_guard, reachable_only_through
from .helpers import dotted

if TYPE_CHECKING:
    import libcst as cst

    from .expiry_state import Tracked
else:
    cst = lazy("libcst")


def goes_on_after(e: Event, call: cst.Call) -> bool:
    """Does the caller go on after a call whose rollback only happens when the callee fails?
    When the call is in a loop (a failed item, then the next one) or its result is dropped
    (`await helper(db)`: nothing tells the caller it failed). A caller that keeps the result
    usually checks it and stops."""
    if any(isinstance(node, (cst.For, cst.While)) for node in e.path):
        return True
    try:
        stmt = e.statement
    except LookupError:
        return False
    return sole_call(stmt, call)


def begins_block(node: cst.With, S: str) -> bool:
    """`async with S.begin():` (not `begin_nested()`: releasing a savepoint expires nothing)."""
    for item in node.items:
        expr = item.item.expression if isinstance(item.item, cst.Await) else item.item
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value == "begin":
            if dotted(expr.func.value) == S:
                return True
    return False


def node_ids(node: cst.CSTNode) -> set[int]:
    """Every node under ``node``: events inside a call come after the call's own event."""
    class V(cst.CSTVisitor):
        def __init__(self) -> None:
            super().__init__()
            self.out: set[int] = set()

        def on_visit(self, n: cst.CSTNode) -> bool:
            self.out.add(id(n))
            return True

    return visit_with(node, V).out


def listed_names(call: cst.Call) -> list[str]:
    """The names in `session.add_all([a, b])`."""
    if not call.args or not isinstance(call.args[0].value, (cst.List, cst.Tuple)):
        return []
    return [el.value.value for el in call.args[0].value.elements if isinstance(el.value, cst.Name)]


def aug_assigned(e: Event) -> bool:
    """`user.visits += 1`: the old value is read first."""
    try:
        stmt = e.statement
    except LookupError:
        return False
    return isinstance(stmt, cst.SimpleStatementLine) and any(
        isinstance(s, cst.AugAssign) and s.target is e.node for s in stmt.body)


def sole_call(stmt: cst.CSTNode, call: cst.CSTNode) -> bool:
    """Is ``stmt`` the statement `await S.commit()` and nothing else?"""
    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1 or not isinstance(stmt.body[0], cst.Expr):
        return False
    value = stmt.body[0].value
    if isinstance(value, cst.Await):
        value = value.expression
    return value is call


def may_follow(earlier: Event, later: Event) -> bool:
    """Can ``later`` run after ``earlier`` (``later`` comes after it in the source)? Not when
    they are in two branches of one `if`/`match`/`try`, when ``earlier`` is a commit in a
    `try` body and ``later`` in its handler (the handler runs when the commit failed), when
    ``earlier`` is in a `return`/`raise` statement, or when a block holding ``earlier`` but
    not ``later`` returns or raises after it."""
    common = 0
    for a, b in zip(earlier.path, later.path):
        if a is not b:
            break
        common += 1
    if 0 < common < len(earlier.path) and common < len(later.path):
        fork = earlier.path[common - 1]
        if isinstance(fork, (cst.If, cst.Match)):
            return False
        if isinstance(fork, (cst.Try, cst.TryStar)):
            handlers = [h.body for h in fork.handlers]
            a, b = earlier.path[common], later.path[common]
            if any(b is h for h in handlers) and (a is fork.body or any(a is h for h in handlers)):
                return False
    if any(isinstance(node, cst.SimpleStatementLine) and any(isinstance(s, (cst.Return, cst.Raise)) for s in node.body)
           for node in earlier.path[common:]):
        return False  # `return StreamingResponse(run(db))`: nothing after it runs
    for i in range(common, len(earlier.path) - 1):
        block = earlier.path[i]
        if not isinstance(block, cst.IndentedBlock):
            continue
        child = earlier.path[i + 1]
        seen = False
        for stmt in block.body:
            if stmt is child:
                seen = True
            elif seen and isinstance(stmt, cst.SimpleStatementLine) and any(
                    isinstance(s, (cst.Return, cst.Raise)) for s in stmt.body):
                return False
    return True


def known_present(evs: list[Event], obj: Tracked, X: str, at: Event) -> bool:
    """Is ``X`` certainly not None at ``at``: something before it used X as an object (and
    would have failed on None), or a None guard ended the function?"""
    start = obj.binding.index if obj.binding is not None else -1
    for e in evs[start + 1: at.index]:
        if e.owner == X and e.kind in (EventKind.READ, EventKind.WRITE, EventKind.METHOD) and reachable_only_through(at, e):
            return True
        if e.kind == EventKind.IF and none_guard(e.node, X) and reachable_only_through(at, e):  # type: ignore[arg-type]
            return True
    return False


def failed_in(call: Event, rollback: Event) -> bool:
    """Is ``rollback`` in a handler of a `try` whose body holds ``call`` (the rollback of the
    transaction that call failed to commit)?"""
    path = rollback.path
    for i in range(len(path) - 2, -1, -1):
        node = path[i]
        if isinstance(node, (cst.Try, cst.TryStar)) and any(h.body is path[i + 1] for h in node.handlers):
            return any(n is node.body for n in call.path)
    return False
