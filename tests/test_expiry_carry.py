"""SQF010 across loop rounds, collections and service objects: an element of a collection
loaded before a loop, read early in a round after a later call of the round before expired
the session; instances taken out of a dict built from loaded ones; a method of an object built
with the session that commits it."""

from __future__ import annotations

import pytest

from codemods.config import Config
from codemods.engine import fix_text
from codemods.index import ProjectIndex, extract
from codemods.passes.examples import BOT

SERVICES = '''
from sqlalchemy.ext.asyncio import AsyncSession


class Record:
    async def save(self, session: AsyncSession) -> None:
        session.add(self)
        await session.commit()


class Keeper:
    def __init__(self, session):
        self.session = session

    async def keep(self, item) -> None:
        self.session.add(item)
        await self.session.commit()

    async def look(self, item) -> str:
        return "nothing changes"


class RecordKeeper(Keeper):
    async def keep_record(self, record: Record) -> None:
        await record.save(self.session)


async def store(db: AsyncSession, item) -> bool:
    try:
        await db.commit()
    except Exception:
        await db.rollback()
        return False
    return True


async def process(db: AsyncSession, item) -> str:
    ok = await store(db, item)
    return "ok" if ok else "failed"
'''


def findings(source: str) -> list[tuple[int, str]]:
    result = fix_text(source, Config(root="/p", select=("SQF010",)),
                      project={"bot/__init__.py": "", "bot/services.py": BOT, "bot/keepers.py": SERVICES},
                      path="bot/jobs.py")
    return [(f.line, f.message) for f in result.findings]


def test_the_index_knows_what_a_built_objects_method_does_to_its_session():
    idx = ProjectIndex([extract("bot/keepers.py", SERVICES, "bot.keepers")])
    assert idx.constructed_session_ends("bot.keepers.Keeper", 0, "keep") == {"commit"}
    assert idx.constructed_session_ends("bot.keepers.Keeper", 0, "look") == frozenset()
    assert idx.constructed_session_ends("bot.keepers.Keeper", "session", "keep") == {"commit"}
    assert idx.constructed_session_ends("bot.keepers.RecordKeeper", 0, "keep_record") == {"commit"}  # inherited init
    assert idx.constructed_session_ends("bot.keepers.Keeper", 1, "keep") == frozenset()
    assert idx.builds_ender("bot.keepers.Keeper", 0) and not idx.builds_ender("bot.keepers.Record", 0)
    # a rollback further down a call counts only when asked for
    assert idx.session_ends("bot.keepers.process", 0) == {"commit"}
    assert idx.session_ends("bot.keepers.process", 0, deep=True) == {"commit", "rollback"}


LOOP = '''
from sqlalchemy import select
from bot.keepers import Keeper
from bot.services import User, {pool}


async def mark_all() -> int:
    async with {pool}() as session:
        users = (await session.scalars(select(User))).all()
        done = 0
        for user in users:
            {top}if user.name == "old":
                user.visits += 1
                await Keeper(session).keep(user)
                done += 1
        return done
'''


def test_a_service_method_that_commits_expires_the_next_rounds_element():
    found = findings(LOOP.format(pool="session_pool", top=""))
    assert len(found) == 1
    line, message = found[0]
    assert line == 12 and "`user.name` read at the start of a round of the loop" in message
    assert "`Keeper(session).keep(...)` (line 14), which may commit `session`" in message


@pytest.mark.parametrize("pool, top", [
    ("quiet_pool", ""),  # the factory does not expire on commit
    ("session_pool", "await session.refresh(user)\n            "),  # refreshed at the top of the round
    ("session_pool", "user = await session.get(User, user.id)\n            "),  # loaded again
])
def test_the_loop_is_left_alone_when_the_element_is_fresh(pool, top):
    assert findings(LOOP.format(pool=pool, top=top)) == []


def test_a_method_that_does_not_end_the_session_expires_nothing():
    assert findings(LOOP.format(pool="session_pool", top="").replace(".keep(user)", ".look(user)")) == []


