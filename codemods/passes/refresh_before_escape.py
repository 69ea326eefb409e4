"""SQF005 refresh-before-escape: an ORM object leaving a scope that committed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..lazy import lazy
from .base import Edit, Example, FileContext, Finding, Fix, Pass, Valid
from .examples import SYNC_DB
from .expired_read_in_async import ExpiredReadInAsync
from .flow import (
    LAZY_STRATEGIES,
    Binding,
    BindingKind,
    Event,
    EventKind,
    SessionRef,
    aliases_of,
    attaches,
    binding_of,
    class_called,
    events,
    functions,
    inside,
    model_for,
    reloads_every_row,
    scoped_sessions,
    session_call,
    session_scoped,
    shape,
    unique_name,
    with_end,
)
from .helpers import awaited_calls, calls_on, enters_a_session
from .refresh_before_escape_examples_w3 import EXAMPLES as W3_EXAMPLES
from .refresh_before_escape_examples_w3 import VALID as W3_VALID
from .returned_expired import returned_expired

if TYPE_CHECKING:
    import libcst as cst
else:
    cst = lazy("libcst")


class RefreshBeforeEscape(Pass):
    code = "SQF005"
    # its refresh covers the reads after an expunge (SQF001) and after the commit (SQF010)
    supersedes = ("SQF001", "SQF010")
    name = "refresh-before-escape"
    summary = "an ORM object leaves its session scope expired (after a commit) and detached"
    fix_safety = "safe"
    triggers = (b"with", b"@", b"commit(")  # scopes, session decorators, async functions committing
    explanation = """
    ## What it does
    Finds ORM objects created or loaded inside a session scope (`with Session(engine) as s:`,
    `with get_db() as s:`, `async with maker() as s:`, a session decorator) that leave the
    scope (returned, yielded, or used after the block) after a commit expired them: under a
    factory with the default `expire_on_commit=True`, a commit in the block with no refresh
    after it, or a scope that commits on exit. A scope can also be opened through an object a
    class keeps: `with self.db_factory() as s:`, where `self.db_factory` holds an instance of
    a project class (made in `__init__`, or a parameter typed with that class or another name
    for it) whose `__call__` is a `@contextmanager` yielding a session. An object used after
    the block is reported at that first use. What a bulk statement gives back is no instance
    (`query(...).update({...})`, `.delete()`, `.count()`: a number; `execute(update(...))`
    without `.returning(...)`: no rows), so it is left alone. So is an instance whose model is
    read whole through the session after the last commit, in the block, on every path
    (`session.scalars(select(User)).all()`, no filter; or `result = await
    session.scalars(select(User))`, then `result.all()`), with nothing that detaches it before
    the result is read or expires it again after the query ran: loading its row again
    refreshes it.

    In `async def` code, also an instance returned after a commit of an async session the
    function did not open (a parameter, `self.session`, a provider's) that expired it: the
    session's last call before the `return` is that commit, and the instance is proven to be
    in that session at the commit (loaded through it, or handed to its `add()` or
    `refresh()`). The session stays open, so the instance is not detached, but the caller's
    first column read reloads it implicitly, which an `AsyncSession` cannot do:
    `MissingGreenlet`. The fix is `await session.refresh(obj)` before the `return`. Left
    alone: an instance handed in and only committed (nothing shows it is in that session),
    one refreshed, read, changed or handed on after the commit, sync code (the caller's read
    reloads it), and projects whose every async session is built with
    `expire_on_commit=False` (a factory a function builds and hands out counts too).

    ## Why is this bad?
    `commit()` expires every instance; leaving the scope closes the session and detaches them.
    The caller's first attribute read then raises `DetachedInstanceError: Instance <Message>
    is not bound to a Session; attribute refresh operation cannot proceed`. An `expunge()`
    alone loads nothing, so it does not help either.

    ## The fix
    Two placements of the commit need two different fixes:

    - the commit is in the block: `session.refresh(obj)` (`await session.refresh(obj)` for an
      `AsyncSession`) after the last commit, before the object leaves; a list gets a loop. If
      the object is expunged after the commit, the refresh goes before the expunge.
    - the scope commits on exit (a `get_db()` context manager that commits after `yield`, or a
      decorator): a refresh before `return` would be undone by the exit commit. sqla-fix
      detaches the object first, `session.expunge(obj)`, so the exit commit cannot expire it.
      If the object still has unflushed changes in the scope, `session.flush()` and
      `session.refresh(obj)` go first so that expunging it cannot drop its write.

    Relationships are not loaded by either fix: if callers read them, load them eagerly
    (`selectinload(Model.rel)`, or `lazy="selectin"` on the relationship).
    Factories with `expire_on_commit=False` are safe by configuration and never reported.

    ## Fix safety
    Safe: the object carries the values the database holds after the commit, which is what
    the caller would have read had the session stayed open. When the object is modified
    after the last commit, a refresh would discard that change: reported without a fix.
    """
    example_project = {"app/__init__.py": "", "app/db.py": SYNC_DB}
    examples = (
        Example(
            title="an object built before the block, added and committed in it, returned",
            before='''
            from sqlalchemy.orm import Session
            from app.db import User, engine


            def create(name: str) -> User:
                user = User(name=name)
                with Session(engine) as session:
                    session.add(user)
                    session.commit()
                return user
            ''',
            after='''
            from sqlalchemy.orm import Session
            from app.db import User, engine


            def create(name: str) -> User:
                user = User(name=name)
                with Session(engine) as session:
                    session.add(user)
                    session.commit()
                    session.refresh(user)
                return user
            ''',
        ),
        Example(
            title="a session kept on the object, used as its own context manager",
            before='''
            from app.db import SessionLocal, User


            class Accounts:
                def __init__(self):
                    self.session = SessionLocal()

                def open_account(self, name: str) -> User:
                    with self.session as session:
                        account = User(name=name)
                        session.add(account)
                        session.commit()
                        return account
            ''',
            after='''
            from app.db import SessionLocal, User


            class Accounts:
                def __init__(self):
                    self.session = SessionLocal()

                def open_account(self, name: str) -> User:
                    with self.session as session:
                        account = User(name=name)
                        session.add(account)
                        session.commit()
                        session.refresh(account)
                        return account
            ''',
        ),
        Example(
            title="a repository given a session typed with a framework's re-export of AsyncSession",
            before='''
            from nonebot_plugin_orm import AsyncSession

            from app.db import User


            class Wallets:
                def __init__(self, session: AsyncSession):
                    self.session = session

                async def open_wallet(self, owner: str) -> User:
                    async with self.session as session:
                        wallet = User(name=owner)
                        session.add(wallet)
                        await session.commit()
                        return wallet
            ''',
            after='''
            from nonebot_plugin_orm import AsyncSession

            from app.db import User


            class Wallets:
                def __init__(self, session: AsyncSession):
                    self.session = session

                async def open_wallet(self, owner: str) -> User:
                    async with self.session as session:
                        wallet = User(name=owner)
                        session.add(wallet)
                        await session.commit()
                        await session.refresh(wallet)
                        return wallet
            ''',
        ),
        Example(
            title="commit in the block",
            before='''
            from sqlalchemy.orm import Session
            from app.db import User, engine


            def create_user(name: str) -> User:
                with Session(engine) as session:
                    user = User(name=name)
                    session.add(user)
                    session.commit()
                    return user
            ''',
            after='''
            from sqlalchemy.orm import Session
            from app.db import User, engine


            def create_user(name: str) -> User:
                with Session(engine) as session:
                    user = User(name=name)
                    session.add(user)
                    session.commit()
                    session.refresh(user)
                    return user
            ''',
        ),
        Example(
            title="the context manager commits on exit",
            before='''
            from app.db import Message, get_db


            def add_message(content: str) -> Message:
                with get_db() as session:
                    message = Message(content=content)
                    session.add(message)
                    session.commit()
                    session.refresh(message)
                    return message
            ''',
            after='''
            from app.db import Message, get_db


            def add_message(content: str) -> Message:
                with get_db() as session:
                    message = Message(content=content)
                    session.add(message)
                    session.commit()
                    session.refresh(message)
                    session.expunge(message)
                    return message
            ''',
        ),
        Example(
            title="a load that may give None: the fix is guarded",
            before='''
            from app.db import User, get_db


            def find_user(user_id: int) -> User | None:
                with get_db() as session:
                    user = session.get(User, user_id)
                    return user
            ''',
            after='''
            from app.db import User, get_db


            def find_user(user_id: int) -> User | None:
                with get_db() as session:
                    user = session.get(User, user_id)
                    if user is not None:
                        session.expunge(user)
                    return user
            ''',
        ),
        Example(
            title="a load returned directly out of a scope that commits on exit",
            before='''
            from app.db import User, get_db


            def find_user(user_id: int) -> User | None:
                with get_db() as session:
                    # the caller reads it
                    return session.query(User).filter_by(id=user_id).first()
            ''',
            after='''
            from app.db import User, get_db


            def find_user(user_id: int) -> User | None:
                with get_db() as session:
                    # the caller reads it
                    user = session.query(User).filter_by(id=user_id).first()
                    if user is not None:
                        session.expunge(user)
                    return user
            ''',
        ),
        Example(
            title="commit, then expunge: refresh before the expunge",
            before='''
            from app.db import User, read_db


            def touch(user_id: int) -> User:
                with read_db() as session:
                    user = session.get(User, user_id)
                    user.name = user.name.strip()
                    session.commit()
                    session.expunge(user)
                    return user
            ''',
            after='''
            from app.db import User, read_db


            def touch(user_id: int) -> User:
                with read_db() as session:
                    user = session.get(User, user_id)
                    user.name = user.name.strip()
                    session.commit()
                    session.refresh(user)
                    session.expunge(user)
                    return user
            ''',
        ),
        Example(
            title="async, a list",
            before='''
            from sqlalchemy import select
            from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

            maker = async_sessionmaker()


            async def rename_all(prefix: str):
                async with maker() as session:
                    users = (await session.scalars(select(User))).all()
                    for u in users:
                        u.name = prefix + u.name
                    await session.commit()
                    return users
            ''',
            after='''
            from sqlalchemy import select
            from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

            maker = async_sessionmaker()


            async def rename_all(prefix: str):
                async with maker() as session:
                    users = (await session.scalars(select(User))).all()
                    for u in users:
                        u.name = prefix + u.name
                    await session.commit()
                    for user in users:
                        await session.refresh(user)
                    return users
            ''',
        ),
        Example(
            title="async: created in one block, read in the next one (the name `session` reused)",
            before='''
            from sqlalchemy.ext.asyncio import async_sessionmaker
            from app.db import User

            maker = async_sessionmaker()


            async def register(name: str) -> str:
                async with maker() as session:
                    user = User(name=name)
                    session.add(user)
                    await session.commit()
                async with maker() as session:
                    session.add(Audit(user_id=user.id))
                    await session.commit()
                return name
            ''',
            after='''
            from sqlalchemy.ext.asyncio import async_sessionmaker
            from app.db import User

            maker = async_sessionmaker()


            async def register(name: str) -> str:
                async with maker() as session:
                    user = User(name=name)
                    session.add(user)
                    await session.commit()
                    await session.refresh(user)
                async with maker() as session:
                    session.add(Audit(user_id=user.id))
                    await session.commit()
                return name
            ''',
        ),
        Example(
            title="modified after the last commit: a refresh would drop the change",
            before='''
            from sqlalchemy.orm import Session
            from app.db import User, engine


            def create_user(name: str) -> User:
                with Session(engine) as session:
                    user = User(name=name)
                    session.add(user)
                    session.commit()
                    user.name = name.title()
                    return user
            ''',
        ),
        Example(
            title="a library's scope that commits on exit (fastapi-sqla's open_session)",
            before='''
            from fastapi_sqla import open_session
            from sqlalchemy import select

            from app.db import User


            def all_users() -> list[User]:
                with open_session(key="reports") as db:
                    users = db.execute(select(User)).scalars().all()
                return users
            ''',
            after='''
            from fastapi_sqla import open_session
            from sqlalchemy import select

            from app.db import User


            def all_users() -> list[User]:
                with open_session(key="reports") as db:
                    users = db.execute(select(User)).scalars().all()
                    for user in users:
                        db.expunge(user)
                return users
            ''',
        ),
    ) + W3_EXAMPLES
    valid = (
        Valid(
            '''
            from fastapi_sqla import open_session
            from sqlalchemy import select

            from app.db import User


            def all_users() -> list[User]:
                with open_session(key="reports") as db:
                    db.expire_on_commit = False
                    users = db.execute(select(User)).scalars().all()
                return users
            ''',
            "the block switches expiry off before anything commits: the exit commit leaves the users loaded",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session
            from app.db import User, engine


            def ensure(name: str) -> str:
                user = User(name=name)
                with Session(engine) as session:
                    session.merge(user)
                    session.commit()
                return user.name
            ''',
            "an object that was merged, never added: it stays outside the session, and no commit expires it",
        ),
        Valid(
            '''
            from app.db import QuietSession, User


            def create_user(name: str) -> User:
                with QuietSession() as session:
                    user = User(name=name)
                    session.add(user)
                    session.commit()
                    return user
            ''',
            "a factory built with expire_on_commit=False (safe by configuration)",
        ),
        Valid(
            '''
            from app.db import User, read_db


            def get_user(user_id: int) -> User:
                with read_db() as session:
                    return session.get(User, user_id)
            ''',
            "no commit before the object leaves: its loaded columns stay readable",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session
            from app.db import User, engine


            def create_user(name: str) -> dict:
                with Session(engine) as session:
                    user = User(name=name)
                    session.add(user)
                    session.commit()
                    data = {"id": user.id, "name": user.name}
                return data
            ''',
            "plain values built inside the scope",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session
            from app.db import User, engine


            def create_user(name: str) -> User:
                with Session(engine) as session:
                    user = User(name=name)
                    session.add(user)
                    session.commit()
                    session.refresh(user)
                    return user
            ''',
            "already refreshed after the commit, in a scope that does not commit on exit",
        ),
        Valid(
            '''
            from sqlalchemy import inspect
            from sqlalchemy.orm import Session
            from app.db import User, engine


            def check_state(name: str):
                with Session(engine) as session:
                    user = User(name=name)
                    session.add(user)
                    session.commit()

                def later():
                    user = None
                    return user

                return inspect(user).expired, later
            ''',
            "after the block: inspect() loads nothing; a nested function's own `user`",
        ),
        Valid(
            '''
            import httpx


            async def fetch(url: str):
                async with httpx.AsyncClient() as client:
                    response = await client.get(url)
                    response.raise_for_status()
                return response
            ''',
            "a context manager that is not a session",
        ),
    ) + W3_VALID

    @classmethod
    def wants(cls, index, facts) -> bool:
        if facts is None or enters_a_session(index, facts):
            return True
        if facts.has_async and "commit" in facts.all_methods:
            return True  # an async function may return what a commit of its session expired
        return any(index.decorator(d) is not None for fn in facts.functions.values() for d in fn.decorators)

    def run(self, ctx: FileContext) -> Iterator[Finding]:
        for qualname, fn in functions(ctx.module, ctx):
            yield from self._returned_expired(ctx, fn, qualname)
            if not session_scoped(ctx, fn, qualname) and not self._session_decorated(ctx, qualname):
                continue
            evs = events(fn, ctx)
            if not any(e.kind == EventKind.WITH for e in evs) and not fn.decorators:
                continue
            for ref in scoped_sessions(ctx, fn, qualname, evs):
                if not ref.expire_on_commit or expiry_switched_off(evs, ref):
                    continue
                yield from self._scope(ctx, fn, evs, ref)

    def _returned_expired(self, ctx: FileContext, fn: cst.FunctionDef, qualname: str) -> Iterator[Finding]:
        """`return user` in an `async def` after a commit of the session it was handed."""
        if fn.asynchronous is None or "commit" not in shape(ctx, fn, qualname).methods:
            return
        evs = events(fn, ctx)
        for ref in ExpiredReadInAsync.async_sessions(ctx, fn, qualname, evs):
            for found in returned_expired(ctx, evs, ref):
                X, S = found.name, ref.name
                fix = self._fix(ctx, fn, found.ret, [("refresh", X)], True, False, X, ref)
                yield self.finding(found.ret.node, (
                    f"`{X}` (instance) is returned after `{S}.commit()` expired it, and `{S}` is an "
                    f"async session: callers reading its columns raise MissingGreenlet (an implicit "
                    f"reload); refresh it after the last commit"), fix, subject=X)

    @staticmethod
    def _session_decorated(ctx: FileContext, qualname: str) -> bool:
        facts = ctx.function_facts(qualname)
        if facts is None:
            return True  # unknown: look
        return any(ctx.index.decorator(d) is not None for d in facts.decorators)

    def _scope(self, ctx: FileContext, fn: cst.FunctionDef, evs: list[Event], ref: SessionRef) -> Iterator[Finding]:
        S = ref.name
        if ref.block is not None:
            end = with_end(evs, ref.block)
            region = [e for e in evs if inside(e, ref.block) and e.kind not in (EventKind.WITH, EventKind.ENDWITH)]
        else:
            end = len(evs)
            region = list(evs)
        region_ids = {e.index for e in region}
        if ref.commits_on_exit:
            yield from self._returned_loads(ctx, fn, region, ref)
        done: set[str] = set()
        for X, ev in self._candidates(evs, region, S):
            if X in done:
                continue
            if ev.kind == EventKind.CALL:  # built before the scope, added in it
                binding = Binding(BindingKind.NEW)
            else:
                binding = binding_of(ctx, ev.value, {S: ref})
            later_add = any(e.kind == EventKind.CALL and e.owner == S and e.name == "add" and e.args[:1] == (X,)
                            and e.index > ev.index for e in region)
            if binding.kind == BindingKind.OTHER and later_add:
                binding.kind = BindingKind.NEW
            if binding.kind == BindingKind.NEW and not later_add and ev.kind != EventKind.CALL:
                continue  # never added (merge() leaves it outside): no commit expires it
            if binding.kind not in (BindingKind.NEW, BindingKind.LOADED, BindingKind.LIST):
                continue
            if any(e.kind == EventKind.ASSIGN and e.name == X and e.index > ev.index for e in region):
                continue  # rebound later in the scope: its last binding is looked at instead
            leave = self._leave_point(evs, region_ids, ev, X, end)
            if leave is None:
                continue
            done.add(X)
            finding = self._decide(ctx, fn, evs, ref, ev, X, binding, leave, end)
            if finding is not None:
                finding.subject = X
                yield finding

    @staticmethod
    def _candidates(evs: list[Event], region: list[Event], S: str) -> list[tuple[str, Event]]:
        """What may leave the scope, with the event that binds it there: names bound in it,
        and objects built before it that it adds (``user = User(...)``, then
        ``with ...: s.add(user); s.commit()``), by their add."""
        first = region[0].index if region else 0
        before = {e.name for e in evs[:first] if e.kind == EventKind.ASSIGN}
        bound = {e.name for e in region if e.kind == EventKind.ASSIGN}
        out: list[tuple[str, Event]] = [(name, e) for e in region if e.kind == EventKind.ASSIGN and (name := e.name)]
        out += [(arg, e) for e in region if e.kind == EventKind.CALL and e.owner == S and e.name == "add"
                and e.args[:1] and (arg := e.args[0]) is not None and arg in before and arg not in bound]
        return sorted(out, key=lambda pair: pair[1].index)  # type: ignore[return-value]

    @staticmethod
    def _leave_point(evs: list[Event], region_ids: set[int], bound: Event, X: str, end: int) -> Event | None:
        """Where X leaves the scope: a return/yield in it, or the scope's end when X is used
        after the block."""
        for e in evs:
            if e.index <= bound.index:
                continue
            if e.index in region_ids and e.kind == EventKind.ESCAPE and e.name == X:
                return e
        return evs[end] if RefreshBeforeEscape._use_after(evs, X, end) is not None else None  # the endwith event

    @staticmethod
    def _use_after(evs: list[Event], X: str, end: int) -> Event | None:
        """The first use of X after the block that ends at event ``end`` (where the expired
        object is read, returned or handed on), None when X is rebound first."""
        for e in evs[end + 1:]:
            if e.kind == EventKind.ASSIGN and e.name == X:
                return None
            # A nested function's same-named variable is its own; `inspect(x)`, `id(x)` load
            # nothing; `other_session.add(x)`/`merge(x)` attach it again.
            if (e.kind in (EventKind.READ, EventKind.METHOD, EventKind.WRITE) and e.owner == X) or (
                    e.kind == EventKind.ESCAPE and e.name == X) or (
                    e.kind == EventKind.USE and e.name == X and not _harmless_use(e.owner)):
                return e
        return None

    def _returned_loads(self, ctx: FileContext, fn: cst.FunctionDef, region: list[Event],
                        ref: SessionRef) -> Iterator[Finding]:
        """`return session.get(User, 1)` in a scope that commits on exit: the exit commit
        expires what is returned. It is bound to a name, detached, and the name returned."""
        S = ref.name
        for ev in region:
            if ev.kind != EventKind.RETURN:
                continue
            binding = binding_of(ctx, ev.value, {S: ref})
            if binding.kind not in (BindingKind.LOADED, BindingKind.LIST) or model_for(ctx, binding.model) is None:
                continue
            model = binding.model or "result"
            singular = model[:1].lower() + model[1:]
            X = unique_name(fn, singular + "s" if binding.kind == BindingKind.LIST else singular)
            fix = self._return_fix(ctx, fn, ev, X, binding, ref)
            yield self.finding(ev.node, (
                f"a {model} {'list ' if binding.kind == 'list' else ''}loaded here is returned out of `{S}`, "
                f"whose scope commits on exit and expires it: callers reading it raise "
                f"DetachedInstanceError; detach it before the exit commit (`{S}.expunge(...)`)"), fix)

    def _return_fix(self, ctx: FileContext, fn: cst.FunctionDef, ev: Event, X: str, binding, ref: SessionRef) -> Fix | None:
        is_async = self._is_async(ctx, fn, ref)
        try:
            line = ev.statement
        except LookupError:
            return None
        if is_async is None or not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
            return None
        if ev.value is None:  # a bare `return` returns no instance
            return None
        steps = self._fix(ctx, fn, ev, [("expunge", X)], is_async, binding.kind == BindingKind.LIST, X, ref,
                          optional=binding.optional)
        if steps is None:
            return None
        bind = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(X))], ev.value.deep_clone())],
                                       leading_lines=line.leading_lines)
        detach = steps.edits[0].before

        def returns_name(upd: cst.CSTNode) -> cst.CSTNode:
            return upd.with_changes(body=[cst.Return(value=cst.Name(X))], leading_lines=[])

        return Fix([Edit(line, before=[bind, *detach], replace=returns_name)])

    def _decide(self, ctx, fn, evs, ref: SessionRef, bound: Event, X: str, binding, leave: Event, end: int) -> Finding | None:
        S = ref.name
        between = [e for e in evs if bound.index < e.index < leave.index]
        calls = [e for e in between if e.kind == EventKind.CALL and e.owner == S]
        commits = [e for e in calls if e.name == "commit"]
        last_commit = commits[-1].index if commits else None
        mine = aliases_of(between, X)  # X, and loop variables over X
        calls = [e for e in calls if e.name not in ("refresh", "expunge") or (e.args[:1] and e.args[0] in mine)]
        expunge = next((e for e in calls if e.name == "expunge"
                        and (last_commit is None or e.index > last_commit)), None)
        is_async = self._is_async(ctx, fn, ref)
        model = model_for(ctx, binding.model)
        rel_note = ""
        if model is not None:
            lazy = sorted(r for r, how in model.relationships.items() if how in LAZY_STRATEGIES)
            if lazy:
                rel_note = (f"; relationships ({', '.join(lazy)}) stay unloaded: load them eagerly "
                            f"(selectinload({model.name}.{lazy[0]})) if callers read them")
        what = "list of instances" if binding.kind == BindingKind.LIST else "instance"
        where = "leaves the scope" if leave.kind == EventKind.ESCAPE else "is used after the block"
        # reported where it leaves the scope, or at its first use after the block
        at = leave if leave.kind == EventKind.ESCAPE else self._use_after(evs, X, end) or leave
        if expunge is not None:
            if last_commit is None or any(e.name == "refresh" and last_commit < e.index < expunge.index for e in calls):
                return None  # loaded (or refreshed) when detached: its columns stay readable
            fix = self._fix(ctx, fn, expunge, [("refresh", X)], is_async, binding.kind == BindingKind.LIST, X)
            return self.finding(expunge.node, (
                f"`{X}` ({what}) is expired by the commit and then detached by `{S}.expunge({X})`: "
                f"reading it raises DetachedInstanceError; refresh it before the expunge{rel_note}"), fix)
        if ref.commits_on_exit:
            pending = self._pending(between, binding, X, S, last_commit)
            steps: list[tuple[str, str | None]] | None = (
                [("flush", None), ("refresh", X), ("expunge", X)] if pending else [("expunge", X)])
            if pending and binding.kind == BindingKind.LIST:
                steps = None
            fix = self._fix(ctx, fn, leave, steps, is_async, binding.kind == BindingKind.LIST, X, ref,
                            optional=self._may_be_none(binding, between, X)) if steps else None
            return self.finding(at.node, (
                f"`{X}` ({what}) {where} of `{S}`, whose scope commits on exit and expires it: "
                f"callers reading it raise DetachedInstanceError; detach it before the exit commit "
                f"(`{S}.expunge({X})`){rel_note}"), fix)
        if last_commit is None:
            return None
        if any(e.name == "refresh" and e.index > last_commit for e in calls) \
                or reloads_every_row(fn, evs, last_commit, leave, S, binding.model or class_called(bound.value)):
            return None
        modified = any(e.index > last_commit and ((e.kind == EventKind.WRITE and e.owner == X) or
                                                   (e.kind == EventKind.METHOD and e.owner == X))
                       for e in between)
        fix = None if modified else self._fix(ctx, fn, leave, [("refresh", X)], is_async, binding.kind == BindingKind.LIST,
                                              X, ref, optional=self._may_be_none(binding, between, X))
        note = "; it is modified after the commit, so a refresh would discard that change: no automatic fix" if modified else ""
        return self.finding(at.node, (
            f"`{X}` ({what}) {where} of `{S}` expired by the commit: callers reading it raise "
            f"DetachedInstanceError; refresh it after the last commit{rel_note}{note}"), fix)

    @staticmethod
    def _may_be_none(binding, between: list[Event], X: str) -> bool:
        """May X be None where the fix goes? Only after a load that gives None for no row, and
        when nothing in between would already have failed on None (an attribute write, a
        method call on X)."""
        return binding.optional and not any(e.kind in (EventKind.WRITE, EventKind.METHOD) and e.owner == X for e in between)

    @staticmethod
    def _pending(between: list[Event], binding, X: str, S: str, last_commit: int | None) -> bool:
        """Does X have changes not yet flushed at the leave point?"""
        flushed = [e.index for e in between if e.kind == EventKind.CALL and e.owner == S and e.name in ("commit", "flush")]
        last = flushed[-1] if flushed else None
        if binding.kind == BindingKind.NEW and last is None:
            return True
        return any((last is None or e.index > last) and (
            (e.kind == EventKind.WRITE and e.owner == X) or (e.kind == EventKind.CALL and e.owner == S and e.name == "add" and e.args[:1] == (X,))
        ) for e in between)

    @staticmethod
    def _is_async(ctx: FileContext, fn: cst.FunctionDef, ref: SessionRef) -> bool | None:
        if fn.asynchronous is None:
            return False
        if ref.is_async is not None:
            return ref.is_async
        awaited = awaited_calls(fn)
        if any(id(c) in awaited for c in calls_on(fn, ref.name)):
            return True
        return None

    def _fix(self, ctx: FileContext, fn: cst.FunctionDef, at: Event, steps, is_async: bool | None,
             is_list: bool, X: str, ref: SessionRef | None = None, optional: bool = False) -> Fix | None:
        if is_async is None or steps is None:
            return None
        S = at.owner if at.kind == EventKind.CALL else ref.name if ref is not None else None
        if S is None:
            return None
        stmts: list[cst.BaseStatement] = []
        if is_list:
            var = unique_name(fn, X[:-1] if X.endswith("s") and len(X) > 1 else "item")
            body = [session_call(S, m, [var], is_async) for m, arg in steps]
            stmts.append(cst.For(target=cst.Name(var), iter=cst.Name(X), body=cst.IndentedBlock(body)))
        else:
            stmts = [session_call(S, m, [arg] if arg else [], is_async) for m, arg in steps]
            if optional:  # `session.refresh(None)` raises where the code returned None
                stmts = [cst.If(test=cst.parse_expression(f"{X} is not None"),
                                body=cst.IndentedBlock(stmts))]
        if at.kind == EventKind.ENDWITH:
            block = at.node.body  # type: ignore[attr-defined]
            if not isinstance(block, cst.IndentedBlock) or not block.body:
                return None
            last = block.body[-1]
            if isinstance(last, cst.SimpleStatementLine) and any(isinstance(s, (cst.Return, cst.Raise)) for s in last.body):
                return None
            return Fix([Edit(last, after=stmts)])
        try:
            target = at.statement
        except LookupError:
            return None
        if not isinstance(target, cst.SimpleStatementLine):
            return None
        return Fix([Edit(target, before=stmts)])


_NON_LOADING = {"inspect", "id", "type", "isinstance", "object_session", "instance_state", "repr_id"}


def _harmless_use(callee: str | None) -> bool:
    """Passing the object to this call loads nothing of it, or attaches it to a session."""
    return callee is not None and (callee.rsplit(".", 1)[-1] in _NON_LOADING or attaches(callee))


def expiry_switched_off(evs: list[Event], ref: SessionRef) -> bool:
    """`S.expire_on_commit = False` as a statement of the scope's own block (of the function,
    for a session without a block), before any commit of ``S``: no commit of the scope, its
    exit's included, expires anything."""
    S = ref.name
    body = ref.block.body if ref.block is not None else None
    for e in evs:
        if e.kind == EventKind.CALL and e.owner == S and e.name == "commit":
            return False
        if e.kind != EventKind.WRITE or e.owner != S or e.name != "expire_on_commit" or len(e.path) < 2:
            continue
        if body is not None and e.path[-2] is not body or body is None and len(e.path) != 2:
            continue
        line = e.path[-1]
        small = line.body[0] if isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1 else None
        if isinstance(small, cst.Assign) and isinstance(small.value, cst.Name) and small.value.value == "False":
            return True
    return False
