"""SQF011's sessions that no name holds: ``Maker().query(...)``, ``prod.session_factory().execute(...)``;
and what SQF011 asks of any call that makes a session: a new one (not a scoped registry's), on
a pool's connection (not the caller's), with an engine.

A session made and used in one expression is never closed: nothing can reach it to close it,
and since a session sits in a reference cycle, it is not freed when the expression ends but
when the cyclic garbage collector next runs; until then its connection stays checked out.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .. import names
from ..lazy import lazy
from . import match as m
from .base import FileContext
from .flow import Event, EventKind
from .helpers import dotted

if TYPE_CHECKING:
    import libcst as cst

    from .. import index as index_mod
else:
    cst = lazy("libcst")


def inline_sessions(ctx: FileContext, fn: cst.FunctionDef, made: list[str]) -> Iterator[tuple[cst.Call, bool]]:
    """The calls in ``fn`` that make a new session used at once by a chained method, where
    ``made`` (the index's candidates for this function) says what they call; with whether the
    session is async."""
    for node in m.findall(fn.body, m.Attribute(value=m.Call(), attr=m.OneOf(*(m.Name(u) for u in names.INLINE_USES)))):
        call: cst.Call = node.value  # type: ignore[attr-defined]
        if not isinstance(ctx.parent(node), cst.Call) or on_a_connection(call, []):
            continue
        factory = _factory(ctx, fn, call, made)
        if factory is not None and not without_engine(call, factory) \
                and opens_new(ctx, factory, dotted(call.func) or ""):
            yield call, bool(ctx.index.opens_session(factory))


def _factory(ctx: FileContext, fn: cst.FunctionDef, call: cst.Call, made: list[str]) -> str | None:
    """The factory ``call`` calls, when the index recorded it among ``made``."""
    callee = dotted(call.func)
    if callee is None:
        return None
    qualified = ctx.qualify(callee)
    if qualified in made:
        return qualified
    head, _, attr = callee.partition(".")
    for candidate in made:  # `obj.attr()` on a local built as `obj = Class(...)`
        if candidate.endswith("." + attr) and "." not in attr and _built_from(ctx, fn, head, candidate[: -len(attr) - 1]):
            return ctx.index.kept_factory(candidate)
    return None


def _built_from(ctx: FileContext, fn: cst.FunctionDef, name: str, cls: str) -> bool:
    """Is ``name`` bound in ``fn`` only by ``name = cls(...)``?"""
    bound = [a for a in m.findall(fn.body, m.Assign(targets=[m.AssignTarget(target=m.Name(name))]))]
    return bool(bound) and all(isinstance(a.value, cst.Call)  # type: ignore[attr-defined]
                               and ctx.qualify(dotted(a.value.func)) == cls for a in bound)  # type: ignore[attr-defined]


def dropped_providers(ctx: FileContext, fn: cst.FunctionDef) -> Iterator[tuple[cst.Call, bool]]:
    """``db = next(get_db())``, ``await anext(provide_session())``: a project generator that
    opens a session, yields it and closes it after the yield, advanced once while no name
    holds the generator; with whether it is async. Nothing keeps the generator, so it is
    finalized at once: a plain generator's cleanup closes the session before the caller uses
    it; an async one's is scheduled on the event loop and runs while the caller uses it.
    Either way the use that follows checks out a connection that nothing returns.

    Left out: a session only asked for its engine (`Session(next(get_db()).bind)`: it checks
    out no connection), and one a plain generator hands out that the function closes itself
    (`db = next(get_db())`, then `db.close()`), which returns the connection then (an async
    generator's cleanup may still close the session in the middle of its use)."""
    index = ctx.index
    for node in m.findall(fn.body, m.Call(func=m.Name("next") | m.Name("anext"), args=[m.Arg(value=m.Call())])):
        call: cst.Call = node  # type: ignore[assignment]
        if _no_connection_or_closed(ctx, fn, call):
            continue
        made: cst.Call = call.args[0].value  # type: ignore[assignment]
        opened = advanced_provider(index, ctx.qualify(dotted(made.func)))
        if opened is not None and opens_new(ctx, opened.factory, ""):
            yield call, bool(index.opens_session(opened.factory))


def advanced_provider(index: index_mod.ProjectIndex, qualified: str | None) -> index_mod.OpenedSession | None:
    """When ``qualified`` names a project generator that opens a session, yields it and closes
    it after the yield (a provider `next()` may drop): that session."""
    provider = index.function(qualified) if qualified else None
    if provider is None or not provider.is_generator or not provider.closes_after_yield:
        return None
    return next((o for o in provider.opened if o.yielded and index.opens_session(o.factory) is not None), None)


_ENGINE_ONLY = frozenset({"bind", "get_bind", "info"})  # what a session answers without a connection


def _no_connection_or_closed(ctx: FileContext, fn: cst.FunctionDef, call: cst.Call) -> bool:
    """Is the session ``call`` takes out only asked for its engine (`next(get_db()).bind`), or
    taken by `next()` into a name the function closes (`db.close()`)?"""
    taken: cst.CSTNode = call
    parent = ctx.parent(taken)
    if isinstance(parent, cst.Await):
        taken, parent = parent, ctx.parent(parent)
    if isinstance(parent, cst.Attribute) and parent.value is taken:
        return parent.attr.value in _ENGINE_ONLY
    if isinstance(parent, (cst.Assign, cst.AnnAssign)) and parent.value is taken and taken is call:
        targets = [t.target for t in parent.targets] if isinstance(parent, cst.Assign) else [parent.target]
        if len(targets) == 1 and isinstance(targets[0], cst.Name):
            name = targets[0].value
            return any(dotted(c.func) == f"{name}.close"  # type: ignore[attr-defined]
                       for c in m.findall(fn.body, m.Call(func=m.Attribute(attr=m.Name("close")))))
    return False


def opens_new(ctx: FileContext, factory: str | None, callee: str) -> bool:
    """Does calling ``factory`` (``callee`` as written) open a new session, not a scoped
    registry's nor Flask-SQLAlchemy's?"""
    index = ctx.index
    if factory is None or index.opens_session(factory) is None:
        return False
    found = index.factory(factory)
    if found is not None and found.scoped or index.returns_registry_session(factory):
        return False
    if factory.endswith("()") and index.builder(factory[:-2]) in names.SCOPED:
        return False  # a registry built in the function (`Scoped = scoped_session(...)`)
    return not index.flask_session(factory) and not index.flask_session(ctx.qualify(callee))


def without_engine(call: cst.Call, factory: str | None) -> bool:
    """`Session()`: SQLAlchemy's session class called with no engine; it holds no connection,
    ever (a query through it raises UnboundExecutionError)."""
    return not call.args and names.session_class(factory) is not None


def on_a_connection(call: cst.Call, before: list[Event]) -> bool:
    """`Session(bind=op.get_bind())`, `Session(bind=session.connection())`, `Session(conn)`:
    the caller owns the connection, the session checks nothing out of a pool."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value != "bind":
            continue
        value = arg.value
        if isinstance(value, cst.Name):  # `bind = op.get_bind()` earlier in the function
            value = next((e.value for e in reversed(before) if e.kind == EventKind.ASSIGN and e.name == value.value
                          and e.value is not None), value)
        if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) \
                and value.func.attr.value in ("get_bind", "connect", "connection"):
            return True
        name = (dotted(value) or "").rsplit(".", 1)[-1].lower()
        if name in ("bind", "conn", "connection", "connectable") or name.endswith(("_conn", "_connection")):
            return True
    return False