LOCAL = '''
from bot.keepers import Keeper
from bot.services import User, session_pool


async def keep_one(user_id: int) -> str:
    async with session_pool() as session:
        user = await session.get(User, user_id)
        other = await session.get(User, user_id + 1)
        keeper = Keeper(session)
        await keeper.keep(user)
        return f"{user.name} {other.name}"
'''


def test_a_kept_service_expires_the_other_instances_but_not_the_one_it_was_given():
    found = findings(LOCAL)
    assert len(found) == 1 and "`other.name` read after `keeper.keep(...)`" in found[0][1]
    assert "`user." not in found[0][1]  # the method may have refreshed (or deleted) what it was given


DEEP = '''
from sqlalchemy import select
from bot.keepers import process
from bot.services import User, quiet_pool


async def process_all() -> list[str]:
    async with quiet_pool() as session:
        users = (await session.scalars(select(User))).all()
        out = []
        for user in users:
            out.append(user.name)
            out.append(await process(session, user))
        return out
'''


def test_a_rollback_further_down_a_call_expires_the_next_rounds_element():
    found = findings(DEEP)
    assert [line for line, _ in found] == [12]
    assert "`process(...)` (line 13), which may roll back `session`" in found[0][1]


def test_the_same_values_taken_before_the_loop_are_left_alone():
    fixed = DEEP.replace("        for user in users:\n            out.append(user.name)\n",
                         "        names = [user.name for user in users]\n"
                         "        for user, name in zip(users, names):\n            out.append(name)\n")
    assert findings(fixed) == []


DICT = '''
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from bot.services import User, quiet_pool


async def sync(names: dict[str, int]) -> list[int]:
    async with quiet_pool() as session:
        result = await session.execute(select(User))
        users = result.scalars().all()
        by_name = {user.name: user for user in users}
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
        out = []
        for name in names:
            user = by_name.get(name)
            if user is not None:
                out.append(user.visits)
        return out
'''


def test_an_instance_taken_out_of_a_dict_of_loaded_ones_is_expired_by_a_rollback():
    found = findings(DICT)
    assert [line for line, _ in found] == [20]
    assert "`await session.refresh(user)` before the read" in found[0][1]


def test_a_dict_of_loaded_instances_is_left_alone_without_the_rollback():
    assert findings(DICT.replace("            await session.rollback()\n", "            pass\n")) == []


def test_sync_code_is_left_alone():
    sync = (DICT.replace("async def", "def").replace("async with", "with").replace("await ", "")
            .replace("quiet_pool", "session_pool"))
    assert findings(sync) == []


ACTIVE = '''
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession


class ActiveRecord:
    @classmethod
    async def all_where(cls, session: AsyncSession, **fields):
        result = await session.exec(select(cls).filter_by(**fields))
        return result.all()

    @classmethod
    async def listed(cls, session: AsyncSession) -> list:
        result = await session.execute(select(cls))
        return list(result.scalars().all())

    async def save(self, session: AsyncSession) -> None:
        session.add(self)
        await session.commit()
'''

ITEMS = '''
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.active import ActiveRecord


class Base(DeclarativeBase):
    pass


class Item(Base, ActiveRecord):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    state: Mapped[str]
'''


def test_a_classmethod_loading_select_cls_returns_instances_of_the_class_it_is_called_on():
    idx = ProjectIndex([extract("bot/active.py", ACTIVE, "bot.active"), extract("bot/items.py", ITEMS, "bot.items")])
    for method in ("all_where", "listed"):  # SQLModel's exec(); a bare `-> list` the body explains
        returned = idx.returned(f"bot.items.Item.{method}")
        assert returned is not None and returned.model.name == "Item" and returned.shape.value == "list"


CONTROLLER = '''
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.items import Item
from bot.keepers import Keeper
from bot.services import engine

pool = async_sessionmaker(engine{quiet})


class Controller:
    async def reconcile(self, state: str) -> None:
        async with pool() as session:
            items = await Item.all_where(session, state=state)
            await self.mark(session, {items}, "done")

    async def mark(self, session, items, state: str) -> list[str]:
        names = []
        for item in items:
            if item.name:
                names.append(item.name)
                item.state = state
                await Keeper(session).keep(item)
        return names
'''


