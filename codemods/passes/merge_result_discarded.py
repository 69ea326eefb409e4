"""SQF008 merge-result-discarded: `session.merge(obj)` as a statement, `obj` used after it."""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum
from typing import TYPE_CHECKING  # noqa: I001

from ..lazy import lazy
from .base import Edit, Example, FileContext, Finding, Fix, Pass, Valid
from .examples import SYNC_DB
from .flow import Event, events, falls_through_to, functions, held, sessions, shape
from .helpers import dotted
from .uses import Use
from .uses import uses as uses_of

if TYPE_CHECKING:
    import libcst as cst
    import libcst.matchers as m
else:
    cst = lazy("libcst")
    m = lazy("libcst.matchers")



class MergeResultDiscarded(Pass):
    code = "SQF008"
    name = "merge-result-discarded"
    summary = "`session.merge(obj)` whose result is dropped while `obj` is used afterwards"
    fix_safety = "safe"
    triggers = (b".merge(",)
    explanation = """
    ## What it does
    Finds `session.merge(obj)` (or `await session.merge(obj)`) written as a statement of its
    own, its result thrown away, where the function goes on using `obj`: reads or changes an
    attribute, passes it to a call, returns it. Only sessions sqla-fix recognises count
    (sessions opened in the function, parameters typed as sessions, FastAPI-provided
    sessions, `self.session` of a class that holds one, scoped registries, Flask-SQLAlchemy's
    `db.session`); a `merge()` method of anything else is left alone.

    Not reported: an object the function loaded through the same session or added to it
    (`merge()` then returns the object itself), an object constructed in the function whose
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
    example_project = {"app/__init__.py": "", "app/db.py": SYNC_DB}
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
    )

    @classmethod
    def wants(cls, index, facts) -> bool:
        return facts is None or "merge" in facts.all_methods

    def run(self, ctx: FileContext) -> Iterator[Finding]:
        for qualname, fn in functions(ctx.module, ctx):
            if "merge" not in shape(ctx, fn, qualname).methods:
                continue
            evs = events(fn, ctx)
            uses: dict[str, list[Use]] = {}
            for ev in evs:
                merged = _discarded_merge(ev)
                if merged is None:
                    continue
                expr, obj = merged
                if held(ctx, qualname, ev.owner, sessions(ctx, fn, qualname, evs)) is None:  # type: ignore[arg-type]
                    continue
                origin = _origin(evs, ev, obj)
                if origin is _Origin.THIS_SESSION:
                    continue
                if obj not in uses:
                    uses[obj] = uses_of(fn, obj)
                later = _first_use_after(uses[obj], ev, writes_only=origin is _Origin.NEW)
                if later is not None:
                    yield self._finding(ctx, ev, expr, obj, later, _local(fn, uses[obj], obj))

    def _finding(self, ctx: FileContext, ev: Event, expr: cst.Expr, obj: str, later: Use,
                 local: bool) -> Finding:
        S = ev.owner
        awaited = "await " if isinstance(expr.value, cst.Await) else ""
        line = ctx.position(later.node).start.line
        message = (f"`{S}.merge({obj})` returns the instance the session tracks and leaves `{obj}` "
                   f"outside it, but `{obj}` is used again (line {line}): changes to it are never "
                   f"saved, and its unloaded attributes may raise DetachedInstanceError; "
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


def _origin(evs: list[Event], merge: Event, obj: str) -> _Origin:
    S = merge.owner
    new = None
    for ev in evs[: merge.index]:
        if ev.kind == "call" and ev.owner == S and ev.name in ("add", "add_all") and obj in ev.args:
            return _Origin.THIS_SESSION
        if ev.kind == "assign" and ev.name == obj:
            value = ev.value
            if value is None:  # a loop variable
                new = False
                continue
            if any(dotted(n) == S for n in m.findall(value, m.Name() | m.Attribute())):  # type: ignore[arg-type]
                return _Origin.THIS_SESSION
            while isinstance(value, cst.Await):
                value = value.expression
            callee = dotted(value.func) if isinstance(value, cst.Call) else None
            constructed = callee is not None and callee.rsplit(".", 1)[-1][:1].isupper()
            new = constructed if new is None else new and constructed
    return _Origin.NEW if new else _Origin.UNKNOWN


def _discarded_merge(ev: Event) -> tuple[cst.Expr, str] | None:
    """``S.merge(name)`` (awaited or not) as a whole expression statement: its Expr and the name."""
    if ev.kind != "call" or ev.name != "merge" or ev.owner is None:
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
    if not isinstance(stmt, cst.SimpleStatementLine):
        return None
    for small in stmt.body:
        value = small.value if isinstance(small, cst.Expr) else None
        if isinstance(value, cst.Await):
            value = value.expression
        if value is call:
            return small, obj  # type: ignore[return-value]
    return None


def _first_use_after(uses: list[Use], merge: Event, writes_only: bool) -> Use | None:
    """The first use of the merged name that can run after the merge statement, before the
    name is rebound (on every path) or merged again; only attribute writes if ``writes_only``."""
    try:
        stmt = merge.statement
    except LookupError:
        return None
    path = merge.path[: merge.path.index(stmt) + 1]
    for use in uses:
        if not falls_through_to(path, use.path):
            continue
        if use.store:
            if _encloses(use.path[:-1], path):
                return None  # rebound: later uses see the new value
            continue
        if use.merged:
            return None  # merged again: that call copies the later changes
        if use.write or not writes_only:
            return use
    return None


def _encloses(prefix: tuple[cst.CSTNode, ...], path: tuple[cst.CSTNode, ...]) -> bool:
    return len(prefix) <= len(path) and all(a is b for a, b in zip(prefix, path))
