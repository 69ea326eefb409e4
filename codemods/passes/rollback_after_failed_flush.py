"""SQF009 rollback-after-failed-flush: a failed commit/flush caught, the session used again
without a rollback."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from ..lazy import lazy
from ..names import BARE_EXCEPT, STATEMENT_METHODS
from . import flush_examples_w3 as w3
from . import match as m
from . import stale_data_examples as stale
from .base import Edit, FileContext, Finding, Fix, Pass, visit_with
from .built_objects import Built, built_around, savepoints, users_of, uses_through
from .caller_use import NEUTRAL, RESETS, GoesOn, bound_in, caller_goes_on, commits_after_yield, provider_commits
from .flow import (
    Event,
    EventKind,
    Held,
    SessionRef,
    events,
    falls_through_to,
    functions,
    has_try,
    held,
    mentions,
    session_call,
    sessions,
    shape,
    statement_paths,
)
from .handed_uses import given_through_scope, handed_use, leaves_the_loop, queries_a_model, raises_on_every_path
from .helpers import (
    dotted,
    function_facts,
    param_facts,
    session_is_async,
    statement_calls,
    with_binds,
    with_item_callee,
)
from .reads_before_rollback import EarlyRead, Known, early_reads
from .rollback_after_failed_flush_examples import EXAMPLES, PROJECT, VALID

if TYPE_CHECKING:
    import libcst as cst

    from .. import index as index_mod
    from ..index import aborts
else:
    cst = lazy("libcst")
    aborts = lazy("codemods.index.aborts")


# What a handler for a failed flush catches: SQLAlchemy's and the DBAPI's database errors,
# or anything (a bare except, Exception).
DB_ERRORS = {
    "IntegrityError", "StaleDataError", "DBAPIError", "SQLAlchemyError", "OperationalError",
    "DatabaseError", "DataError", "ProgrammingError", "InternalError", "FlushError",
    "Exception", "BaseException",
}
# `contextlib.suppress(...)`: a with-item that swallows what it names, as a handler that passes
SUPPRESS = "suppress"
# Calls that leave the function (anywhere); RESETS end the failed transaction (on the session).
LEAVES = {"abort", "flask.abort", "exit", "sys.exit", "os._exit"}


class RollbackAfterFailedFlush(Pass):
    code = "SQF009"
    name = "rollback-after-failed-flush"
    summary = "a failed commit/flush is caught, and the session is used again without a rollback"
    fix_safety = "mixed"  # safe after a failed commit; unsafe after a failed flush
    # (a service that commits the session it is given may be called with `db_session=db`)
    triggers = (b".commit(", b".flush(", b"session", b"Session")
    explanation = """
    ## What it does
    Finds an `except` handler for a database error (`IntegrityError`, `StaleDataError`,
    `DBAPIError`, `OperationalError`, `SQLAlchemyError`..., `Exception`, or a bare `except:`)
    around `session.commit()` or `session.flush()` that neither rolls the session back nor
    leaves by raising, when the same session is used again: later in the function (the next
    round of a loop included, and the code after a loop the handler `break`s out of), when
    the session's scope commits on exit, or by the code that handed the session in (a
    parameter, a FastAPI dependency, `self.session`, a scoped registry, Flask-SQLAlchemy's
    `db.session`). A handler that raises only under a condition
    (`if attempt == last: raise`) goes on on the other path; a loop that the code after the
    `try` leaves (`break`, `return`) does not come round; a handler whose `try` is followed in
    its own block by an unconditional `raise`, with nothing touching the session between (a
    nested `try` in an `except` that re-raises), goes on only into that `raise`. Handing the
    session, after the handler, to a project function that runs a statement on it or commits it, and never rolls
    back (`restore_keys(session)` in a `finally`), is a use. A scope that yields the session
    it is given (`with given_or_new(session) as session:`) hands back the caller's session,
    and the caller goes on with it. A with-target is a session when its block runs `query(M)`
    on it with `M` a mapped class (`with DbSession(product.maker) as session:`, a class that
    opens a session from a factory it is handed): only a session has that method.

    A handler no project code calls (a bot's, registered with `@router.message()`) whose
    session parameter a middleware hands in through the handler's data (aiogram's shape: an
    `async def __call__(self, handler, event, data)` that opens `async with pool() as
    session:`, sets `data["session"] = session` and awaits `handler(event, data)`) has that
    middleware for its caller, when it is registered as a router takes one (decorated by a call
    on an object, or only handed to `register()`): when every middleware handing that key
    does nothing after the handler but close the session (or roll it back), nothing is
    reported; one that commits it after (or opens it with `begin()`), uses it, or makes any
    other call after the handler (a wrapper may reach the session) is named in the message.

    It also finds a handler that does roll back, but first reads an attribute of an instance
    the session had loaded (to log it, usually: `log.error("cannot save %s", self)` when the
    model's `__str__` reads its columns). A failed flush expires every such instance, and
    reading one before `rollback()` raises `PendingRollbackError`, which replaces the error
    being handled. Counted are objects loaded through the session in the function, deleted
    through it, or `self` in a method of a mapped class that does not add `self` there (an
    object added in the failed transaction becomes transient and stays readable). The fix
    moves the rollback first (safe: the reads then load the row again); it is offered when
    the statements before the rollback are plain calls, in sync code.

    A handler of `StaleDataError` needs no rollback to be checked: only a flush raises it, for
    an UPDATE or DELETE of a row already in the database (another version, or no row
    matched). So a read in it before any rollback (`raise NotFound(f"{self.id} changed")`)
    raises PendingRollbackError in place of the error the handler meant to raise. Besides the
    instances counted above, the one instance the `try` adds is counted as persistent when it
    is `self` (an abstract mapped base's method too) or a parameter the function never
    rebinds, and nothing else the function loads, deletes or adds by name could be the stale
    row. The handler must catch SQLAlchemy's errors only (`except (StaleDataError,
    ValueError)` may have caught an error raised before any flush). An instance built in the
    function is new, and stays readable; a value taken before the `try` (`doc_id = self.id`)
    or `self.__class__.__name__` reads nothing. No automatic fix: after a rollback the read
    loads the row again, and the row may be gone (then `ObjectDeletedError`; in async code
    the load needs an `await`); take the value before the `try`.

    `with suppress(IntegrityError):` (`contextlib.suppress`, naming a database error or
    `Exception`) around the commit is such a handler: it swallows the error and goes on after
    the block. It is reported at `suppress(...)`, without an automatic fix (the block goes on
    after the statement that failed; a `try`/`except` that rolls back says where to stop).
    A handler that uses the session itself before any rollback (a query for the row that won a
    race, before a `raise` when there is none) is reported at that use, whatever it does
    afterwards. Rolling back a savepoint taken before the `try` (`nested = await
    session.begin_nested()`, then `await nested.rollback()` in the handler) makes the session
    usable again (a savepoint not used as a context manager: see below).

    A `try` inside a savepoint block (`with session.begin_nested():`) is another case: the
    failed flush rolls back and closes that savepoint alone, and the code after the block goes
    on in the outer transaction, so a use there is fine. A use later in the block (or in the
    handler) raises `InvalidRequestError: Can't operate on closed transaction inside context
    manager` (a flush: `PendingRollbackError`), whatever the handler rolls back or closes
    first; it is reported with no automatic fix (a rollback there would discard the outer
    transaction's work too): use the session after the block, or let the error leave it. A
    `commit()` in the block commits the outer transaction, whose failure (a deferred
    constraint checked at COMMIT) is not the savepoint's alone: it is judged as without one.
    A `try` inside the session's own transaction block (`with session.begin():`, or `with
    SessionLocal.begin() as session:` of a sessionmaker) is judged the same way, a failed
    `commit()` too: the failure rolls back and closes that block's transaction, a later use in
    the block raises `InvalidRequestError` whatever the handler rolls back (reported, no
    automatic fix), and after `session.begin()`'s block a new transaction begins, so a use
    there is fine.

    The session may be reached through an object the function builds around it (`repo =
    UserRepository(session)`, or a class method returning `cls(session)`: `repo =
    UserRepository.from_session(session)`): a method of that class that flushes or commits the
    `self.<attr>` its constructor keeps the session in is a flush of the session, and a method
    that queries it (itself, or through its own methods) is a use.

    The commit may also happen one call away: a project function (a service) that takes the
    session as a parameter typed as a session and commits or flushes it without a handler of
    its own that catches every failure. A handler around that call catches its failed commit
    too (the rollback is then an unsafe fix: the handler also catches what the service raised
    before its commit).

    On PostgreSQL a failed query is enough. In a project whose engine URLs (outside tests) are
    all PostgreSQL's, with no `"AUTOCOMMIT"` isolation level named, a handler around a query
    of the session (`execute`, `scalar(s)`, `get`, `stream`, `connection()`, or a project
    function that runs one on the session it is given) that neither rolls back nor raises,
    while the session is used again, is reported too: PostgreSQL aborts the transaction when
    a statement fails, refuses every later statement of it (`current transaction is aborted,
    commands ignored until end of transaction block`) and turns its commit into a rollback.
    SQLAlchemy does not mark the session, so nothing warns until the next statement fails.
    No automatic fix: the rollback also discards the transaction's earlier work; a savepoint
    (`async with session.begin_nested():` around the query) keeps it.

    ## Why is this bad?
    When a flush fails, SQLAlchemy rolls back the database transaction, but the session keeps
    the failed transaction open until the code calls `rollback()`. Until then every use of the
    session (a query, a commit, a lazy load) raises `PendingRollbackError: This Session's
    transaction has been rolled back due to a previous exception during flush`. The handler
    meant to deal with the error (skip a duplicate, report a conflict) and go on; the next
    request, loop round or caller fails instead, far from the cause.

    ## The fix
    `session.rollback()` (`await session.rollback()` for an `AsyncSession`) as the handler's
    first statement.

    ## Fix safety
    Safe after a failed `commit()`: the transaction is over either way, and the rollback only
    makes the session usable again.

    Unsafe (applied only with `--unsafe-fixes`) when the try only flushes: the code meant to go
    on with the same transaction, and the rollback discards the work the transaction did
    before the failed flush too (before the fix that work was lost as well, but with an
    error). If that work should survive, run the flush in a savepoint:
    `with session.begin_nested(): session.flush()`.

    After the rollback is in place, SQF004 may suggest `expunge_all()` after it; in a handler
    that goes on that fix is unsafe too, and `apply --yes` leaves it out.
    """
    example_project = {**PROJECT, **w3.PROJECT, **stale.PROJECT}
    examples = EXAMPLES + w3.EXAMPLES + stale.EXAMPLES
    valid = VALID + w3.VALID + stale.VALID

    @classmethod
    def wants(cls, index, facts) -> bool:
        if facts is not None and not catches_db_error(facts.all_caught) \
                and SUPPRESS not in facts.all_called | facts.all_methods:
            return False  # every finding is about a handler (or `suppress()`) catching a database error
        return facts is None or bool({"commit", "flush"} & facts.all_methods) or _may_flush_through_calls(
            index, facts) or bool(
            facts.all_methods & STATEMENT_METHODS or facts.all_called & aborts.statement_function_names(index)) \
            and aborts.aborting_database(index)

    def run(self, ctx: FileContext) -> Iterator[Finding]:
        flushing = ctx.index.flushing_function_names()
        on_postgresql = aborts.aborting_database(ctx.index)
        querying = aborts.statement_function_names(ctx.index) if on_postgresql else frozenset()
        for qualname, fn in functions(ctx.module, ctx):
            found_shape = shape(ctx, fn, qualname)
            through_calls = bool((found_shape.methods | found_shape.calls) & flushing)
            queries = on_postgresql and bool(found_shape.methods & STATEMENT_METHODS or found_shape.calls & querying)
            if not ({"commit", "flush"} & found_shape.methods or through_calls or queries) \
                    or not (has_try(fn) or SUPPRESS in found_shape.calls | found_shape.methods):
                continue
            evs = events(fn, ctx)
            built = built_around(ctx, evs) if through_calls else {}
            caught: dict[tuple[int, str], _Caught] = {}
            for ev in evs:
                owner, statement = ev.owner, False
                if ev.kind == EventKind.CALL and ev.owner in built:
                    made = built[ev.owner]  # type: ignore[index]
                    if not ctx.index.constructed_flushes(made.cls, made.passed, ev.name or ""):
                        continue
                    via, owner = f"{ev.owner}.{ev.name}", made.session
                elif ev.kind == EventKind.CALL and ev.name in ("commit", "flush") and ev.owner is not None:
                    via = None
                elif through_calls and ev.kind == EventKind.USE and ev.name is not None and _flushing_call(ctx, ev):
                    via, owner = ev.owner, ev.name
                elif queries and _failed_statement(ctx, ev):
                    via, statement = (ev.owner, True) if ev.kind == EventKind.USE else (None, True)
                    owner = ev.name if ev.kind == EventKind.USE else ev.owner
                else:
                    continue
                found = _catching_handler(ctx, ev)
                if found is not None:
                    node, catcher = found
                    key = (id(catcher), owner)  # type: ignore[assignment]
                    handler = catcher if isinstance(catcher, cst.ExceptHandler) else None
                    suppressor = catcher if isinstance(catcher, cst.WithItem) else None
                    entry = caught.setdefault(key, _Caught(node, handler, owner, [],  # type: ignore[arg-type]
                                                           users=users_of(built, owner),  # type: ignore[arg-type]
                                                           suppressor=suppressor))
                    entry.calls.append(ev)
                    entry.statements += statement
                    if via is not None:
                        entry.through.append(via)
            for entry in caught.values():
                finding = self._check(ctx, qualname, fn, evs, entry)
                if finding is not None:
                    yield finding
                if not entry.only_statements:
                    # a handler reported for its missing rollback: that fix puts the rollback first
                    yield from self._reads_first(ctx, qualname, fn, evs, entry, reported=finding is not None)

    def _reads_first(self, ctx: FileContext, qualname: str, fn: cst.FunctionDef, evs: list[Event],
                     entry: _Caught, reported: bool) -> Iterator[Finding]:
        """Handlers of the failed commit that read a loaded instance before their rollback (a
        handler of StaleDataError: before any). ``reported``: ``entry.handler`` is reported
        for having no rollback."""
        S = entry.owner
        if not isinstance(entry.try_, cst.Try) or held(ctx, qualname, S, sessions(ctx, fn, qualname, evs)) is None:
            return  # (a `with suppress(...)` block reads nothing before a rollback: it has no handler)
        for handler in entry.try_.handlers:
            if not _catches_db_error(handler):
                continue
            early = early_reads(ctx, fn, qualname, evs, entry.try_, handler, S)
            if early is None or early.rollback is None and reported and handler is entry.handler:
                continue
            message = _early_message(early, S)
            is_async = session_is_async(ctx, fn, S, function_facts(ctx, qualname))
            if early.rollback is None or early.known is Known.UPDATED:
                yield self.finding(early.node, message + " (no automatic fix: after the rollback the read "
                                   "loads the row again, which may be gone: StaleDataError is also raised "
                                   "when no row matched)")
                continue
            if not early.movable or is_async is not False:
                yield self.finding(early.node, message + " (no automatic fix: "
                                   + ("the statements before the rollback are not plain calls)" if not early.movable
                                      else "in async code the read after the rollback would need an await)"))
                continue
            position = early.rollback
            edit = Edit(handler.body, replace=lambda upd, k=position: upd.with_changes(  # type: ignore[misc]
                body=[upd.body[k], *upd.body[:k], *upd.body[k + 1:]]))
            yield self.finding(early.node, message, Fix([edit]))

    def _check(self, ctx: FileContext, qualname: str, fn: cst.FunctionDef, evs: list[Event],
               entry: _Caught) -> Finding | None:
        S, handler = entry.owner, entry.handler
        refs = sessions(ctx, fn, qualname, evs)
        holder = held(ctx, qualname, S, refs)
        if holder is None and entry.only_through_calls:
            holder = _handed_in(ctx, qualname, S)
        block = _binding_with(entry.calls[0], S)
        if holder is None and block is not None and queries_a_model(ctx, evs, S, block):
            holder = Held.HERE  # `with Wrapper(factory) as S:` whose block queries a model through S
        if holder is None:
            return None
        ref = refs.get(S)
        if block is not None and _inside(entry.calls[0], block, after=entry.try_):
            return None  # the scope is inside the try: it closed before the handler runs
        if all(_in_savepoint(ev, entry, S) for ev in entry.calls):
            return None
        # Not for a failed query on PostgreSQL (the savepoint's release at the block's end fails
        # too; the transaction's commit there turns into a rollback), nor a commit in a savepoint
        # (it commits the outer transaction: a failure there is not the savepoint's alone).
        ends = _block_around(ctx, entry, S)
        if ends is not None and (entry.only_statements or entry.commits and ends.kind is BlockKind.SAVEPOINT):
            ends = None
        savepoint = ends.node if ends is not None else None
        early = _used_in_handler(ctx, evs, entry, savepoint)
        if early is None and (isinstance(entry.try_, cst.Try) and handler is not None
                              and _deals_with_it(entry.try_, handler, S, savepoint)
                              or _falls_into_raise(ctx, entry.try_, S)):
            return None
        given = given_through_scope(ctx, qualname, ref.block, S) if holder is Held.HERE and ref is not None else None
        if given is not None:  # `with existed_or_new(session) as S:` hands back the caller's session
            holder = Held.CALLER
        why = "" if early is not None else _used_again(ctx, fn, qualname, evs, entry, holder, ref, given, savepoint)
        if why is None:
            return None
        if ends is not None:
            return self._in_block(ctx, entry, why, early, ends)
        return self._finding(ctx, fn, qualname, entry, ref, why, early)

    def _in_block(self, ctx: FileContext, entry: _Caught, why: str, early: Event | None, block: _Block) -> Finding:
        """A use of the session after a failure that closed the transaction block around the
        try (a savepoint's, or the session's own), still inside that block (see
        :func:`_block_around`)."""
        S, line = entry.owner, ctx.position(block.node).start.line
        spelled = f"{'async ' if block.node.asynchronous is not None else ''}with {block.callee}()"
        if block.kind is BlockKind.SAVEPOINT:
            failed = "a failed flush"  # (a commit's failure is not the savepoint's alone: see _check)
            closed = (f"the failure rolled back the savepoint of the `{spelled}:` block of line {line} "
                      f"and closed it, so that use raises InvalidRequestError (\"Can't operate on closed "
                      f"transaction inside context manager\"; a flush: its subclass PendingRollbackError)")
            advice = ("use the session after the block, where the outer transaction goes on, or let the error "
                      "leave the block (no automatic fix: a rollback here would discard the outer transaction's "
                      "work too)")
        else:
            failed = "a failed commit" if entry.commits else "a failed flush"
            closed = (f"the failure rolled back the transaction of the `{spelled}:` block of line {line} and "
                      f"closed it, so that use raises InvalidRequestError (\"Can't operate on closed transaction "
                      f"inside context manager\"), whatever the handler rolls back first")
            after = "let the error leave the block and catch it around the block" if block.binds else \
                "use the session after the block, where a new transaction begins, or let the error leave the block"
            advice = f"{after} (no automatic fix: a rollback does not reopen the block's transaction)"
        if early is not None:
            return self.finding(early.node, f"`{early.owner}.{early.name}()` runs in a handler of {failed} of "
                                f"`{S}`: {closed}; {advice}")
        catches = "this handler catches" if entry.handler is not None else "`suppress()` swallows"
        return self.finding(entry.catcher, f"{catches} {failed} of `{S}`, and {why}: {closed}; {advice}")

    def _finding(self, ctx: FileContext, fn: cst.FunctionDef, qualname: str, entry: _Caught,
                 ref: SessionRef | None, why: str, early: Event | None = None) -> Finding:
        S = entry.owner
        is_async = ref.is_async if ref is not None and ref.is_async is not None else \
            session_is_async(ctx, fn, S, function_facts(ctx, qualname))
        if entry.only_statements:
            return self._aborted(entry, why, early, is_async)
        commits = any(ev.name == "commit" for ev in entry.calls if ev.kind == EventKind.CALL)
        if entry.handler is None:
            return self._suppressed(entry, commits, why, is_async)
        awaited = "await " if is_async else ""
        if entry.only_through_calls:
            commits = True  # the callee's work is the transaction's: the rollback is unsafe either way
            failed = f"a failed flush or commit of `{S}` in `{entry.through[0]}()`"
        else:
            failed = f"a failed `{S}.{'commit' if commits else 'flush'}()`"
        at = entry.handler if early is None else early.node
        if early is not None:
            message = (f"`{early.owner}.{early.name}()` runs in a handler of {failed}, before any "
                       f"`{awaited}{S}.rollback()`: the session still needs that rollback, so the call raises "
                       f"PendingRollbackError; roll back first")
        else:
            message = (f"this handler catches {failed} without `{awaited}{S}.rollback()`, and "
                       f"{why}: that use raises PendingRollbackError; roll back first")
        safe = commits and _only_the_commit_fails(entry)
        if early is not None and _rolls_back(entry.handler, S):
            pass  # no fix to qualify
        elif not commits:
            message += (" (an unsafe fix: the rollback also discards the transaction's earlier work; "
                        f"to keep it, flush in a savepoint: `with {S}.begin_nested():`)")
        elif not safe:
            message += (" (an unsafe fix: the handler also catches errors raised before the commit, "
                        "and there the rollback discards the transaction's pending work)")
        if is_async is None:
            return self.finding(at, message + " (cannot tell whether the session is async: no automatic fix)")
        if early is not None and _rolls_back(entry.handler, S):
            return self.finding(at, message + " (no automatic fix: the handler rolls back later; "
                                "that rollback belongs before the use)")
        rollback = session_call(S, "rollback", [], is_async)
        body = entry.handler.body
        if isinstance(body, cst.IndentedBlock):
            edit = Edit(body.body[0], before=[rollback])
        else:  # `except E: pass` on one line
            edit = Edit(entry.handler, replace=lambda upd, r=rollback: _indent(upd, r))  # type: ignore[misc]
        return self.finding(at, message, Fix([edit], safe=safe))


    def _suppressed(self, entry: _Caught, commits: bool, why: str, is_async: bool | None) -> Finding:
        """A failed commit or flush (``commits``: a commit is among them) swallowed by ``with
        suppress(IntegrityError):``."""
        S, awaited = entry.owner, "await " if is_async else ""
        failed = "a failed flush or commit" if entry.only_through_calls else \
            "a failed commit" if commits else "a failed flush"
        return self.finding(entry.catcher, (
            f"`suppress()` swallows {failed} of `{S}` without `{awaited}{S}.rollback()`, and {why}: that use "
            f"raises PendingRollbackError; catch the error with `try`/`except` and roll back there (no "
            f"automatic fix: the block goes on after the statement that failed, and where it should stop "
            f"is the code's to say)"))

    def _aborted(self, entry: _Caught, why: str, early: Event | None, is_async: bool | None) -> Finding:
        """A failed query (no flush) caught on PostgreSQL: the transaction is aborted."""
        S = entry.owner
        awaited = "await " if is_async else ""
        failed = f"a failed query of `{S}`" + (f" in `{entry.through[0]}()`" if entry.through else "")
        aborted = ("the database aborted the transaction when the query failed (PostgreSQL refuses every "
                   "later statement of it, `current transaction is aborted`, and turns its commit into a "
                   "rollback); SQLAlchemy does not know, so nothing warns")
        savepoint = f"`{'async ' if is_async else ''}with {S}.begin_nested():`"
        if early is not None:
            message = (f"`{early.owner}.{early.name}()` runs in a handler of {failed}, before any "
                       f"`{awaited}{S}.rollback()`: {aborted}; roll back first")
            at: cst.CSTNode = early.node
        else:
            where = "roll back in the handler" if entry.handler is not None else \
                "catch the error with `try`/`except` and roll back there"
            message = (f"this {'handler catches' if entry.handler is not None else '`suppress()` swallows'} {failed} "
                       f"without `{awaited}{S}.rollback()`, and {why}: {aborted}; "
                       f"{where}, or run the query in a savepoint ({savepoint})")
            at = entry.catcher
        message += " (no automatic fix: a rollback also discards the transaction's earlier work)"
        return self.finding(at, message)


def _early_message(early: EarlyRead, S: str) -> str:
    """Why reading an instance in the handler of a failed flush raises, and what to do."""
    if early.known is Known.UPDATED:
        why = (f"the failed flush expired `{early.obj}`, which was persistent (this handler catches "
               f"StaleDataError, which only an UPDATE or DELETE of a row already in the database raises)")
    elif early.known is Known.SELF:
        why = ("the failed flush expired every instance the session had loaded (`self` too, unless it was "
               "added in this transaction)")
    else:
        why = "the failed flush expired every instance the session had loaded"
    if early.rollback is None:
        return (f"{early.text} in this handler of a StaleDataError from `{S}.commit()`/`flush()`, with no "
                f"`{S}.rollback()` before it: {why}, and loading `{early.obj}` now raises PendingRollbackError, "
                f"which hides the error being handled; take the value before the `try`, or roll back first")
    return (f"{early.text} before `{S}.rollback()` in this handler of a failed `{S}.commit()`/`flush()`: "
            f"{why}, and loading `{early.obj}` now raises PendingRollbackError, which hides the error being "
            f"handled; roll back first")


@dataclass
class _Caught:
    try_: cst.Try | cst.With  # the with-statement of a `with suppress(...)` block
    handler: cst.ExceptHandler | None  # None: that block swallows the error
    owner: str
    calls: list[Event]  # the commit/flush calls of that session in the try body (or the
    # session passed to a project function that commits it: see `through`)
    through: list[str] = field(default_factory=list)  # those project functions, as called
    # objects the function built around the session (`repo = Repo(session)`)
    users: dict[str, Built] = field(default_factory=dict)
    statements: int = 0  # how many of `calls` are queries, not flushes (see _failed_statement)
    suppressor: cst.WithItem | None = None  # the `suppress(...)` item, when there is no handler

    @property
    def catcher(self) -> cst.CSTNode:
        """What catches the failure: the handler, or the `suppress(...)` with-item."""
        catcher = self.handler or self.suppressor
        assert catcher is not None
        return catcher

    @property
    def only_through_calls(self) -> bool:
        return len(self.through) == len(self.calls)

    @property
    def only_statements(self) -> bool:
        return self.statements == len(self.calls)

    def beside_suppressor(self) -> tuple[list[cst.WithItem], list[cst.WithItem]]:
        """The items of the `with` statement before and after its `suppress(...)` item (none
        when a handler catches): the ones before are entered first and exited last."""
        if self.suppressor is None or not isinstance(self.try_, cst.With):
            return [], []
        items = list(self.try_.items)
        at = next(i for i, item in enumerate(items) if item is self.suppressor)
        return items[:at], items[at + 1:]

    @property
    def around(self) -> tuple[cst.CSTNode, ...]:
        """The nodes around the try (or the `suppress()` block), outermost first: the path of its
        first call above the try."""
        path = self.calls[0].path
        return path[: next((i for i, n in enumerate(path) if n is self.try_), 0)]

    @property
    def commits(self) -> bool:
        """A commit among the calls that failed, or a project function's call (it may commit)."""
        return bool(self.through) or any(ev.kind == EventKind.CALL and ev.name == "commit" for ev in self.calls)


def _failed_statement(ctx: FileContext, ev: Event) -> bool:
    """A query whose failure aborts the transaction: ``S.execute(...)`` (a session method
    sending a statement), or a session handed to a project function that sends statements
    through it. (Asked only in a project that runs on PostgreSQL only: see index.aborts.)"""
    if ev.kind == EventKind.CALL:
        found = ev.name in STATEMENT_METHODS and ev.owner is not None
    elif ev.kind == EventKind.USE and ev.name is not None and ev.owner is not None:
        passed = _passed_at(ev)
        found = passed is not None and aborts.runs_statements_on(ctx.index, ctx.qualify(ev.owner), *passed)
    else:
        found = False
    return found


def _may_flush_through_calls(index: index_mod.ProjectIndex, facts: index_mod.ModuleFacts) -> bool:
    """Might the module hand a session to a project function that commits or flushes it (as
    :func:`_flushing_call` resolves the callee: by its qualified name, so a client's method of
    the same name is not one), or call such a method of an object built around a session
    (``built_around``)?"""
    return any(getattr(index.function(q), "flushes_params", None) for q in facts.qualified_calls) \
        or bool(facts.all_methods & index.self_flushing_method_names())


def _flushing_call(ctx: FileContext, ev: Event) -> str | None:
    """For a name passed to a call (a "use" event): "commit"/"flush" when the callee is a
    project function that commits or flushes the session it gets there."""
    passed = _passed_at(ev)
    if passed is None:
        return None
    return ctx.index.flushes_passed_session(ctx.qualify(ev.owner), *passed)


def _passed_at(ev: Event) -> tuple[int | None, str | None] | None:
    """For a name passed to a call (a "use" event): its position among the positional
    arguments, or its keyword; None for a star argument or a call it is not an argument of.
    (The event's value is the call: its argument is found there, not through the parent map.)"""
    call = ev.value
    if not isinstance(call, cst.Call):
        return None
    arg = next((a for a in call.args if a.value is ev.node), None)
    if arg is None or ev.owner is None or arg.star:
        return None
    if arg.keyword is not None:
        return None, arg.keyword.value
    positional = [a for a in call.args if a.keyword is None]
    if any(a.star for a in positional):
        return None
    return next(i for i, a in enumerate(positional) if a is arg), None


def _handed_in(ctx: FileContext, qualname: str, S: str) -> Held | None:
    """A parameter the function passes to a project function that commits it as a session:
    the caller's (or a FastAPI provider's) session, whatever its annotation says."""
    param = param_facts(function_facts(ctx, qualname), S)
    if param is None:
        return None
    return Held.PROVIDER if ctx.index.param_dependency(param)[0] else Held.CALLER


def _indent(updated: cst.CSTNode, rollback: cst.SimpleStatementLine) -> cst.CSTNode:
    assert isinstance(updated, cst.ExceptHandler) and isinstance(updated.body, cst.SimpleStatementSuite)
    rest = cst.SimpleStatementLine(body=updated.body.body, trailing_whitespace=updated.body.trailing_whitespace)
    return updated.with_changes(body=cst.IndentedBlock(body=[rollback, rest]))


def _catching_handler(ctx: FileContext, ev: Event) -> tuple[cst.Try | cst.With, cst.ExceptHandler | cst.WithItem] | None:
    """The innermost try whose body holds the call, and its first handler for a database
    error; or the innermost `with suppress(...)` block for one, and that item. None when the
    error goes past the function's tries."""
    path = ev.path
    for i in range(len(path) - 2, -1, -1):
        node = path[i]
        if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            return None
        if isinstance(node, cst.Try) and path[i + 1] is node.body:
            for handler in node.handlers:
                if _catches_db_error(handler):
                    return node, handler
        if isinstance(node, cst.With) and path[i + 1] is node.body:
            for item in node.items:
                if ctx.qualify(_suppressed(item)) == f"contextlib.{SUPPRESS}" and catches_db_error(_suppressed_names(item)):
                    return node, item
    return None


def _suppressed(item: cst.WithItem) -> str | None:
    """The callee of a with-item that may be `suppress(...)`, as written."""
    call = item.item
    name = dotted(call.func) if isinstance(call, cst.Call) else None
    return name if name is not None and name.rsplit(".", 1)[-1] == SUPPRESS else None


def _suppressed_names(item: cst.WithItem) -> list[str]:
    """The last names of the classes `suppress(...)` swallows, a tuple of them too
    (`suppress((IntegrityError, ValueError))`: `issubclass` reads nested tuples)."""
    assert isinstance(item.item, cst.Call)
    values = [arg.value for arg in item.item.args if not arg.star]
    for value in values:  # (grows as it goes: a tuple's items, a nested tuple's too)
        if isinstance(value, cst.Tuple):
            values += [e.value for e in value.elements if not isinstance(e, cst.StarredElement)]
    return [name.rsplit(".", 1)[-1] for value in values if (name := dotted(value))]


def _caught(handler: cst.ExceptHandler) -> list[str] | None:
    """The last names of the exception classes the handler catches (None: a bare except)."""
    if handler.type is None:
        return None
    kinds = handler.type.elements if isinstance(handler.type, cst.Tuple) else [cst.Element(handler.type)]
    return [name.rsplit(".", 1)[-1] for el in kinds if (name := dotted(el.value)) is not None]


def _catches_db_error(handler: cst.ExceptHandler) -> bool:
    caught = _caught(handler)
    return catches_db_error([BARE_EXCEPT] if caught is None else caught)


def catches_db_error(caught: Iterable[str]) -> bool:
    """Do handlers catching these classes (last names, BARE_EXCEPT for ``except:``) catch a
    failed flush?"""
    return any(name == BARE_EXCEPT or name in DB_ERRORS for name in caught)


def _only_the_commit_fails(entry: _Caught) -> bool:
    """Can the handler only have caught the commit's failure? It catches database errors only,
    or nothing but session calls comes before the commit in the try body."""
    if entry.through or entry.handler is None:
        return False  # the handler catches whatever the callee raises before its commit
    caught = _caught(entry.handler)
    if caught is not None and not {"Exception", "BaseException"} & set(caught):
        return True
    for stmt in entry.try_.body.body:
        methods = _session_statement(stmt, entry.owner)
        if methods is None:
            return False
        if "commit" in methods:
            return True
    return False


def _session_statement(stmt: cst.CSTNode, S: str) -> list[str] | None:
    """``S.add(x)``, ``await S.flush()``: the methods of a line made of calls on ``S`` only."""
    calls = statement_calls(stmt)
    if calls is None:
        return None
    out = []
    for _, value in calls:
        if not (value is not None and isinstance(value.func, cst.Attribute) and dotted(value.func.value) == S):
            return None
        out.append(value.func.attr.value)
    return out


def _deals_with_it(try_: cst.Try, handler: cst.ExceptHandler, S: str, savepoint: cst.With | None = None) -> bool:
    """Does the handler (or the try's finally) roll back or close the session, or does the
    handler raise (a `raise`, or a call like `abort(409)`)? In a ``savepoint`` block only
    leaving counts: the failure closed the block's transaction, and no rollback there opens
    it again."""
    blocks: list[cst.CSTNode] = [handler.body]
    if try_.finalbody is not None:
        blocks.append(try_.finalbody.body)
    for block in blocks:
        for call in _calls(block):
            name = dotted(call.func) or ""
            last = name.rsplit(".", 1)[-1]
            if savepoint is None and (last == "rollback" or (last in RESETS and name == f"{S}.{last}")):
                return True
            if block is handler.body and name in LEAVES:
                return True
    return raises_on_every_path(handler.body)


def _falls_into_raise(ctx: FileContext, try_: cst.Try | cst.With, S: str) -> bool:
    """Does the code after the whole `try` statement, in its own block, raise on every path
    without touching ``S`` first (`except Exception: try: finalize(db) except Exception:
    log(...)` then `raise`)? Then a handler that goes on only goes on into that `raise`."""
    block = ctx.parent(try_)
    if not isinstance(block, cst.IndentedBlock):
        return False
    at = next((i for i, stmt in enumerate(block.body) if stmt is try_), None)
    rest = list(block.body[at + 1:]) if at is not None else []
    if not rest or not raises_on_every_path(cst.IndentedBlock(body=rest)):
        return False
    root = S.split(".")[0]
    return not any(mentions(stmt, root) for stmt in rest)


def _rolls_back(handler: cst.ExceptHandler, S: str) -> bool:
    """Does the handler call `S.rollback()` (or another reset of ``S``) somewhere?"""
    return any((dotted(call.func) or "") in {f"{S}.{r}" for r in RESETS} for call in _calls(handler.body))


def _own(node: cst.CSTNode, matcher) -> Iterator[cst.CSTNode]:
    """Nodes matching in ``node``, nested functions and classes left out."""
    class V(cst.CSTVisitor):
        def __init__(self) -> None:
            super().__init__()
            self.found: list[cst.CSTNode] = []

        def on_visit(self, n: cst.CSTNode) -> bool:
            if isinstance(n, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
                return False
            if m.matches(n, matcher):
                self.found.append(n)
            return True

    return iter(visit_with(node, V).found)


def _calls(node: cst.CSTNode) -> Iterator[cst.Call]:
    return _own(node, m.Call())  # type: ignore[return-value]


def _binding_with(ev: Event, S: str) -> cst.With | None:
    """The innermost with-statement around ``ev`` that binds ``S`` (`with maker() as S:`);
    several blocks of one function may bind the same name, each its own session."""
    for node in reversed(ev.path):
        if isinstance(node, cst.With) and any(with_binds(item, dotted_target=True) == S for item in node.items):
            return node
    return None


def _inside(ev: Event, node: cst.CSTNode, after: cst.CSTNode) -> bool:
    """Is ``node`` on ``ev``'s path below ``after``?"""
    path = ev.path
    start = next((i for i, n in enumerate(path) if n is after), None)
    return start is not None and any(n is node for n in path[start + 1:])


def _in_savepoint(ev: Event, entry: _Caught, S: str) -> bool:
    """Is the call inside `with S.begin_nested():` / `with S.begin():` within the try (or after
    `suppress(...)` in its own with-statement)? That block rolls itself back when the flush
    fails, before the handler runs."""
    path = ev.path
    start = next((i for i, n in enumerate(path) if n is entry.try_), len(path))
    inside = [item for node in path[start + 1:] if isinstance(node, cst.With) for item in node.items]
    inside += entry.beside_suppressor()[1]
    return any(with_item_callee(item) in (f"{S}.begin_nested", f"{S}.begin") for item in inside)


def _ending(handler: cst.ExceptHandler) -> type[cst.CSTNode] | None:
    """How the handler's last statement leaves it: Return, Break or Continue (None: it falls
    through to the code after the try)."""
    body = handler.body
    last = body.body[-1] if isinstance(body, cst.IndentedBlock) else body
    smalls = last.body if isinstance(last, (cst.SimpleStatementLine, cst.SimpleStatementSuite)) else ()
    return next((type(x) for x in smalls if isinstance(x, (cst.Return, cst.Break, cst.Continue))), None)


class BlockKind(Enum):
    """The transaction a with-block around the try holds."""

    SAVEPOINT = "begin_nested"  # `with S.begin_nested():`, inside the session's transaction
    TRANSACTION = "begin"  # `with S.begin():`, `with maker.begin() as S:`: the session's own


@dataclass(frozen=True)
class _Block:
    """A with-block around the try that ends a transaction where it ends."""

    node: cst.With
    kind: BlockKind
    callee: str  # its item's callee as written: `session.begin_nested`, `SessionLocal.begin`
    binds: bool  # the block opens the session too (`with SessionLocal.begin() as S:`)


def _block_in(ctx: FileContext, node: cst.With, items: Sequence[cst.WithItem], S: str) -> _Block | None:
    """The transaction block the first of ``items`` (of the with-statement ``node``) that
    opens one for ``S`` opens. `S.begin(...)` with arguments (`subtransactions=True`, `nested=`
    of older SQLAlchemy) is not one, nor `X.begin() as S` of an ``X`` that is not a session
    factory of the project (a unit of work's own `begin()`)."""
    for item in items:
        callee = with_item_callee(item)
        if callee is None:
            continue
        expr = item.item.expression if isinstance(item.item, cst.Await) else item.item
        if callee == f"{S}.begin_nested":
            return _Block(node, BlockKind.SAVEPOINT, callee, binds=False)
        if not callee.endswith(".begin") or not isinstance(expr, cst.Call) or expr.args:
            continue
        if callee == f"{S}.begin":
            return _Block(node, BlockKind.TRANSACTION, callee, binds=False)
        if with_binds(item, dotted_target=True) == S and ctx.index.factory(ctx.qualify(callee[: -len(".begin")])) is not None:
            return _Block(node, BlockKind.TRANSACTION, callee, binds=True)
    return None


def _block_around(ctx: FileContext, entry: _Caught, S: str) -> _Block | None:
    """The innermost with-block around the try (or the `suppress()` block) whose transaction
    the failure ends: `with S.begin_nested():`, `with S.begin():`, or `with maker.begin() as
    S:`. A failed flush there (or, in the session's own transaction, a failed commit) rolls
    back that block's transaction and closes it: a use of ``S`` later in the block raises
    InvalidRequestError, while the code after the block goes on (in the outer transaction of
    a savepoint, in a new one after `S.begin()`)."""
    if isinstance(entry.try_, cst.With):  # `with S.begin_nested(), suppress(E):`: it swallows the error where the block ends
        found = _block_in(ctx, entry.try_, entry.beside_suppressor()[0], S)
        if found is not None:
            return found
    for node in reversed(entry.around):
        if isinstance(node, cst.With):
            found = _block_in(ctx, node, node.items, S)
            if found is not None:
                return found
    return None


def _used_again(ctx: FileContext, fn: cst.FunctionDef, qualname: str, evs: list[Event], entry: _Caught,
                holder: Held, ref: SessionRef | None, given: str | None = None,
                savepoint: cst.With | None = None) -> str | None:
    """Why the session is used after the handler, or None when it is not. ``given``: the
    parameter whose session a scope handed back as ``S`` (the caller's); ``savepoint``: the
    savepoint block around the try, the only place where a use fails (see
    :func:`_block_around`)."""
    S, body = entry.owner, entry.handler.body if entry.handler is not None else None
    ending = _ending(entry.handler) if entry.handler is not None else None  # a suppressed error: what follows the block
    paths = ctx.cached(("statement_paths", id(fn)), lambda: statement_paths(fn))
    # the code after the handler: what follows its last statement (or, for a one-line
    # handler, what follows the try statement)
    last = body.body[-1] if isinstance(body, cst.IndentedBlock) else entry.try_
    if ending is cst.Break:  # what follows the loop the handler breaks out of
        broken = _loop_around(entry)
        last_path = paths.get(id(broken)) if broken is not None else None
    else:
        last_path = paths.get(id(last)) if ending is None else None
    loop = _loop_back(evs, entry, ref) if ending in (None, cst.Continue) else None
    scope = _binding_with(entry.calls[0], S)
    for ev in evs:
        handed = handed_use(ctx, ev, S)
        if handed is None and (ev.kind != EventKind.CALL
                               or (ev.owner != S or ev.name in NEUTRAL) and not uses_through(ctx, ev, entry.users)):
            continue
        if _binding_with(ev, S) is not scope:
            continue  # another `with ... as S:` block: another session
        if savepoint is not None and not any(n is savepoint for n in ev.path):
            continue  # after the savepoint block: the outer transaction, still usable
        if any(n is body for n in ev.path) or (last_path is not None and falls_through_to(last_path, ev.path)):
            if loop is not None and not any(n is loop for n in ev.path):
                break  # the loop comes round first
            if ev.owner == S and ev.name in RESETS:
                if savepoint is None:
                    return None
                continue  # in the savepoint's block, a rollback opens nothing again
            if handed is not None:
                return f"`{handed}()`, which uses it, runs next (line {ctx.position(ev.node).start.line})"
            return f"`{ev.owner}.{ev.name}()` runs next (line {ctx.position(ev.node).start.line})"
    if savepoint is not None:
        # a loop in the block comes round to the closed savepoint; a loop around the block
        # opens a new savepoint each round, and what follows the block is the outer transaction's
        inside = loop is not None and _inside(entry.calls[0], loop, after=savepoint)
        return "the loop's next round uses it again" if inside else None
    if loop is not None:
        return "the loop's next round uses it again"
    if ref is not None and commits_after_yield(ctx, ref):
        return "its scope commits on exit"
    if holder is Held.CALLER:
        # a parameter: its project callers say (a `self.<attr>` session: the object's other methods)
        goes_on = caller_goes_on(ctx, qualname, given or S) if "." not in S else GoesOn(None)
        if goes_on is None:
            return None  # every caller is known, and none uses the session after the call
        return f"{goes_on.where} goes on using it" if goes_on.where else "the code that handed it in goes on using it"
    if holder is Held.PROVIDER and provider_commits(ctx, qualname, S, ref):
        return "the code that provides it commits it after this function returns"
    return None


def _used_in_handler(ctx: FileContext, evs: list[Event], entry: _Caught,
                     savepoint: cst.With | None = None) -> Event | None:
    """The handler's own first use of the session before anything ends the failed
    transaction (a query to find the row that won a race, before a `raise`): why it fails.
    In a ``savepoint`` block nothing but leaving the block ends it."""
    if entry.handler is None:
        return None  # `suppress()` has no code of its own
    S, body = entry.owner, entry.handler.body
    nested = savepoints(evs, S)
    scope = _binding_with(entry.calls[0], S)
    for ev in evs:
        if not any(n is body for n in ev.path) or ev.kind != EventKind.CALL or _binding_with(ev, S) is not scope:
            continue  # (a `with ... as S:` block in the handler opens another session)
        if (ev.owner == S or ev.owner in nested) and ev.name in RESETS:
            if savepoint is None:
                return None
            continue
        if ev.owner == S and ev.name not in NEUTRAL or uses_through(ctx, ev, entry.users):
            return ev
    return None


def _loop_around(entry: _Caught) -> cst.For | cst.While | None:
    """The innermost loop of the function around the try: the one its handler's `break` leaves."""
    for node in reversed(entry.around):
        if isinstance(node, (cst.For, cst.While)):
            return node
        if isinstance(node, (cst.FunctionDef, cst.Lambda)):
            return None
    return None


def _loop_back(evs: list[Event], entry: _Caught, ref: SessionRef | None) -> cst.CSTNode | None:
    """The loop around the try that runs again with the same session (a loop inside the
    session's scope that does not open a new session each round), or None."""
    path = entry.calls[0].path
    top = len(entry.around)
    scope_start = next((i for i, n in enumerate(path) if ref is not None and n is ref.block), -1)
    for i in range(top - 1, scope_start, -1):
        loop = path[i]
        if isinstance(loop, (cst.For, cst.While)):
            return None if bound_in(evs, entry.owner, loop) or leaves_the_loop(path[i + 1: top + 1]) else loop
    return None