def controller_findings(quiet: str = "", items: str = "items") -> list[tuple[int, str]]:
    result = fix_text(CONTROLLER.format(quiet=quiet, items=items), Config(root="/p", select=("SQF010",)),
                      project={"bot/__init__.py": "", "bot/services.py": BOT, "bot/keepers.py": SERVICES,
                               "bot/active.py": ACTIVE, "bot/items.py": ITEMS},
                      path="bot/controller.py")
    return [(f.line, f.message) for f in result.findings]


def test_parameters_every_caller_fills_with_its_session_and_a_list_it_loaded_through_it():
    found = controller_findings()
    assert [line for line, _ in found] == [20]
    assert "`item.name` read at the start of a round of the loop" in found[0][1]


@pytest.mark.parametrize("quiet, items", [
    (", expire_on_commit=False", "items"),  # the callers' session does not expire on commit
    ("", "list(state)"),  # not a list the session loaded
])
def test_parameters_the_callers_do_not_fill_alike_are_left_alone(quiet, items):
    assert controller_findings(quiet, items) == []


def test_a_class_chain_through_a_module_that_names_no_database_library(tmp_path, monkeypatch):
    """`class Item(Base, BaseMixin)`, where the package `app.mixins` defines `BaseMixin` on
    top of the indexed `Record` without naming a database library: the byte scan leaves it out,
    yet the class chain reaches `Record.all_where`, so `items` is a list of `Item`."""
    from click.testing import CliRunner

    from codemods.cli import cli

    files = {
        "pyproject.toml": "[project]\nname = 'app'\n",
        "app/__init__.py": "",
        "app/mixins/__init__.py": "from .record import ActiveRecord\n\n\nclass BaseMixin(ActiveRecord):\n    pass\n",
        "app/mixins/record.py": ACTIVE,
        "app/models.py": ITEMS.replace("from bot.active import ActiveRecord", "from app.mixins import BaseMixin")
                              .replace("(Base, ActiveRecord)", "(Base, BaseMixin)"),
        "app/jobs.py": '''
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.models import Item

pool = async_sessionmaker(create_async_engine("sqlite+aiosqlite://"))


async def rename(state: str) -> None:
    async with pool() as session:
        items = await Item.all_where(session, state=state)
        for item in items:
            item.name = item.state.upper()
            await session.commit()
''',
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["check", "--no-cache", "--select", "SQF010", "app/jobs.py"])
    assert "app/jobs.py:13" in result.output and "`item.state` read at the start of a round" in result.output


HANDED_OUT = '''
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

engine = create_async_engine("sqlite+aiosqlite://")


def open_session() -> AsyncSession:
    return AsyncSession(engine{quiet})
'''

FIXTURE = '''
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import engine


@pytest.fixture
async def session():
    async with AsyncSession(engine) as session:
        yield session
'''

TYPED = '''
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import User


async def touch(session: AsyncSession, user_id: int) -> str:
    user = await session.get(User, user_id)
    user.visits += 1
    await session.commit()
    return user.name
'''


@pytest.mark.parametrize("quiet, expected", [(", expire_on_commit=False", 0), ("", 1)])
def test_a_session_parameter_expires_as_the_sessions_the_project_hands_out(quiet, expected):
    """Every async session the project's own functions open and hand out is built with
    `expire_on_commit=False`: a session parameter is one of them (a test fixture's aside)."""
    result = fix_text(TYPED, Config(root="/p", select=("SQF010",)),
                      project={"bot/__init__.py": "", "bot/services.py": BOT.replace("session_pool = async_sessionmaker(engine)\n", ""),
                               "app/__init__.py": "", "app/db.py": HANDED_OUT.format(quiet=quiet),
                               "tests/__init__.py": "", "tests/conftest.py": FIXTURE},
                      path="bot/jobs.py")
    assert len(result.findings) == expected
