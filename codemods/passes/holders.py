"""SQF011's request holders: a session stored in ``context["db_session"]``,
``request.state.db`` or Flask's ``g.db`` is owned only when some code of the project reads it
back and closes it (the index's ``holder_closed``). Which holder an expression names is the
index's reading (``index.holders.read_back``), so the pass and the index name holders alike."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from ..lazy import lazy
from . import match as m
from .flow import EventKind, events
from .helpers import dotted, rebinds

if TYPE_CHECKING:
    import libcst as cst

    from ..index import Holder
    from .base import FileContext
else:
    cst = lazy("libcst")

# Calls that run the rest of the request with the holder in place (a middleware's `next`).
_NEXT = {"next", "call_next"}
# Request-wide holders a framework gives every module.
_REQUEST_GLOBALS = {"flask.g", "flask.globals.g"}


def unowned_holder(ctx: FileContext, fn: cst.FunctionDef, target: cst.BaseExpression) -> Holder | None:
    """The holder an assignment target names (``context["db_session"]``, ``request.state.db``,
    ``g.db``) when a session stored there has no owner: the holder belongs to the request (a
    parameter of the function, not ``self``, nor its ``**kwargs``; or Flask's ``g``), the
    function neither returns it nor hands it to a call (a middleware's ``next()`` aside), and
    no code of the project reads a session back from a holder of that name and closes it
    (index: ``holder_closed``). None where any of that fails."""
    holder = holder_of(ctx, target)
    if holder is None or not isinstance(target, (cst.Subscript, cst.Attribute)):
        return None
    base = dotted(target.value) or ""
    head = base.split(".", 1)[0]
    params = {p.name.value for p in (*fn.params.posonly_params, *fn.params.params, *fn.params.kwonly_params)}
    if head in ("self", "cls") or head not in params and ctx.qualify(head) not in _REQUEST_GLOBALS:
        return None
    if rebinds(fn, head):
        return None
    for e in events(fn, ctx):
        if e.name == head and (e.kind in (EventKind.ESCAPE, EventKind.NESTED)
                               or e.kind == EventKind.USE and (e.owner or "").rsplit(".", 1)[-1] not in _NEXT):
            return None
    return None if ctx.index.holder_closed(holder) else holder


def holder_of(ctx: FileContext, node: cst.BaseExpression | None) -> Holder | None:
    """The holder an expression names or reads back (``X["key"]``, ``X.attr``, ``X.get("key")``,
    ``X.pop("key")``, ``getattr(X, "attr")``): the index's own reading of its source
    (``holders.read_back``), so that what the pass stores and what the index finds closed are
    named alike."""
    if node is None:
        return None
    from ..index.holders import read_back

    try:
        expr = ast.parse(f"({ctx.module.code_for_node(node).strip()})", mode="eval").body
    except SyntaxError:
        return None
    return read_back(expr)


def held_in(ctx: FileContext, fn: cst.FunctionDef, S: str) -> tuple[str, Holder] | None:
    """The holder the session ``S`` is stored in (as written, and as a record), where
    nothing closes it."""
    for assign in m.findall(fn.body, m.Assign(targets=[m.AssignTarget()], value=m.Name(S))):
        target = assign.targets[0].target  # type: ignore[attr-defined]
        holder = unowned_holder(ctx, fn, target)
        if holder is not None:
            return ctx.module.code_for_node(target), holder
    return None


def unowned_message(holder: str, call: str, is_async: bool) -> str:
    opener = "async with" if is_async else "with"
    return (f"the session `{call}` kept in `{holder}` is never closed: no code reads it back from there "
            f"to close it, so its connection stays checked out until garbage collection and repeated "
            f"requests exhaust the pool (TimeoutError); open it with `{opener} {call} as ...:` around the "
            f"code that uses it, or close it where the request ends")
