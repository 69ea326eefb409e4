"""SQF002 merge-foreign-instance: ``merge()`` an object that another open session holds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..lazy import lazy
from .base import Edit, Example, FileContext, Finding, Fix, Pass, Valid
from .flow import functions, method_calls, shape
from .helpers import await_if, dotted, function_facts, param_facts, session_is_async
from .helpers import rebinds as _rebinds

if TYPE_CHECKING:
    import libcst as cst

    from ..index import lookup
else:
    cst = lazy("libcst")
    lookup = lazy("codemods.index.lookup")

_DB = '''
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

engine = create_async_engine("sqlite+aiosqlite://")
SessionLocal = async_sessionmaker(engine)


async def get_db() -> AsyncIterator[AsyncSession]:
    async with SessionLocal() as session:
        yield session


async def get_auth_db() -> AsyncIterator[AsyncSession]:
    async with SessionLocal() as session:
        yield session
'''

_AUTH = '''
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_auth_db, get_db
from app.models import User

SessionDep = Annotated[AsyncSession, Depends(get_db)]


async def get_current_user(auth_db: AsyncSession = Depends(get_auth_db)) -> User:
    return await auth_db.get(User, 1)


async def get_shared_user(db: SessionDep) -> User:
    return await db.get(User, 1)


async def get_user_closed() -> User:
    from app.db import SessionLocal
    async with SessionLocal() as s:
        return await s.get(User, 1)


async def get_user_closing() -> User:
    from app.db import SessionLocal
    s = SessionLocal()
    try:
        return await s.get(User, 1)
    finally:
        await s.close()


async def get_user_detached(auth_db: AsyncSession = Depends(get_auth_db)) -> User:
    user = await auth_db.get(User, 1)
    auth_db.expunge(user)
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
SharedUser = Annotated[User, Depends(get_shared_user)]
'''

_REEXPORT = '''
from app.db import get_db as get_db
'''


class MergeForeignInstance(Pass):
    code = "SQF002"
    name = "merge-foreign-instance"
    summary = "`session.add(obj)` where obj belongs to another session that is still open"
    fix_safety = "safe"
    triggers = (b".add(",)
    explanation = """
    ## What it does
    Finds `session.add(obj)` where `obj` was loaded by a *different* session that may still be
    open: a FastAPI dependency (`current_user: User = Depends(get_current_user)`) whose provider
    loads the object through its own session, or a function that receives the object and the
    session as separate parameters while its callers load the object through another session.

    ## Why is this bad?
    An instance belongs to exactly one session. `add()` of an instance attached to another open
    session raises `InvalidRequestError: Object '<User ...>' is already attached to session 'N'
    (this is 'M')`. (If the other session is already closed, `add()` silently re-attaches; that
    case is not reported.)

    FastAPI resolves a dependency once per request: when the current-user provider and the
    endpoint both depend on the same session provider (`Depends(get_db)`, or a `SessionDep`
    alias), they share one session and `add()` is correct. sqla-fix follows the providers
    through the project index and only reports when the sessions really differ.

    ## The fix
    `obj = await session.merge(obj)` for an `AsyncSession` (`obj = session.merge(obj)` in sync
    code). `merge()` copies the object's state onto the instance of *this* session and returns
    that instance; assigning it back matters, because changes made to the old object after a
    bare `merge()` call would not be saved by this session. Better still, use one session per
    request.

    ## Fix safety
    Safe: `merge()` of an instance already in this session returns it unchanged, and for a
    foreign instance it does what `add()` was meant to do. When a caller passes a freshly
    constructed object to the same function, that caller would keep a transient copy: such
    functions are reported without a fix.
    """
    example_project = {
        "app/__init__.py": "",
        "app/db.py": _DB,
        "app/auth.py": _AUTH,
        "app/deps.py": _REEXPORT,
        "app/models.py": "from sqlalchemy.orm import DeclarativeBase\n\nclass Base(DeclarativeBase):\n    pass\n\nclass User(Base):\n    __tablename__ = 'users'\n",
    }
    examples = (
        Example(
            title="the current user comes from the auth provider's own session",
            before='''
            from fastapi import Depends
            from sqlalchemy.ext.asyncio import AsyncSession

            from app.auth import get_current_user
            from app.db import get_db
            from app.models import User


            async def touch(current_user: User = Depends(get_current_user), db: AsyncSession = Depends(get_db)):
                current_user.visits += 1
                db.add(current_user)  # keep this comment
                await db.commit()
            ''',
            after='''
            from fastapi import Depends
            from sqlalchemy.ext.asyncio import AsyncSession

            from app.auth import get_current_user
            from app.db import get_db
            from app.models import User


            async def touch(current_user: User = Depends(get_current_user), db: AsyncSession = Depends(get_db)):
                current_user.visits += 1
                current_user = await db.merge(current_user)  # keep this comment
                await db.commit()
            ''',
        ),
        Example(
            title="Annotated aliases, session opened in the endpoint",
            before='''
            from app.auth import CurrentUser
            from app.db import SessionLocal


            async def rename(current_user: CurrentUser, name: str):
                async with SessionLocal() as db:
                    current_user.name = name
                    db.add(current_user)
                    await db.commit()
            ''',
            after='''
            from app.auth import CurrentUser
            from app.db import SessionLocal


            async def rename(current_user: CurrentUser, name: str):
                async with SessionLocal() as db:
                    current_user.name = name
                    current_user = await db.merge(current_user)
                    await db.commit()
            ''',
        ),
        Example(
            title="fastapi.Security is a Depends too",
            before='''
            from fastapi import Depends, Security
            from sqlalchemy.ext.asyncio import AsyncSession

            from app.auth import get_current_user
            from app.db import get_db


            async def touch(current_user=Security(get_current_user), db: AsyncSession = Depends(get_db)):
                db.add(current_user)
                await db.commit()
            ''',
            after='''
            from fastapi import Depends, Security
            from sqlalchemy.ext.asyncio import AsyncSession

            from app.auth import get_current_user
            from app.db import get_db


            async def touch(current_user=Security(get_current_user), db: AsyncSession = Depends(get_db)):
                current_user = await db.merge(current_user)
                await db.commit()
            ''',
        ),
        Example(
            title="sync: the caller loads through a service given another session",
            before='''
            from sqlalchemy.orm import Session, sessionmaker


            def save_case(case, db: Session) -> None:
                db.add(case)
                db.commit()


            def handle(SessionLocal: sessionmaker, case_id: int) -> None:
                auth = SessionLocal()
                case = case_service.get(db_session=auth, case_id=case_id)
                with SessionLocal() as db:
                    save_case(case, db)
            ''',
            after='''
            from sqlalchemy.orm import Session, sessionmaker


            def save_case(case, db: Session) -> None:
                case = db.merge(case)
                db.commit()


            def handle(SessionLocal: sessionmaker, case_id: int) -> None:
                auth = SessionLocal()
                case = case_service.get(db_session=auth, case_id=case_id)
                with SessionLocal() as db:
                    save_case(case, db)
            ''',
        ),
        Example(
            title="one caller passes a foreign object, another a new one: reported, no fix",
            before='''
            from sqlalchemy.orm import Session, sessionmaker


            def save_case(case, db: Session) -> None:
                db.add(case)
                db.commit()


            def handle(SessionLocal: sessionmaker, case_id: int, project) -> None:
                auth = SessionLocal()
                case = auth.get(Case, case_id)
                with SessionLocal() as db:
                    save_case(case, db)
                    save_case(Case(title="new", project=project), db)
            ''',
        ),
        Example(
            title="sync: the caller loads the object through another open session",
            before='''
            from sqlalchemy.orm import Session, sessionmaker


            def record_visit(user, db: Session) -> None:
                user.visits += 1
                db.add(user)
                db.commit()


            def handle(SessionLocal: sessionmaker, user_id: int) -> None:
                auth = SessionLocal()
                user = auth.get(User, user_id)
                with SessionLocal() as db:
                    record_visit(user, db)
            ''',
            after='''
            from sqlalchemy.orm import Session, sessionmaker


            def record_visit(user, db: Session) -> None:
                user.visits += 1
                user = db.merge(user)
                db.commit()


            def handle(SessionLocal: sessionmaker, user_id: int) -> None:
                auth = SessionLocal()
                user = auth.get(User, user_id)
                with SessionLocal() as db:
                    record_visit(user, db)
            ''',
        ),
    )
    valid = (
        Valid(
            '''
            from fastapi import Depends
            from app.auth import SessionDep, SharedUser


            async def touch(current_user: SharedUser, db: SessionDep):
                db.add(current_user)
                await db.commit()
            ''',
            "the provider and the endpoint share one session per request (FastAPI caches `get_db`)",
        ),
        Valid(
            '''
            from fastapi import Depends
            from sqlalchemy.ext.asyncio import AsyncSession
            from app.auth import get_user_closed
            from app.db import get_db


            async def touch(user=Depends(get_user_closed), db: AsyncSession = Depends(get_db)):
                db.add(user)
                await db.commit()
            ''',
            "the provider's own session is closed before the endpoint runs: add() re-attaches",
        ),
        Valid(
            '''
            from fastapi import Depends
            from sqlalchemy.ext.asyncio import AsyncSession
            from app.auth import get_shared_user
            from app.deps import get_db


            async def touch(user=Depends(get_shared_user), db: AsyncSession = Depends(get_db)):
                db.add(user)
                await db.commit()
            ''',
            "the same get_db, imported through a re-export",
        ),
        Valid(
            '''
            from fastapi import Depends
            from sqlalchemy.ext.asyncio import AsyncSession
            from app.auth import get_user_closing, get_user_detached
            from app.db import get_db


            async def touch(a=Depends(get_user_closing), b=Depends(get_user_detached), db: AsyncSession = Depends(get_db)):
                db.add(a)
                db.add(b)
                await db.commit()
            ''',
            "providers that close their session or expunge the object hand over a detached object",
        ),
        Valid(
            '''
            from fastapi import Depends
            from sqlalchemy.ext.asyncio import AsyncSession
            from app.db import get_db
            from app.models import User


            async def create(name: str, db: AsyncSession = Depends(get_db)):
                user = User(name=name)
                db.add(user)
                await db.commit()
            ''',
            "an object constructed in the function",
        ),
        Valid(
            '''
            from fastapi import Depends
            from sqlalchemy.ext.asyncio import AsyncSession
            from app.db import get_db
            from app.models import User


            async def rename(user_id: int, db: AsyncSession = Depends(get_db)):
                user = await db.get(User, user_id)
                user.name = "x"
                db.add(user)
                await db.commit()
            ''',
            "an object loaded through the same session",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session


            def save(user, db: Session) -> None:
                db.add(user)
                db.commit()


            def register(db: Session, name: str) -> None:
                save(User(name=name), db)
            ''',
            "a function whose callers pass new objects (merge would leave them transient)",
        ),
        Valid(
            '''
            from flask import session


            def remember(cart):
                session.add(cart)
            ''',
            "`session` that is not a SQLAlchemy session",
        ),
    )

    @classmethod
    def wants(cls, index, facts) -> bool:
        if facts is None:
            return True
        if "add" not in facts.all_methods:
            return False
        # what is added must be a parameter of an indexed function (see check_call: a function
        # nested in a method has no facts, and is not checked)
        return any(fn.added_params and any(_plausible_owner(fn, o) for o in fn.add_owners)
                   for fn in facts.functions.values())

    def run(self, ctx: FileContext) -> Iterator[Finding]:
        for qualname, fn in functions(ctx.module, ctx):
            if "add" not in shape(ctx, fn, qualname).methods or not self._plausible(ctx, qualname):
                continue
            for call, stmt in method_calls(ctx, fn, "add"):
                if _one_name_argument(call):
                    finding = self.check_call(ctx, qualname, fn, call, stmt)
                    if finding is not None:
                        yield finding

    @staticmethod
    def _plausible(ctx: FileContext, qualname: str) -> bool:
        """From the ast facts (first round only): is some `X.add(...)` of this function on a
        parameter or a session it opened? `seen.add(v)` on a local set is not."""
        if ctx.round:
            return True
        facts = function_facts(ctx, qualname)
        if facts is None:
            return True
        return any(_plausible_owner(facts, o) for o in facts.add_owners)

    def check_call(self, ctx: FileContext, qualname: str, fn: cst.FunctionDef, call: cst.Call,
                   stmt: cst.Expr | None) -> Finding | None:
        obj = call.args[0].value.value  # type: ignore[attr-defined]
        assert isinstance(call.func, cst.Attribute)  # the caller matched `owner.add(obj)`
        session = call.func.value
        owner = dotted(session)
        if owner is None or obj in ("self", "cls"):
            return None
        facts = function_facts(ctx, qualname)
        p_obj = param_facts(facts, obj)
        if p_obj is None or _rebinds(fn, obj):
            return None
        index = ctx.index
        dep, _ = index.param_dependency(p_obj)
        if dep:
            reason = self._injected_reason(ctx, fn, facts, owner, dep, p_obj)
            fixable = True
        else:
            reason, fixable = self._caller_reason(ctx, qualname, facts, owner, obj)
        if reason is None:
            return None
        is_async = session_is_async(ctx, fn, owner, facts)
        fix = None
        form = f"{obj} = {'await ' if is_async else ''}{owner}.merge({obj})"
        if fixable and is_async is not None and stmt is not None:
            awaits = is_async

            def merged(upd: cst.CSTNode) -> cst.CSTNode:
                return self._merge(upd, obj, session, awaits)

            fix = Fix([Edit(stmt, replace=merged)])
        message = (
            f"`{obj}` belongs to another session that is still open ({reason}); "
            f"`{owner}.add({obj})` raises InvalidRequestError: use `{form}`"
        )
        if is_async is None and fixable:
            message += " (cannot tell whether the session is async: no automatic fix)"
        return self.finding(call, message, fix)

    @staticmethod
    def _merge(updated: cst.CSTNode, obj: str, owner: cst.BaseExpression, is_async: bool) -> cst.CSTNode:
        merge = cst.Call(func=cst.Attribute(value=owner.deep_clone(), attr=cst.Name("merge")), args=[cst.Arg(cst.Name(obj))])
        return cst.Assign(targets=[cst.AssignTarget(cst.Name(obj))], value=await_if(merge, is_async))

    def _injected_reason(self, ctx, fn, facts, owner: str, dep: str, p_obj) -> str | None:
        index = ctx.index
        origins = index.value_sessions(dep)
        if not origins:
            return None  # provider unknown, or its value involves no session
        short = dep.rsplit(".", 1)[-1]
        p_sess = param_facts(facts, owner)
        s_dep, s_cache = index.param_dependency(p_sess) if p_sess is not None else (None, True)
        if s_dep:
            s_provider = index.session_provider(s_dep)
            if s_provider is None:
                return None
            for o in origins:
                if not o.open:
                    continue
                if o.provider is None:
                    opener = (o.opener or dep).rsplit(".", 1)[-1]
                    return f"`{short}` opens its own session" if opener == short else \
                        f"`{short}` gets it from `{opener}`, which opens its own session"
                if o.provider != s_provider:
                    return f"`{short}` loads it through `{o.provider.rsplit('.', 1)[-1]}`, not `{s_provider.rsplit('.', 1)[-1]}`"
                if not (o.use_cache and s_cache):
                    return f"`Depends(..., use_cache=False)` gives `{short}` a session of its own"
            return None
        if self._opened_here(ctx, fn, facts, owner):
            if any(o.open for o in origins):
                return f"`{short}` loads it through another session, and `{owner}` is opened here"
        return None

    @staticmethod
    def _opened_here(ctx: FileContext, fn: cst.FunctionDef, facts, owner: str) -> bool:
        return facts is not None and owner in facts.session_names and ctx.index.is_session_name(facts, owner)

    def _caller_reason(self, ctx: FileContext, qualname: str, facts, owner: str, obj: str) -> tuple[str | None, bool]:
        """The object and the session are separate parameters: ask the call sites. A method's
        call sites here name it through its class (`Repo.save(repo, db, obj)`,
        `Repo.create(db, obj)`), which binds no `self` (a classmethod's `cls` it does)."""
        index = ctx.index
        p_sess = param_facts(facts, owner)
        if p_sess is None or index.session_class(p_sess.annotation) is None or facts is None:
            return None, False
        module = ctx.facts
        qualified = f"{module.module}.{qualname}" if module and module.module else qualname
        foreign, new = [], []
        for _mod, caller, site in index.callers(qualified):
            bound = index.binds_self(site)
            o_obj, _ = lookup.argument_for(facts, site, obj, bound=bound)
            _, s_name = lookup.argument_for(facts, site, owner, bound=bound)
            if o_obj is None:
                continue
            if o_obj.kind == "new":
                new.append(site)
            elif o_obj.kind == "loaded" and s_name and index.is_session_name(caller, s_name):
                via = next((v for v in (o_obj.via, *o_obj.alt) if v and index.is_session_name(caller, v)), None)
                if via is not None and via != s_name:
                    foreign.append((caller, site, via))
        if not foreign:
            return None, False
        caller, site, via = foreign[0]
        reason = f"`{caller.qualname}` passes an object loaded through `{via}` (line {site.line})"
        if new:
            reason += f"; other callers pass new objects, so no automatic fix (line {new[0].line})"
        return reason, not new


def _plausible_owner(facts, owner: str) -> bool:
    """`owner.add(...)` may be a session's: a parameter, a session the function opened, an
    attribute path (`self.db`, `db.session`). A local set is not."""
    return owner.split(".")[0] in {p.name for p in facts.params} or owner in facts.session_names \
        or "." in owner


def _one_name_argument(call: cst.Call) -> bool:
    """``S.add(name)``: one positional argument that is a plain name."""
    return (
        len(call.args) == 1
        and call.args[0].keyword is None
        and call.args[0].star == ""
        and isinstance(call.args[0].value, cst.Name)
    )
