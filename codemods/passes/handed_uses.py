"""A session handed to a project function that uses it: ``restore_keys(session, ...)`` after
a handler that caught a failed commit without a rollback.

The function runs a statement on the parameter the session binds (``p.execute(...)``,
``p.get(...)``, ``p.connection()``) or commits it (itself or further down, as the index
knows), and never rolls back: on a session whose flush failed, either raises
``PendingRollbackError``. The parameter needs no annotation here: the caller's name is known
to hold the session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .flow import Event, EventKind, call_argument

if TYPE_CHECKING:
    from .base import FileContext


def handed_use(ctx: FileContext, ev: Event, S: str) -> str | None:
    """When ``ev`` passes ``S`` to a project function that uses it as above: the callee as
    written. None otherwise (also for a function with a rollback anywhere in it: it may
    repair the session before its use)."""
    from ..index.lookup import param_at  # the index loads only when a pass asks it

    if ev.kind != EventKind.USE or ev.name != S or not ev.owner or ev.owner.startswith(("self.", "cls.")):
        return None
    where = call_argument(ev)
    qualified = ctx.qualify(ev.owner)
    fn = ctx.index.function(qualified) if where is not None and qualified else None
    if fn is None or "rollback" in fn.methods:
        return None
    passed = where[1]  # type: ignore[index]
    param = param_at(fn, passed)
    if param is None or any(p.name == param and p.depends for p in fn.params):
        return None
    if param in fn.param_statements or "commit" in ctx.index.session_ends(qualified, passed):
        return ev.owner
    return None
