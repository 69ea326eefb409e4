"""SQF005 and a query of every row after the commit: loading the row of an expired instance of
the session refreshes it, so an unfiltered load of the whole model, read to the end, leaves
the instance readable after the block; a query that may miss its row does not."""

from __future__ import annotations

import textwrap

import pytest
from sqlalchemy import String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.orm.exc import DetachedInstanceError

from codemods.config import Config
from codemods.engine import fix_text
from codemods.passes.examples import BOT, SYNC_DB

SHAPE = '''
from sqlalchemy import select

from app.db import Message, SessionLocal, User


def create(name: str) -> User:
    with SessionLocal() as session:
        user = User(name=name)
        session.add(user)
        session.commit()
        {load}
    return user
'''


def _codes(load: str) -> list[str]:
    source = textwrap.dedent(SHAPE).lstrip("\n").replace("{load}", load)
    result = fix_text(source, Config(root="/p", select=("SQF005",)),
                      project={"app/__init__.py": "", "app/db.py": SYNC_DB}, path="app/users.py")
    assert result.error is None, result.error
    return [f.code for f in result.findings]


@pytest.mark.parametrize("load", [
    "everyone = session.scalars(select(User)).all()",
    "everyone = session.execute(select(User)).scalars().all()",
    "everyone = session.query(User).all()",
    "statement = select(User)\n        everyone = session.scalars(statement).all()",
    "result = session.execute(select(User))\n        everyone = result.scalars().all()",  # in two statements
])
def test_every_row_of_the_model_read_after_the_commit_refreshes_it(load):
    assert _codes(load) == []


@pytest.mark.parametrize("around", [
    "{reload}\n        session.close()",  # closed after: the columns stay loaded
    "{reload}\n        session.expunge_all()",
    "session.expire_all()\n        {reload}",  # expired before: the reload loads them again
    "session.rollback()\n        {reload}",
])
def test_what_comes_before_or_after_the_reload_decides(around):
    assert _codes(around.replace("{reload}", "everyone = session.scalars(select(User)).all()")) == []


@pytest.mark.parametrize("load", [
    "others = session.scalars(select(User).where(User.name != name)).all()",  # may miss its row
    "first = session.scalars(select(User)).first()",  # one row
    "ids = session.execute(select(User.id)).all()",  # columns, no instance
    "messages = session.scalars(select(Message)).all()",  # another model
])
def test_a_query_that_may_miss_its_row_leaves_it_expired(load):
    assert _codes(load) == ["SQF005"]


@pytest.mark.parametrize("load", [
    "if name:\n            everyone = session.scalars(select(User)).all()",  # may not run
    "for _ in range(0):\n            everyone = session.scalars(select(User)).all()",
    "try:\n            everyone = session.scalars(select(User)).all()\n        except Exception:\n            pass",
    "if name:\n            stmt = select(User).where(User.name != name)\n        else:\n            stmt = select(User)\n"
    "        everyone = session.scalars(stmt).all()",  # the name bound twice
    "stmt = select(User)\n        stmt, n = select(User).where(User.name != name), 1\n"
    "        everyone = session.scalars(stmt).all()",
    "session.expunge_all()\n        everyone = session.scalars(select(User)).all()",  # detached first
    "everyone = session.scalars(select(User)).all()\n        session.rollback()",  # expired again
    "everyone = session.scalars(select(User)).all()\n        session.expire(user)",
    "result = session.scalars(select(User))\n        if name:\n            result = session.scalars(select(Message))\n"
    "        everyone = result.all()",  # the result's name bound twice
    "result = session.scalars(select(User))\n        first = result.first()",  # not read to the end
])
def test_a_reload_not_on_every_path_or_undone_leaves_it_expired(load):
    assert _codes(load) == ["SQF005"]


ASYNC_SHAPE = '''
from sqlalchemy import select

from app.bot import User, session_pool


async def create(name: str) -> User:
    async with session_pool() as session:
        user = User(name=name)
        session.add(user)
        await session.commit()
        {load}
    return user
'''


@pytest.mark.parametrize("load, codes", [
    ("everyone = (await session.scalars(select(User))).all()", []),
    ("everyone = (await session.execute(select(User))).scalars().all()", []),
    ("others = (await session.scalars(select(User).where(User.name != name))).all()", ["SQF005"]),
    ("result = await session.scalars(select(User))\n        everyone = result.all()", []),
    ("result = await session.execute(select(User))\n        everyone = result.scalars().all()", []),
    # the rows are loaded by the awaited query: a rollback before the result is read expires them again
    ("result = await session.scalars(select(User))\n        await session.rollback()\n        everyone = result.all()",
     ["SQF005"]),
])
def test_an_awaited_load_of_every_row_refreshes_it_too(load, codes):
    source = textwrap.dedent(ASYNC_SHAPE).lstrip("\n").replace("{load}", load)
    result = fix_text(source, Config(root="/p", select=("SQF005",)),
                      project={"app/__init__.py": "", "app/bot.py": BOT}, path="app/users.py")
    assert result.error is None, result.error
    assert [f.code for f in result.findings] == codes


class Base(DeclarativeBase):
    pass


class Hero(Base):
    __tablename__ = "heroes"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String, default="x")


def test_the_premise_on_sqlite():
    """What the rule relies on, run: after the whole table is read the expired instance's
    columns are loaded; after a filtered query that misses it they are not."""
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        hero = Hero(name="a")
        session.add(hero)
        session.commit()
        session.scalars(select(Hero)).all()
    assert hero.name == "a"
    with Session(engine) as session:  # in two statements: the rows are loaded when read
        again = Hero(name="c")
        session.add(again)
        session.commit()
        result = session.execute(select(Hero))
        result.scalars().all()
    assert again.name == "c"
    with Session(engine) as session:
        other = Hero(name="b")
        session.add(other)
        session.commit()
        session.scalars(select(Hero).where(Hero.name == "a")).all()
    with pytest.raises(DetachedInstanceError):
        _ = other.name
