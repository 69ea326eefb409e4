"""SQF012 lost-update: a column changed on an instance its session no longer holds."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from ..lazy import lazy
from . import match as m
from .base import Example, FileContext, Finding, Pass, Valid
from .examples import BOT, SYNC_DB
from .flow import (
    BindingKind,
    Event,
    EventKind,
    SessionRef,
    binding_of,
    events,
    falls_through_to,
    functions,
    held,
    inside,
    model_for,
    sessions,
    shape,
    with_end,
    with_scopes,
)
from .helpers import calls_a_scope, dotted, holds_a_session
from .uses import Use, uses

if TYPE_CHECKING:
    import libcst as cst

    from ..index import Model
else:
    cst = lazy("libcst")

# Session methods that detach what the session holds (`expunge` only its argument).
DETACHING = frozenset({"close", "expunge", "expunge_all"})
# Session methods that put an object (back) into a session.
ATTACHING = frozenset({"add", "add_all", "merge"})
# Session methods after which the instances the session holds are expired.
EXPIRING = frozenset({"commit", "rollback", "expire", "expire_all"})
# Plain calls that only look at an object.
_LOOKS = frozenset({"isinstance", "print", "repr", "str", "id", "type", "bool", "len"})


class How(Enum):
    """What detached the instance."""

    BLOCK = "block"  # the end of `with Session(...) as s:`: the session closed
    CLOSE = "close"  # `s.close()`
    EXPUNGE_ALL = "expunge_all"  # `s.expunge_all()`
    EXPUNGE = "expunge"  # `s.expunge(obj)`


@dataclass
class _Detach:
    how: How
    session: str  # the session expression
    event: Event  # the with statement's event, or the call's
    path: tuple[cst.CSTNode, ...]  # the detaching statement's path (the statement last)
    end: tuple[int, int]  # where the detaching statement ends (line, column)
    scope_expires: bool = False  # the block's exit expires what it holds (a commit or rollback)
    expires_on_commit: bool = True
    obj: str | None = None  # EXPUNGE: the name expunged
    at: int = 0  # the index of the event after which the instance is detached
    is_async: bool | None = None

    @property
    def loops(self) -> set[int]:
        return {id(n) for n in self.path if isinstance(n, (cst.For, cst.While))}


@dataclass
class _Tracked:
    """An ORM instance bound once in the function and held by the detaching session."""

    name: str
    model: Model
    bound: Event  # its one assignment
    expired: bool = False
    many: bool = False  # a list of instances (`users = s.scalars(...).all()`), followed through its loops


@dataclass
class _Seen:
    """What the function does with the tracked name after (or around) the detachment."""

    writes: list[tuple[Use, str, bool]] = field(default_factory=list)  # use, attribute, augmented
    reads: list[tuple[Use, str]] = field(default_factory=list)


class LostUpdate(Pass):
    code = "SQF012"
    name = "lost-update"
    summary = "a column changed on an instance after its session let it go, and never saved"
    fix_safety = "none"
    triggers = (b"with", b".close(", b".expunge")
    explanation = """
    ## What it does
    Reports an attribute assignment (`job.status = "done"`, `job.tries += 1`,
    `setattr(job, "status", "done")`) to a mapped column of an ORM instance at a point where
    the instance is provably detached, when nothing in the function saves it afterwards. An
    instance is detached when the session that loaded it (or that it was added to and
    committed) is gone: the end of `with Session(engine) as s:` / `async with maker() as s:`
    or of a project context manager that closes the session it yields (`finally:
    session.close()` after the yield, or the yield inside `with maker() as session:`),
    `s.close()`, `s.expunge_all()`, or `s.expunge(obj)`. A scoped registry's session, or one
    a context manager leaves open, outlives the block: not a detachment. The instances of a
    list loaded through the session (`users = s.scalars(select(User)).all()`) are followed
    through the loops over it (`for user in users: user.active = False`).

    It reports only what the function proves: the name is bound once, by a load through that
    session (or a constructed instance added to it), and after the detachment it is not added
    or merged into any session, not returned or yielded, not passed to a call, not stored on
    another object or in a container, not used by a nested function, and none of its methods
    is called (any of those may re-attach it). Nothing else is added or merged afterwards
    either, other than an instance constructed in the function (a related object's cascade
    could carry the instance back). The changed value is not read back later (the function
    may change a detached copy on purpose, to show it), and no read after the detachment
    would raise instead (an expired column, a lazy relationship: SQF003, SQF001 and SQF006
    describe those).

    ## Why is this bad?
    A detached instance belongs to no session, so no flush ever looks at it. The assignment
    succeeds, the object in memory shows the new value, a later `commit()` succeeds, and the
    row keeps its old value: no error, no warning, the update is silently lost. It is easy
    to write: the object was loaded inside `with Session(...) as s:` and the code that
    changes it was added after the block, or a helper closed the session earlier.

    ## The fix
    Make the change where the session still holds the instance: inside the `with` block,
    before `close()`/`expunge()`, followed by the commit. Or re-attach the instance to the
    session that will commit: `job = session.merge(job)` (`await session.merge(job)` for an
    `AsyncSession`) and change the returned instance, or `session.add(job)` when no other
    open session holds it; then commit.

    ## Fix safety
    None: reported only. Which session should save the change, and when, is the author's
    decision: moving the assignment into the block may change what the commit in it saves,
    and merging loads the row again.
    """
    example_project = {"app/__init__.py": "", "app/db.py": SYNC_DB, "bot/__init__.py": "",
                       "bot/services.py": BOT}
    examples = (
        Example(
            title="the name is set after the session that loaded the user closed",
            before='''
            from sqlalchemy.orm import Session

            from app.db import User, engine


            def rename(user_id: int, name: str) -> None:
                with Session(engine) as session:
                    user = session.get(User, user_id)
                user.name = name
            ''',
        ),
        Example(
            title="async: changed after the block, committed in the next one",
            before='''
            from bot.services import User, session_pool


            async def rename(user_id: int, name: str) -> None:
                async with session_pool() as session:
                    user = await session.get(User, user_id)
                user.name = name
                async with session_pool() as session:
                    await session.commit()
            ''',
        ),
        Example(
            title="changed after close()",
            before='''
            from app.db import SessionLocal, User


            def rename(user_id: int, name: str) -> None:
                session = SessionLocal()
                try:
                    user = session.get(User, user_id)
                finally:
                    session.close()
                setattr(user, "name", name)
            ''',
        ),
        Example(
            title="changed after expunge(), then the session commits",
            before='''
            from sqlalchemy.orm import Session

            from app.db import User


            def rename(session: Session, user_id: int, name: str) -> None:
                user = session.get(User, user_id)
                session.expunge(user)
                user.name = name
                session.commit()
            ''',
        ),
    )
    valid = (
        Valid(
            '''
            from sqlalchemy.orm import Session

            from app.db import User, engine


            def rename(user_id: int, name: str) -> None:
                with Session(engine) as session:
                    user = session.get(User, user_id)
                user.name = name
                with Session(engine) as session:
                    user = session.merge(user)
                    session.commit()
            ''',
            "merged into a session again after the change: that session saves it",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session

            from app.db import User, engine


            def rename(user_id: int, name: str) -> None:
                with Session(engine) as session:
                    user = session.get(User, user_id)
                user.name = name
                with Session(engine) as session:
                    session.add(user)
                    session.commit()
            ''',
            "added to a session again after the change",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session

            from app.db import engine


            def label(path: str) -> None:
                with Session(engine) as session:
                    options = Options()
                options.path = path
            ''',
            "an object that is not an ORM instance (not loaded through the session)",
        ),
        Valid(
            '''
            import threading

            from app.db import User

            lock = threading.Lock()


            def rename(session, user_id: int, name: str) -> None:
                with lock:
                    user = session.get(User, user_id)
                user.name = name
            ''',
            "a context manager that is not a session: nothing closes at the end of the block",
        ),
        Valid(
            '''
            from flask_sqlalchemy import SQLAlchemy

            from app.db import User

            db = SQLAlchemy()


            def rename(user_id: int, name: str) -> None:
                with db.session.begin():
                    user = db.session.get(User, user_id)
                user.name = name
                db.session.commit()
            ''',
            "a scoped session (Flask-SQLAlchemy's `db.session`): the block commits but does not "
            "close it, the instance stays attached and the next commit saves the change",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session

            from app.db import User, engine


            def name_of(user_id: int) -> str:
                with Session(engine) as session:
                    user = session.get(User, user_id)
                return user.name
            ''',
            "the instance is only read after the block",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session

            from app.db import User, engine


            def rename(user_id: int, name: str) -> None:
                with Session(engine) as session:
                    user = session.get(User, user_id)
                user.name = name
                save(user)
            ''',
            "passed to a function after the change: it may merge it into its own session",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session

            from app.db import User, engine


            def public_view(user_id: int) -> dict:
                with Session(engine) as session:
                    user = session.get(User, user_id)
                user.name = user.name.title()
                return {"id": user.id, "name": user.name}
            ''',
            "the changed value is read back: a detached copy changed on purpose, for display",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session

            from app.db import User, engine


            def rename(user_id: int, name: str) -> None:
                with Session(engine) as session:
                    user = session.get(User, user_id)
                    session.commit()
                user.name = name
                print(user.id)
            ''',
            "a read after the block raises first (the commit expired the instance): "
            "SQF003 reports that",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session

            from app.db import User, engine


            def rename(user_id: int, name: str) -> User:
                with Session(engine) as session:
                    user = session.get(User, user_id)
                user.name = name
                return user
            ''',
            "returned: the caller may save it",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session

            from app.db import Message, User, engine


            def rename(user_id: int, name: str) -> None:
                with Session(engine) as session:
                    user = session.get(User, user_id)
                    message = session.get(Message, 1)
                user.name = name
                with Session(engine) as session:
                    session.add(message)
                    session.commit()
            ''',
            "another instance of the same session is added afterwards: a relationship's cascade "
            "may carry this one back",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session

            from app.db import User, engine


            def rename(user_id: int, name: str) -> None:
                with Session(engine) as session:
                    user = session.get(User, user_id)
                user.nickname = name
            ''',
            "not a mapped column: a plain attribute is never saved anyway",
        ),
    )

    @classmethod
    def wants(cls, index, facts) -> bool:
        # a scope's block that closes its session, or a close/expunge of a session a function holds
        return facts is None or calls_a_scope(index, facts) or bool(DETACHING & facts.all_methods) \
            and holds_a_session(index, facts)

    def run(self, ctx: FileContext) -> Iterator[Finding]:
        for qualname, fn in functions(ctx.module, ctx):
            found = shape(ctx, fn, qualname)
            if not found.has_with and not DETACHING & found.methods:
                continue
            evs = events(fn, ctx)
            refs = sessions(ctx, fn, qualname, evs)
            reported: set[str] = set()
            for det in _detachments(ctx, qualname, evs, refs):
                for tracked in _held(ctx, evs, refs, det):
                    if tracked.name in reported:
                        continue
                    finding = self._check(ctx, fn, qualname, evs, refs, det, tracked)
                    if finding is not None:
                        reported.add(tracked.name)
                        yield finding

    def _check(self, ctx: FileContext, fn: cst.FunctionDef, qualname: str, evs: list[Event],
               refs: dict[str, SessionRef], det: _Detach, tracked: _Tracked) -> Finding | None:
        names = _loop_names(ctx, fn, tracked.name) if tracked.many else [tracked.name]
        if not names:
            return None
        writes: list[tuple[str, Use, str]] = []
        for X in names:
            found = _lost_writes(ctx, fn, qualname, refs, det, tracked, X)
            if found is None:
                return None  # something may save it, or a read raises first
            writes += [(X, use, attr) for use, attr in found]
        if not writes or _attached_later(ctx, evs, det):
            return None
        X, first, _ = min(writes, key=lambda w: _start(ctx, w[1].node))
        attrs = list(dict.fromkeys(a for x, _, a in writes if x == X))
        return self.finding(_write_node(ctx, first), _message(ctx, det, X, attrs), subject=X)


def _lost_writes(ctx: FileContext, fn: cst.FunctionDef, qualname: str, refs: dict[str, SessionRef],
                 det: _Detach, tracked: _Tracked, X: str) -> list[tuple[Use, str]] | None:
    """The column writes to ``X`` that run after the detachment, when nothing the function
    does with ``X`` may save it; None when something may (or a read raises first)."""
    model = tracked.model
    found = _uses(ctx, fn, X)
    if sum(u.store for u in found) != 1 or _declared(fn, X):
        return None
    seen = _Seen()
    for use in found:
        if not use.store and not _allowed(ctx, qualname, refs, det, tracked, use, seen):
            return None
    writes = [(u, a, aug) for u, a, aug in seen.writes if falls_through_to(det.path, u.path)]
    if any(not _savable(model, a, aug, tracked.expired) for _, a, aug in writes):
        return None
    for use, attr in seen.reads:
        if not _later(ctx, det, use):
            continue
        if tracked.expired or attr not in model.columns:
            return None  # this read raises first, or loads through a session it no longer has
        if any(attr == a and (_runs_after(w.path, use) or _same_loop(w.path, use.path)) for w, a, _ in writes):
            return None  # the changed value is read back: maybe a copy changed on purpose
    return [(u, a) for u, a, _ in writes]


def _uses(ctx: FileContext, fn: cst.FunctionDef, name: str) -> list[Use]:
    """The uses of ``name`` in ``fn`` (walked once per function and name)."""
    return ctx.cached(("uses", id(fn), name), lambda: uses(fn, name))


def _loop_names(ctx: FileContext, fn: cst.FunctionDef, L: str) -> list[str]:
    """The loop variables of the `for` loops over the list ``L`` (`for user in users:`), when
    the list itself goes nowhere else (empty when it may)."""
    found = _uses(ctx, fn, L)
    if sum(u.store for u in found) != 1 or _declared(fn, L):
        return []
    out: list[str] = []
    for use in found:
        if use.store:
            continue
        parent = ctx.parent(use.node)
        if use.nested:
            return []
        if isinstance(parent, cst.For) and parent.iter is use.node and isinstance(parent.target, cst.Name):
            out.append(parent.target.value)
        elif not _looked_at(ctx, use.node, parent):
            return []
    return out


# --------------------------------------------------------------------------- detachments


def _detachments(ctx: FileContext, qualname: str, evs: list[Event], refs: dict[str, SessionRef]) -> Iterator[_Detach]:
    for ev in evs:
        if ev.kind == EventKind.WITH:
            assert isinstance(ev.node, cst.With)
            for name, scope in with_scopes(ctx, ev.node):
                if scope.yields != "session" or not scope.closes_on_exit:
                    continue  # a service, a scoped registry, a context manager that keeps it open
                end = with_end(evs, ev.node)
                yield _Detach(How.BLOCK, name, ev, ev.path, _end(ctx, ev.node), scope.expires_on_exit,
                              scope.expire_on_commit, at=end, is_async=scope.is_async)
        elif ev.kind == EventKind.CALL and ev.name in DETACHING and ev.owner is not None:
            if held(ctx, qualname, ev.owner, refs) is None:
                continue
            obj = None
            if ev.name == "expunge":
                if len(ev.args) != 1 or ev.args[0] is None or "." in ev.args[0]:
                    continue
                obj = ev.args[0]
            stmt = ev.statement
            path = ev.path[: ev.path.index(stmt) + 1]
            ref = refs.get(ev.owner)
            yield _Detach(How(ev.name), ev.owner, ev, path, _end(ctx, stmt),
                          expires_on_commit=ref.expire_on_commit if ref is not None else True, obj=obj,
                          at=ev.index, is_async=ref.is_async if ref is not None else None)


def _held(ctx: FileContext, evs: list[Event], refs: dict[str, SessionRef], det: _Detach) -> Iterator[_Tracked]:
    """The instances the detaching session held at that point, bound by an assignment."""
    S = det.session
    known = dict(refs)
    known.setdefault(S, SessionRef(S, det.is_async, det.expires_on_commit))
    owners = known if det.how is How.EXPUNGE else {S: known[S]}
    before = evs[: det.at]
    for ev in before:
        if ev.kind != EventKind.ASSIGN or ev.name is None or ev.value is None:
            continue
        if det.how is How.BLOCK and not inside(ev, det.event.node):
            continue
        if det.how is How.EXPUNGE and ev.name != det.obj:
            continue
        binding = binding_of(ctx, ev.value, owners)
        model = model_for(ctx, binding.model)
        if model is None:
            continue
        shape_ = _load_shape(ev.value) if binding.kind in (BindingKind.LOADED, BindingKind.LIST) else None
        if shape_ is not None:
            session = binding.session
        elif binding.kind == BindingKind.NEW:
            session = _added_and_saved(evs, ev, det, owners)
        else:
            continue
        if session is None or _rebound(evs[ev.index: det.at], session):
            continue
        yield _Tracked(ev.name, model, ev, _expired(evs, ev, det, session), many=shape_ == "list")


# What a session's load gives, by the methods of its chain (`s.scalars(q).all()`): instances
# only through `get`, `query`, `scalars()` or `scalar*()`; `execute(q).first()` gives a row.
_ONE = frozenset({"get", "get_one", "first", "one", "one_or_none", "scalar", "scalar_one", "scalar_one_or_none"})
_MANY = frozenset({"all"})
_SCALARS = frozenset({"scalars", "scalar", "scalar_one", "scalar_one_or_none"})


def _load_shape(value: cst.BaseExpression) -> str | None:
    """"one" for a load giving one instance, "list" for a list of them, None otherwise."""
    chain: list[str] = []
    node = value
    while True:
        while isinstance(node, cst.Await):
            node = node.expression
        if not isinstance(node, cst.Call) or not isinstance(node.func, cst.Attribute):
            break
        chain.insert(0, node.func.attr.value)
        node = node.func.value
    if not chain:
        return None
    if chain[0] not in ("get", "get_one", "query", "scalars") and not _SCALARS & set(chain):
        return None  # rows (`execute(q).first()`), not instances
    return "one" if chain[-1] in _ONE else "list" if chain[-1] in _MANY else None


def _added_and_saved(evs: list[Event], bound: Event, det: _Detach, owners) -> str | None:
    """A constructed instance added to a session, which then flushed or committed it before
    the detachment (or commits on leaving the block): the session it is in, or None."""
    for ev in evs[bound.index: det.at]:
        if ev.kind == EventKind.CALL and ev.owner in owners and ev.name == "add" and ev.args == (bound.name,):
            saved = det.how is How.BLOCK and det.scope_expires or any(
                e.kind == EventKind.CALL and e.owner == ev.owner and e.name in ("commit", "flush")
                for e in evs[ev.index: det.at])
            return ev.owner if saved else None
    return None


def _rebound(between: list[Event], session: str) -> bool:
    """Is the session name bound again between the load and the detachment (so that what
    is detached may be another session than the one holding the instance)?"""
    head, _, attr = session.rpartition(".")
    return any((e.kind == EventKind.ASSIGN and e.name == session) or
               (e.kind == EventKind.WRITE and head and e.owner == head and e.name == attr) for e in between)


def _expired(evs: list[Event], bound: Event, det: _Detach, session: str | None) -> bool:
    """Might the instance be expired when it is detached (a commit, a rollback, an expire in
    between, or the block's own commit or rollback on exit)?"""
    if det.how is How.BLOCK and det.scope_expires:
        return True
    for ev in evs[bound.index: det.at]:
        if ev.kind == EventKind.CALL and ev.owner == session and ev.name in EXPIRING:
            if ev.name != "commit" or det.expires_on_commit:
                return True
    return False


# --------------------------------------------------------------------------- uses


def _allowed(ctx: FileContext, qualname: str, refs: dict[str, SessionRef], det: _Detach,
             tracked: _Tracked, use: Use, seen: _Seen) -> bool:
    """Is this use of the tracked name one that cannot carry the instance anywhere (recording
    the writes and reads)? A use in a nested scope, a method call, an argument of an unknown
    call, a store into another object or a container, a return... are not."""
    if use.nested:
        return False
    node = use.node
    parent = ctx.parent(node)
    if isinstance(parent, cst.Attribute) and parent.value is node:
        attr = parent.attr.value
        if attr.startswith("__"):
            return False
        holder = ctx.parent(parent)
        if isinstance(holder, cst.Call) and holder.func is parent:
            return False  # a method of the instance: it may add itself to a session
        if use.write:
            if isinstance(holder, cst.AssignTarget) and len(ctx.parent(holder).targets) == 1:  # type: ignore[union-attr]
                seen.writes.append((use, attr, False))
                return True
            if isinstance(holder, cst.AugAssign):
                seen.writes.append((use, attr, True))
                return True
            return False  # `del obj.attr`, a tuple target
        seen.reads.append((use, attr))
        return True
    if _looked_at(ctx, node, parent):
        return True
    return isinstance(parent, cst.Arg) and _argument(ctx, qualname, refs, det, tracked, use, parent, seen)


def _looked_at(ctx: FileContext, node: cst.Name, parent: cst.CSTNode | None) -> bool:
    """A use that only looks at the value: `x is None`, `if x:`, `not x`, `len(x)`, `print(x)`."""
    if isinstance(parent, cst.Arg):
        call = ctx.parent(parent)
        return isinstance(call, cst.Call) and dotted(call.func) in _LOOKS and parent.keyword is None
    if isinstance(parent, cst.Comparison) and parent.left is node:
        return all(isinstance(c.operator, (cst.Is, cst.IsNot)) and dotted(c.comparator) == "None"
                   for c in parent.comparisons)
    if isinstance(parent, cst.ComparisonTarget) and dotted(ctx.parent(parent).left) == "None":  # type: ignore[union-attr]
        return isinstance(parent.operator, (cst.Is, cst.IsNot))
    if isinstance(parent, (cst.If, cst.While, cst.Assert)) and parent.test is node:
        return True
    return isinstance(parent, cst.UnaryOperation) and isinstance(parent.operator, cst.Not)


def _argument(ctx: FileContext, qualname: str, refs: dict[str, SessionRef], det: _Detach,
              tracked: _Tracked, use: Use, arg: cst.Arg, seen: _Seen) -> bool:
    call = ctx.parent(arg)
    if not isinstance(call, cst.Call) or arg.keyword is not None or arg.star:
        return False
    callee = dotted(call.func)
    if callee in ("setattr", "getattr") and call.args[0] is arg and len(call.args) >= 2:
        name = call.args[1].value
        attr = name.evaluated_value if isinstance(name, cst.SimpleString) else None
        if not isinstance(attr, str) or not attr.isidentifier():
            return False
        if callee == "getattr":
            seen.reads.append((use, attr))
            return True
        statement = ctx.parent(call)
        if len(call.args) != 3 or not isinstance(statement, cst.Expr):
            return False
        seen.writes.append((use, attr, False))
        return True
    if not isinstance(call.func, cst.Attribute) or callee is None:
        return False
    owner = callee.rsplit(".", 1)[0]
    if held(ctx, qualname, owner, refs) is None:
        return False
    if call is det.event.node:
        return True  # the expunge that detaches it
    if _later(ctx, det, use):
        return False  # put back into a session, or handed to one while detached (it raises)
    if det.how is How.BLOCK:
        return _within(ctx, call, det.event.node)  # what the block's own session does with it
    return True  # how it got into the session, before it left


def _within(ctx: FileContext, node: cst.CSTNode, outer: cst.CSTNode) -> bool:
    return any(a is outer for a in ctx.ancestors(node))


def _attached_later(ctx: FileContext, evs: list[Event], det: _Detach) -> bool:
    """Is anything added to or merged into a session after the detachment, other than an
    instance constructed in the function? A related object's cascade may re-attach ours."""
    for ev in evs:
        if ev.kind != EventKind.CALL or ev.name not in ATTACHING or not _later_event(ctx, det, ev):
            continue
        if _plain_container(evs, ev.owner):
            continue  # `seen.add(...)` on a set the function built
        call = ev.node
        assert isinstance(call, cst.Call)
        for arg in call.args:
            if not _constructed(ctx, evs, arg.value):
                return True
    return False


def _plain_container(evs: list[Event], owner: str | None) -> bool:
    """A local every assignment of which is a set, list or dict display or `set()`/`list()`/`dict()`."""
    assigned = [ev.value for ev in evs if ev.kind == EventKind.ASSIGN and ev.name == owner]
    return bool(assigned) and all(
        isinstance(v, (cst.Set, cst.List, cst.Dict, cst.SetComp, cst.ListComp, cst.DictComp))
        or (isinstance(v, cst.Call) and dotted(v.func) in ("set", "list", "dict") and not v.args)
        for v in assigned)


def _constructed(ctx: FileContext, evs: list[Event], value: cst.BaseExpression) -> bool:
    """An instance made here: ``Model(...)``, or a name every assignment of which is one."""
    if isinstance(value, cst.Call):
        return binding_of(ctx, value, {}).kind == BindingKind.NEW
    if not isinstance(value, cst.Name):
        return False
    assigned = [ev for ev in evs if ev.kind == EventKind.ASSIGN and ev.name == value.value]
    return bool(assigned) and all(binding_of(ctx, ev.value, {}).kind == BindingKind.NEW for ev in assigned)


def _savable(model: Model, attr: str, augmented: bool, expired: bool) -> bool:
    """A change a flush would have saved, and that does not raise on a detached instance: a
    mapped column (an augmented assignment reads it first: loaded and not expired)."""
    if augmented:
        return attr in model.columns and not expired
    return attr in model.columns or attr in model.deferred


# --------------------------------------------------------------------------- order


def _start(ctx: FileContext, node: cst.CSTNode) -> tuple[int, int]:
    pos = ctx.position(node).start
    return pos.line, pos.column


def _end(ctx: FileContext, node: cst.CSTNode) -> tuple[int, int]:
    pos = ctx.position(node).end
    return pos.line, pos.column


def _later(ctx: FileContext, det: _Detach, use: Use) -> bool:
    """Can this use run after the detachment: written after it, or in a loop around it?"""
    return _start(ctx, use.node) >= det.end or any(id(n) in det.loops for n in use.path)


def _later_event(ctx: FileContext, det: _Detach, ev: Event) -> bool:
    return _start(ctx, ev.node) >= det.end or any(id(n) in det.loops for n in ev.path)


def _runs_after(path: tuple[cst.CSTNode, ...], use: Use) -> bool:
    """Can ``use`` run after the statement holding the use at ``path``?"""
    stmt = next(i for i in range(len(path) - 1, -1, -1) if isinstance(path[i], cst.BaseStatement))
    return falls_through_to(path[: stmt + 1], use.path)


def _same_loop(a: tuple[cst.CSTNode, ...], b: tuple[cst.CSTNode, ...]) -> bool:
    return any(x is y and isinstance(x, (cst.For, cst.While)) for x in a for y in b)


def _declared(fn: cst.FunctionDef, name: str) -> bool:
    """Is ``name`` global or nonlocal in ``fn`` (assigning it changes something outside)?"""
    declared = m.findall(fn.body, m.Global() | m.Nonlocal())
    return any(item.name.value == name for d in declared for item in d.names)  # type: ignore[attr-defined]


def _write_node(ctx: FileContext, use: Use) -> cst.CSTNode:
    """The attribute (or the setattr call) the write goes through."""
    parent = ctx.parent(use.node)
    if isinstance(parent, cst.Arg):
        return ctx.parent(parent) or use.node
    return parent or use.node


def _with_keyword(det: _Detach) -> str:
    node = det.event.node
    return "async with" if isinstance(node, cst.With) and node.asynchronous is not None else "with"


def _message(ctx: FileContext, det: _Detach, X: str, attrs: list[str]) -> str:
    line = det.end[0] if det.how is not How.BLOCK else _start(ctx, det.event.node)[0]
    S = det.session
    where = {
        How.BLOCK: f"the `{_with_keyword(det)}` block that opened `{S}` at line {line} closed it",
        How.CLOSE: f"`{S}.close()` at line {line}",
        How.EXPUNGE_ALL: f"`{S}.expunge_all()` at line {line}",
        How.EXPUNGE: f"`{S}.expunge({X})` at line {line}",
    }[det.how]
    listed = ", ".join(f"`{X}.{a}`" for a in attrs)
    merge = f"{X} = {'await ' if det.is_async else ''}session.merge({X})"
    return (f"{listed} {'is' if len(attrs) == 1 else 'are'} changed after `{X}` left its session "
            f"({where}), and nothing adds or merges `{X}` into a session again: the change is never "
            f"saved (a lost update); make it while the session holds `{X}`, or re-attach it first "
            f"(`{merge}`) and commit")
