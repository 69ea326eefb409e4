"""SQF008 merge-result-discarded: `session.merge(obj)` as a statement, `obj` used after it."""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum
from typing import TYPE_CHECKING  # noqa: I001

from ..lazy import lazy
from . import match as m
from .base import Edit, Example, FileContext, Finding, Fix, Pass, Valid
from .examples import SYNC_DB
from .flow import (
    Event,
    EventKind,
    Held,
    SessionRef,
    events,
    falls_through_to,
    functions_calling,
    held,
    model_for,
    reachable_only_through,
    sessions,
)
from .helpers import dotted, statement_calls
from .uses import Use
from .uses import uses as uses_of

if TYPE_CHECKING:
    import libcst as cst
    _VisitorBase = cst.CSTVisitor
else:
    cst = lazy("libcst")
    _VisitorBase = object



# A decorator that opens a session unless the caller passes one, and hands it over as the
# `session` keyword; the tag's constructor adds it to the session it is given.
_DECORATORS = '''
import functools

from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, SessionLocal


def with_session(func):
    maker = functools.partial(SessionLocal, expire_on_commit=False)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if kwargs.get("session") is not None:
            return func(*args, **kwargs)
        with maker() as session:
            kwargs["session"] = session
            return func(*args, **kwargs)

    return wrapper


class Tag(Base):
    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]

    def __init__(self, name, session):
        self.name = name
        session.add(self)
'''


