"""Project functions that commit or roll back the session they are given: the index's
``session_ends`` (followed through the functions a session is handed on to, and through a
class's own methods for ``self.<attr>`` sessions), and what SQF010 makes of a call to one."""

from __future__ import annotations

from codemods.config import Config
from codemods.engine import fix_text
from codemods.index import ProjectIndex, extract
from codemods.passes.examples import BOT


def index_of(files: dict[str, str]) -> ProjectIndex:
    return ProjectIndex([extract(f"{name.replace('.', '/')}.py", src, name) for name, src in files.items()])


HELPERS = '''
from sqlalchemy.ext.asyncio import AsyncSession


async def save(db: AsyncSession) -> None:
    await db.commit()


async def undo(note: str, *, db: AsyncSession) -> None:
    await db.rollback()


async def save_later(count: int, db) -> None:
    await save(db)


async def undo_later(db: AsyncSession) -> None:
    await undo("x", db=db)


async def create(db: AsyncSession) -> None:
    try:
        await db.commit()
    except Exception:
        await db.rollback()
        raise


async def ping(db: AsyncSession) -> None:
    await db.flush()


async def loop_a(db: AsyncSession) -> None:
    await loop_b(db)


async def loop_b(db: AsyncSession) -> None:
    await loop_a(db)


class Repo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _finish(self) -> None:
        await self.session.commit()

    async def store(self) -> None:
        await self._finish()

    async def undo_with(self, db: AsyncSession) -> None:
        await undo("x", db=db)

    async def save_with(self, db: AsyncSession) -> None:
        await db.commit()
'''


def test_session_ends_directly_through_calls_and_own_methods():
    idx = index_of({"app.helpers": HELPERS})
    ends = idx.session_ends
    assert ends("app.helpers.save", 0) == {"commit"}
    assert ends("app.helpers.undo", "db") == {"rollback"}
    assert ends("app.helpers.undo", 0) == frozenset()  # the note, not the session
    assert ends("app.helpers.save_later", 1) == {"commit"}  # an untyped parameter handed on
    assert ends("app.helpers.save_later", 0) == frozenset()
    assert ends("app.helpers.ping", 0) == frozenset()  # a flush ends nothing
    # a rollback followed by `raise`: the caller never goes on after it
    assert ends("app.helpers.create", 0) == {"commit"}
    assert ends("app.helpers.loop_a", 0) == frozenset()  # a cycle, and no end in it
    assert ends("self.store", "self.session", "app.helpers.Repo") == {"commit"}
    # called on an instance (`repo.save_with(db)`), `self` is not a position; named by its
    # class (`Repo.save_with(repo, db)`, the default for a qualified name) it is the first
    assert ends("app.helpers.Repo.save_with", 0, binds_self=True) == {"commit"}
    assert ends("app.helpers.Repo.save_with", 1) == {"commit"}
    assert ends("app.helpers.Repo.save_with", 0) == frozenset()
    assert ends("app.helpers.Repo.undo_with", 0) == frozenset()  # a rollback further down is the callee's
    assert ends("app.helpers.undo_later", 0) == frozenset()


# a helper that commits the session it is given, and rolls it back when the commit fails
APPLY = '''
async def _apply(session: AsyncSession, name: str) -> None:
    try:
        session.add(User(name=name))
        await session.commit()
    except IntegrityError:
        await session.rollback()
'''

ENDPOINT = '''
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from bot.services import User, quiet_pool
''' + APPLY + '''

async def apply_all(user_id: int, names: list[str]) -> str:
    async with quiet_pool() as session:
        user = await session.get(User, user_id)
        if user is None:
            return "none"
        for name in names:
            await _apply(session, name)
        return user.name
'''


def findings(source: str, select: tuple[str, ...] = ("SQF",)):
    result = fix_text(source, Config(root="/p", select=select, unsafe_fixes=True),
                      project={"bot/__init__.py": "", "bot/services.py": BOT}, path="bot/jobs.py")
    return [(f.code, f.line, f.message) for f in result.findings]


def test_a_call_that_may_roll_back_expires_even_a_quiet_session():
    found = [f for f in findings(ENDPOINT) if f[0] == "SQF010"]
    assert len(found) == 1
    code, line, message = found[0]
    assert line == ENDPOINT.splitlines().index("        return user.name") + 1
    assert "`_apply(...)`" in message and "may roll back `session`" in message


def test_the_same_helper_that_only_flushes_is_silent():
    quiet = ENDPOINT.replace("        await session.rollback()\n", "        pass\n").replace(
        "await session.commit()", "await session.flush()")
    assert not [f for f in findings(quiet) if f[0] == "SQF010"]


HANDLER = '''
from sqlalchemy.exc import IntegrityError
from bot.services import User, quiet_pool


async def rename(user_id: int, name: str) -> str:
    user = None
    async with quiet_pool() as session:
        try:
            user = await session.get(User, user_id)
            if user is None:
                return "none"
            user.name = name
            await session.commit()
        except IntegrityError:
            await session.rollback()
            return f"{user.id} kept"
    return "ok"
'''


def test_a_read_after_the_rollback_is_the_finding_not_the_missing_expunge():
    everything = findings(HANDLER)
    assert [f[0] for f in everything] == ["SQF010"]
    assert "`user.id` read after `session.rollback()`" in everything[0][2]
    alone = findings(HANDLER, ("SQF004",))
    assert [f[0] for f in alone] == ["SQF004"]  # still reported when it is the only rule


def test_the_arguments_of_the_call_are_read_before_it_ends_the_session():
    source = ENDPOINT.replace("            await _apply(session, name)\n        return user.name\n",
                              "            await _apply(session, user.name)\n        return name\n")
    assert "_apply(session, user.name)" in source
    assert not [f for f in findings(source) if f[0] == "SQF010"]


PROVIDERS = '''
from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from bot.services import User

engine = create_async_engine("sqlite+aiosqlite://")
maker = async_sessionmaker(engine, expire_on_commit=False)


async def get_db():
    async with maker() as session:
        yield session


def require(permission: str):
    async def dependency(db: AsyncSession = Depends(get_db)) -> User:
        return await db.get(User, 1)
    return dependency


def require_own(permission: str):
    async def dependency() -> User:
        async with maker() as own:
            return await own.get(User, 1)
    return dependency
'''

ADMIN = '''
from fastapi import Depends
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from bot.deps import get_db, require
from bot.services import User
''' + APPLY + '''

async def apply_all(names: list[str], admin: User = Depends(require("bulk")), db: AsyncSession = Depends(get_db)):
    for name in names:
        await _apply(db, name)
    return {"by": admin.id}
'''


def admin_findings(source: str):
    result = fix_text(source, Config(root="/p", select=("SQF010",)),
                      project={"bot/__init__.py": "", "bot/services.py": BOT, "bot/deps.py": PROVIDERS},
                      path="bot/admin.py")
    return [(f.line, f.message) for f in result.findings]


def test_a_dependency_factory_value_shares_the_request_session():
    idx = index_of({"bot.deps": PROVIDERS})
    assert idx.made_dependency("bot.deps.require()") == "bot.deps.require.dependency"
    assert [o.provider for o in idx.value_sessions("bot.deps.require()")] == ["bot.deps.get_db"]
    found = admin_findings(ADMIN)
    assert [line for line, _ in found] == [ADMIN.splitlines().index('    return {"by": admin.id}') + 1]
    assert "may roll back `db`" in found[0][1]


def test_a_dependency_value_from_its_own_session_is_not_the_endpoints():
    assert admin_findings(ADMIN.replace("require", "require_own")) == []
