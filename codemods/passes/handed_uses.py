"""What SQF009 asks of the code around a handler: a session handed to a project function
that uses it (``restore_keys(session, ...)``), a handler that raises on every path (not only
under a condition), a loop that the code after the try leaves (``break``) instead of coming
round with the failed session.

A function handed the session uses it when it runs a statement on the parameter the session
binds (``p.execute(...)``, ``p.get(...)``, ``p.connection()``) or commits it (itself or
further down, as the index knows), and never rolls back: on a session whose flush failed,
either raises ``PendingRollbackError``. The parameter needs no annotation here: the caller's
name is known to hold the session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy
from .flow import Event, EventKind, call_argument

if TYPE_CHECKING:
    import libcst as cst

    from .base import FileContext
else:
    cst = lazy("libcst")


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
    param = param_at(fn, passed, bound=False)
    if param is None or any(p.name == param and p.depends for p in fn.params):
        return None
    if param in fn.param_statements or "commit" in ctx.index.session_ends(qualified, passed):
        return ev.owner
    return None


def raises_on_every_path(block: cst.BaseSuite) -> bool:
    """Does ``block`` raise on every path through it: a ``raise`` at its top level, or an
    ``if`` (with its ``elif``s) or ``with`` every branch of which raises? ``if attempt >= n:
    raise`` alone does not: the other path goes on."""
    body = block.body if isinstance(block, cst.IndentedBlock) else [block]
    for stmt in body:
        if isinstance(stmt, (cst.SimpleStatementLine, cst.SimpleStatementSuite)) \
                and any(isinstance(s, cst.Raise) for s in stmt.body):
            return True
        if isinstance(stmt, (cst.With, cst.If)) and _branches_raise(stmt):
            return True
    return False


def _branches_raise(stmt: cst.With | cst.If) -> bool:
    if not raises_on_every_path(stmt.body):
        return False
    if isinstance(stmt, cst.With):
        return True
    orelse = stmt.orelse
    if orelse is None:
        return False
    return _branches_raise(orelse) if isinstance(orelse, cst.If) else raises_on_every_path(orelse.body)


def leaves_the_loop(path: tuple[cst.CSTNode, ...]) -> bool:
    """``path`` runs from a loop's body down to a statement in it: does an unconditional
    ``break``, ``return`` or ``raise`` follow that statement, in its block or an enclosing
    one inside the loop, so that the loop does not come round from there?"""
    for block, stmt in zip(path, path[1:]):
        if not isinstance(block, cst.IndentedBlock) or stmt not in block.body:
            continue
        after = block.body[list(block.body).index(stmt) + 1:]  # type: ignore[arg-type]
        if any(isinstance(s, cst.SimpleStatementLine) and any(isinstance(x, (cst.Break, cst.Return, cst.Raise))
                                                              for x in s.body) for s in after):
            return True
    return False


def given_through_scope(ctx: FileContext, qualname: str, block: cst.With | None, S: str) -> str | None:
    """``with existed_or_new_session(session) as S:`` where the project scope yields the
    session it is given as is (on one path at least): the parameter of the function
    ``qualname`` handed to it, whose session the caller goes on with. None otherwise."""
    from ..index.lookup import param_at  # the index loads only when a pass asks it
    from .helpers import argument_position, dotted

    facts = ctx.function_facts(qualname)
    for item in block.items if block is not None and facts is not None else ():
        if not (isinstance(item.asname, cst.AsName) and isinstance(item.asname.name, cst.Name)
                and item.asname.name.value == S and isinstance(item.item, cst.Call)):
            continue
        fn = ctx.index.function(ctx.qualify(dotted(item.item.func)))
        if fn is None or fn.yields_param is None:
            return None
        for arg in item.item.args:
            passed = argument_position(item.item, arg)
            if passed is not None and param_at(fn, passed, bound=False) == fn.yields_param and isinstance(arg.value, cst.Name) \
                    and any(p.name == arg.value.value for p in facts.params):
                return arg.value.value
    return None


def queries_a_model(ctx: FileContext, evs: list[Event], S: str, block: cst.With) -> bool:
    """Does the with-block that binds ``S`` run ``S.query(M)`` with ``M`` a mapped class of
    the project? Only a session (or a scoped registry of one) has ``query()`` taking a model,
    so ``S`` is one even when what the with-item calls is not known to open a session
    (``with DBSession(product.session_factory) as S:``, a project class handed its factory)."""
    for ev in evs:
        if ev.kind != EventKind.CALL or ev.owner != S or ev.name != "query" or not ev.args or ev.args[0] is None:
            continue
        if any(node is block for node in ev.path) and ctx.index.model(ctx.qualify(ev.args[0])) is not None:
            return True
    return False