class MergeResultDiscarded(Pass):
    code = "SQF008"
    name = "merge-result-discarded"
    summary = "`session.merge(obj)` whose result is dropped while `obj` is used afterwards"
    fix_safety = "safe"
    triggers = (b".merge(",)
    method = "merge"
    explanation = """
    ## What it does
    Finds `session.merge(obj)` (or `await session.merge(obj)`) written as a statement of its
    own, its result thrown away, where the function goes on using `obj`: reads or changes an
    attribute, passes it to a call, returns it. Only sessions sqla-fix recognises count
    (sessions opened in the function, parameters typed as sessions, FastAPI-provided
    sessions, the session a session decorator passes in, `self.session` of a class that
    holds one, scoped registries, Flask-SQLAlchemy's `db.session`); a `merge()` method of
    anything else is left alone.

    An object constructed in the function (`obj = Model(...)`) counts when an attribute of
    it is changed after the merge, or when it is given away (returned, stored on another
    object, passed to a constructor, `add()` or `append()`) while the session outlives the
    function and nothing after the merge expires the merged instance: whoever receives the
    copy takes it for the row the session tracks.

    Not reported: an object the function loaded through the same session or added to it
    (`merge()` then returns the object itself, as it does for an object whose constructor
    adds it to the session it is given), an object constructed in the function whose
    attributes are only read back afterwards (it still holds what the code set), an object
    merged again later (that call copies the later changes), and a name rebound before its
    next use.

    ## Why is this bad?
    `merge()` does not attach `obj`. It copies `obj`'s state onto the instance with the same
    primary key in *this* session (loading it, or creating a new one) and returns that
    instance; `obj` itself stays outside the session. Whatever the code does to `obj` after
    the call goes nowhere: a change is never flushed, so the commit succeeds and the update is
    silently lost; a database-generated value (an autoincrement id, a server default) never
    appears on `obj`; and if `obj` is detached, reading an expired or unloaded attribute raises
    `DetachedInstanceError`.

    ## The fix
    Keep the instance `merge()` returns: `obj = session.merge(obj)` (`obj = await
    session.merge(obj)` for an `AsyncSession`). Later code then works on the instance the
    session tracks.

    ## Fix safety
    Safe: the merged instance carries every value `obj` had at the time of the call, and from
    then on the session saves the changes made to it. Code that relied on `obj` staying out of
    the session (to change it without saving the change) is the only code that behaves
    differently, and that is what the call was supposed to prevent.
    """
    example_project = {"app/__init__.py": "", "app/db.py": SYNC_DB, "app/decorators.py": _DECORATORS}
    examples = (
        Example(
            title="a change made after the merge is lost",
            before='''
            from app.db import SessionLocal, User


            def rename(user: User, name: str) -> None:
                with SessionLocal() as session:
                    session.merge(user)  # attach it
                    user.name = name
                    session.commit()
            ''',
            after='''
            from app.db import SessionLocal, User


            def rename(user: User, name: str) -> None:
                with SessionLocal() as session:
                    user = session.merge(user)  # attach it
                    user.name = name
                    session.commit()
            ''',
        ),
        Example(
            title="async: the await stays",
            before='''
            from sqlalchemy.ext.asyncio import AsyncSession


            async def save(session: AsyncSession, user) -> int:
                await session.merge(user)
                await session.commit()
                return user.id
            ''',
            after='''
            from sqlalchemy.ext.asyncio import AsyncSession


            async def save(session: AsyncSession, user) -> int:
                user = await session.merge(user)
                await session.commit()
                return user.id
            ''',
        ),
        Example(
            title="the object is passed on after the merge",
            before='''
            from sqlalchemy.orm import Session


            class Repository:
                def __init__(self, session: Session) -> None:
                    self.session = session

                def store(self, item) -> None:
                    self.session.merge(item)
                    audit(item)
                    self.session.commit()
            ''',
            after='''
            from sqlalchemy.orm import Session


            class Repository:
                def __init__(self, session: Session) -> None:
                    self.session = session

                def store(self, item) -> None:
                    item = self.session.merge(item)
                    audit(item)
                    self.session.commit()
            ''',
        ),
        Example(
            title="a new object, changed after the merge",
            before='''
            from app.db import SessionLocal, User


            def register(name: str) -> None:
                user = User(name=name)
                with SessionLocal() as session:
                    session.merge(user)
                    user.name = name.title()
                    session.commit()
            ''',
            after='''
            from app.db import SessionLocal, User


            def register(name: str) -> None:
                user = User(name=name)
                with SessionLocal() as session:
                    user = session.merge(user)
                    user.name = name.title()
                    session.commit()
            ''',
        ),
        Example(
            title="used in a nested function defined after the merge: the closure reads the rebound name",
            before='''
            from app.db import SessionLocal


            def schedule(user, when) -> None:
                with SessionLocal() as session:
                    session.merge(user)
                    session.commit()

                    def remind():
                        user.reminded = True

                    later(when, remind)
            ''',
            after='''
            from app.db import SessionLocal


            def schedule(user, when) -> None:
                with SessionLocal() as session:
                    user = session.merge(user)
                    session.commit()

                    def remind():
                        user.reminded = True

                    later(when, remind)
            ''',
        ),
        Example(
            title="a new object handed back to the caller of a session decorator",
            before='''
            from app.db import User
            from app.decorators import with_session


            @with_session
            def import_user(data: dict, session=None) -> User:
                user = User(id=data["id"], name=data["name"])
                session.merge(user)
                return user
            ''',
            after='''
            from app.db import User
            from app.decorators import with_session


            @with_session
            def import_user(data: dict, session=None) -> User:
                user = User(id=data["id"], name=data["name"])
                user = session.merge(user)
                return user
            ''',
        ),
        Example(
            title="a repository's session typed by a string annotation; the add is another case",
            before='''
            from typing import TYPE_CHECKING

            if TYPE_CHECKING:
                from sqlalchemy.ext.asyncio import AsyncSession


            class Repository:
                def __init__(self, session: "AsyncSession") -> None:
                    self._session = session

                async def attach(self, item, strategy: str):
                    match strategy:
                        case "add":
                            self._session.add(item)
                        case "merge":
                            await self._session.merge(item)
                    return item
            ''',
            after='''
            from typing import TYPE_CHECKING

            if TYPE_CHECKING:
                from sqlalchemy.ext.asyncio import AsyncSession


            class Repository:
                def __init__(self, session: "AsyncSession") -> None:
                    self._session = session

                async def attach(self, item, strategy: str):
                    match strategy:
                        case "add":
                            self._session.add(item)
                        case "merge":
                            item = await self._session.merge(item)
                    return item
            ''',
        ),
        Example(
            title="a variable of the enclosing function: reported, no fix",
            before='''
            from app.db import SessionLocal


            def make_saver(user):
                def save(name: str) -> None:
                    with SessionLocal() as session:
                        session.merge(user)
                        user.name = name
                        session.commit()
                return save
            ''',
        ),
    )
    valid = (
        Valid(
            '''
            from app.db import SessionLocal


            def save(user) -> None:
                with SessionLocal() as session:
                    session.merge(user)
                    session.commit()
            ''',
            "`obj` is not used after the merge: the merged copy is what the commit saves",
        ),
        Valid(
            '''
            from app.db import SessionLocal


            def save(user):
                with SessionLocal() as session:
                    merged = session.merge(user)
                    merged.visits += 1
                    session.commit()
                    return merged.id
            ''',
            "the result is kept",
        ),
        Valid(
            '''
            from app.db import SessionLocal, User


            def restore(user_id: int) -> None:
                with SessionLocal() as session:
                    session.merge(User(id=user_id, name="restored"))
                    session.commit()
            ''',
            "no name to rebind: the argument is an expression",
        ),
        Valid(
            '''
            def combine(settings: dict, defaults, extra) -> dict:
                defaults.merge(extra)
                return extra.copy()
            ''',
            "a `merge()` method of something that is not a session",
        ),
        Valid(
            '''
            from app.db import SessionLocal, User


            def sync(users: list) -> None:
                with SessionLocal() as session:
                    for user in users:
                        session.merge(user)
                    session.commit()
            ''',
            "the loop rebinds `obj` before each use",
        ),
        Valid(
            '''
            from app.db import SessionLocal, User


            def replace(user, fresh) -> None:
                with SessionLocal() as session:
                    session.merge(user)
                    user = fresh
                    print(user.name)
                    session.commit()
            ''',
            "`obj` is rebound before its next use",
        ),
        Valid(
            '''
            from app.db import SessionLocal, User


            def save(user, dry_run: bool) -> None:
                with SessionLocal() as session:
                    if dry_run:
                        print(user.name)
                    else:
                        session.merge(user)
                        session.commit()
            ''',
            "the later use sits in the other branch of the if",
        ),
        Valid(
            '''
            from app.db import SessionLocal, User


            def save(user, replace: bool) -> str:
                with SessionLocal() as session:
                    if replace:
                        session.merge(user)
                        session.commit()
                        return "replaced"
                return user.name
            ''',
            "the branch that merges returns before the later use",
        ),
        Valid(
            '''
            from app.db import SessionLocal, User


            def save(user, other) -> None:
                with SessionLocal() as session:
                    session.merge(user)
                    session.commit()
                    report = [user.name for user in other]
            ''',
            "a comprehension's own variable of the same name",
        ),
        Valid(
            '''
            from app.db import SessionLocal, User


            def touch(name: str) -> None:
                with SessionLocal() as session:
                    user = session.query(User).filter_by(name=name).first()
                    if user is None:
                        user = User(name=name)
                        session.add(user)
                    session.merge(user)
                    user.visits += 1
                    session.commit()
            ''',
            "loaded through this session or added to it: merge() returns the object itself",
        ),
        Valid(
            '''
            from app.db import SessionLocal, User


            def save_cookie(name: str, value: dict) -> dict:
                cookie = Cookie(name=name, value=value)
                with SessionLocal() as session:
                    session.merge(cookie)
                    session.commit()
                return cookie.value
            ''',
            "an object constructed here and only read back afterwards: it still holds what the code set",
        ),
        Valid(
            '''
            from app.db import SessionLocal, User


            def import_user(data: dict) -> User:
                user = User(id=data["id"], name=data["name"])
                with SessionLocal() as session:
                    session.merge(user)
                    session.commit()
                return user
            ''',
            "a new object returned after the function's own session closed: the merged instance would "
            "come back expired and detached, the copy holds what the code set",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session
            from app.db import User


            def import_user(session: Session, data: dict) -> User:
                user = User(id=data["id"], name=data["name"])
                session.merge(user)
                session.commit()
                return user
            ''',
            "a new object returned after a commit that expires the merged instance: keeping that "
            "instance would change what the caller's reads do",
        ),
        Valid(
            '''
            from app.decorators import Tag, with_session


            @with_session
            def tag(name: str, session=None) -> Tag:
                tag = Tag(name, session)
                session.merge(tag)
                return tag
            ''',
            "a constructor that adds the object to the session it is given: merge() returns the object itself",
        ),
    )

    def run(self, ctx: FileContext) -> Iterator[Finding]:
        for qualname, fn in functions_calling(ctx, self.method):
            evs = events(fn, ctx)
            uses: dict[str, list[Use]] = {}
            for ev in evs:
                merged = _discarded_merge(ev)
                if merged is None:
                    continue
                expr, obj = merged
                refs = sessions(ctx, fn, qualname, evs)
                holder = held(ctx, qualname, ev.owner, refs)  # type: ignore[arg-type]
                if holder is None:
                    continue
                origin = _origin(ctx, evs, ev, obj)
                if origin is _Origin.THIS_SESSION:
                    continue
                if obj not in uses:
                    uses[obj] = uses_of(fn, obj)
                handing = origin is not _Origin.NEW or _merged_outlives(evs, ev, holder, refs)
                later = _first_use_after(uses[obj], ev, new=origin is _Origin.NEW, handing=handing)
                if later is not None:
                    yield self._finding(ctx, ev, expr, obj, later, _local(fn, uses[obj], obj),
                                        new=origin is _Origin.NEW)

    def _finding(self, ctx: FileContext, ev: Event, expr: cst.Expr, obj: str, later: Use,
                 local: bool, new: bool) -> Finding:
        S = ev.owner
        awaited = "await " if isinstance(expr.value, cst.Await) else ""
        line = ctx.position(later.node).start.line
        if later.handed and not later.write:
            how = "returned" if later.returned else "handed on"
            consequence = "whoever gets it holds an object the session does not track: changes to it are never saved"
            if new:
                consequence += ", and attaching it to a session (add, a relationship) inserts it again"
        else:
            how = "used again"
            consequence = ("changes to it are never saved, and its unloaded attributes may raise "
                           "DetachedInstanceError")
        message = (f"`{S}.merge({obj})` returns the instance the session tracks and leaves `{obj}` "
                   f"outside it, but `{obj}` is {how} (line {line}): {consequence}; "
                   f"use `{obj} = {awaited}{S}.merge({obj})`")
        if not local:
            message += (f" (`{obj}` is not a local of this function, and assigning it here would make "
                        f"it one: no automatic fix)")
            return self.finding(ev.node, message)
        fix = Fix([Edit(expr, replace=lambda upd, o=obj: _rebind(upd, o))])  # type: ignore[misc]
        return self.finding(ev.node, message, fix)


def _local(fn: cst.FunctionDef, uses: list[Use], obj: str) -> bool:
    """Is ``obj`` a plain local of ``fn`` (a parameter, or a name it binds), so that assigning
    it changes nothing outside? A global, nonlocal or free variable is not."""
    declared = m.findall(fn.body, m.Global() | m.Nonlocal())
    if any(item.name.value == obj for d in declared for item in d.names):  # type: ignore[attr-defined]
        return False
    params = {p.name.value for p in m.findall(fn.params, m.Param())}  # type: ignore[attr-defined]
    return obj in params or any(u.store for u in uses)


def _rebind(updated: cst.CSTNode, obj: str) -> cst.CSTNode:
    assert isinstance(updated, cst.Expr)
    return cst.Assign(targets=[cst.AssignTarget(cst.Name(obj))], value=updated.value, semicolon=updated.semicolon)


class _Origin(Enum):
    """Where the merged object came from, as far as the function shows."""

    THIS_SESSION = "this session"  # loaded through it, added to it, or from a call given it:
    # maybe already in the session, and then merge() returns the object itself
    NEW = "new"  # constructed here: reading back what the code set is fine; a change is lost
    UNKNOWN = "unknown"  # a parameter, another session's object: reads may raise too


def _origin(ctx: FileContext, evs: list[Event], merge: Event, obj: str) -> _Origin:
    S = merge.owner
    # From the last binding of the name every path to the merge goes through: what the
    # name held before it is another object.
    start = 0
    for ev in evs[: merge.index]:
        if ev.kind == EventKind.ASSIGN and ev.name == obj and reachable_only_through(merge, ev):
            start = ev.index
    new = None
    for ev in evs[start: merge.index]:
        if ev.kind == EventKind.CALL and ev.owner == S and ev.name in ("add", "add_all") and obj in ev.args \
                and falls_through_to(_statement_path(ev), merge.path):
            return _Origin.THIS_SESSION  # (an add in another branch, `case "add":`, does not count)
        if ev.kind == EventKind.ASSIGN and ev.name == obj:
            value = ev.value
            if value is None:  # a loop variable
                new = False
                continue
            while isinstance(value, cst.Await):
                value = value.expression
            callee = dotted(value.func) if isinstance(value, cst.Call) else None
            constructed = callee is not None and callee.rsplit(".", 1)[-1][:1].isupper()
            given = any(dotted(n) == S for n in m.findall(value, m.Name() | m.Attribute()))  # type: ignore[arg-type]
            if given and not (constructed and _detached_constructor(ctx, callee)):
                return _Origin.THIS_SESSION
            new = constructed if new is None else new and constructed
    return _Origin.NEW if new else _Origin.UNKNOWN


def _detached_constructor(ctx: FileContext, callee: str | None) -> bool:
    """Does ``Model(..., session)`` build an object its constructor leaves out of the session?
    A known model whose ``__init__`` (and the methods of the class it calls) neither adds nor
    merges anything; a constructor that attaches the object (``session.add(self)``) makes
    ``merge()`` return the object itself."""
    model = model_for(ctx, callee)
    if model is None:
        return False
    index = ctx.index
    init = index.function(f"{model.qualified}.__init__")
    if init is None:
        return True  # the declarative constructor only sets attributes
    attaching = {"add", "add_all", "merge"}
    for name in {"__init__", *init.methods}:
        fn = init if name == "__init__" else index.function(f"{model.qualified}.{name}")
        if fn is not None and attaching & fn.methods:
            return False
    return True


def _discarded_merge(ev: Event) -> tuple[cst.Expr, str] | None:
    """``S.merge(name)`` (awaited or not) as a whole expression statement: its Expr and the name."""
    if ev.kind != EventKind.CALL or ev.name != "merge" or ev.owner is None:
        return None
    call = ev.node
    assert isinstance(call, cst.Call)
    positional = [a for a in call.args if a.keyword is None]
    if len(positional) != 1 or positional[0].star or not isinstance(positional[0].value, cst.Name):
        return None
    obj = positional[0].value.value
    if obj in ("self", "cls"):
        return None
    try:
        stmt = ev.statement
    except LookupError:
        return None
    for small, value in statement_calls(stmt) or ():
        if value is call:
            return small, obj  # type: ignore[return-value]
    return None


def _merged_outlives(evs: list[Event], merge: Event, holder: Held, refs: dict[str, SessionRef]) -> bool:
    """Is the instance ``merge()`` returns still usable where the function gives the object
    away (so that keeping it cannot break the code that receives it)? The session outlives
    the function (the caller's, a provider's, a registry's), and nothing after the merge
    expires it: no rollback, no commit of a session that expires on commit."""
    if holder is Held.HERE:
        return False
    S = merge.owner
    ref = refs.get(S) if S is not None else None
    expires = ref.expire_on_commit if ref is not None else True
    return not any(e.kind == EventKind.CALL and e.owner == S and e.index > merge.index
                   and (e.name == "rollback" or (e.name == "commit" and expires)) for e in evs)


def _first_use_after(uses: list[Use], merge: Event, new: bool, handing: bool = True) -> Use | None:
    """The first use of the merged name that can run after the merge statement, before the
    name is rebound (on every path) or merged again. For an object constructed in the
    function (``new``), reading back what the code set is fine: only attribute writes count,
    and the object given away when ``handing``."""
    path = _statement_path(merge)
    if not path:
        return None
    for use in uses:
        if not falls_through_to(path, use.path):
            continue
        if use.store:
            if _encloses(use.path[:-1], path):
                return None  # rebound: later uses see the new value
            continue
        if use.merged:
            return None  # merged again: that call copies the later changes
        if use.write or not new or (use.handed and handing):
            return use
    return None


def _statement_path(ev: Event) -> tuple[cst.CSTNode, ...]:
    """``ev``'s path up to its statement (empty when it is in none)."""
    try:
        stmt = ev.statement
    except LookupError:
        return ()
    return ev.path[: ev.path.index(stmt) + 1]


def _encloses(prefix: tuple[cst.CSTNode, ...], path: tuple[cst.CSTNode, ...]) -> bool:
    return len(prefix) <= len(path) and all(a is b for a, b in zip(prefix, path))
