"""SQF009: `with suppress(IntegrityError):` around a commit or flush is a handler that swallows
the error and goes on after the block. Each shape below is judged as its `try`/`except E: pass`
twin is; the premise (the session needs a rollback after the swallowed failure) is run on
SQLite."""

from __future__ import annotations

import asyncio
import textwrap
from contextlib import suppress

import pytest
from sqlalchemy import Integer, String, select
from sqlalchemy.exc import IntegrityError, PendingRollbackError
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from codemods.config import Config
from codemods.engine import fix_text

HEAD = '''\
import contextlib
from contextlib import suppress

from sqlalchemy import exc
from sqlalchemy import create_engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import sessionmaker

Maker = async_sessionmaker(create_async_engine("sqlite+aiosqlite://"))
SyncMaker = sessionmaker(create_engine("sqlite://"))
'''

# name -> (the function with `suppress`, reported); each is compared with its `try` twin
CASES = {
    "used after the block": ('''
        async def f(user):
            async with Maker() as session:
                session.add(user)
                with suppress(IntegrityError):
                    await session.commit()
                await session.get(type(user), 1)
        ''', True),
    "dotted, a flush": ('''
        async def f(user):
            async with Maker() as session:
                session.add(user)
                with contextlib.suppress(ValueError, exc.IntegrityError):
                    await session.flush()
                await session.commit()
        ''', True),
    "a tuple of classes": ('''
        async def f(user):
            async with Maker() as session:
                session.add(user)
                with suppress((ValueError, IntegrityError)):
                    await session.commit()
                await session.get(type(user), 1)
        ''', True),
    "nested tuples": ('''
        async def f(user):
            async with Maker() as session:
                session.add(user)
                with suppress(((IntegrityError, ValueError),)):
                    await session.commit()
                await session.get(type(user), 1)
        ''', True),
    "handed in, the caller goes on": ('''
        async def add_user(session: AsyncSession, user):
            session.add(user)
            with suppress(IntegrityError):
                await session.commit()


        async def handler(session: AsyncSession, user, other):
            await add_user(session, user)
            session.add(other)
            await session.commit()
        ''', True),
    "the next round of a loop": ('''
        async def f(users):
            async with Maker() as session:
                for user in users:
                    session.add(user)
                    with suppress(IntegrityError):
                        await session.commit()
        ''', True),
    "the scope ends after the block": ('''
        async def f(user):
            async with Maker() as session:
                session.add(user)
                with suppress(IntegrityError):
                    await session.commit()
        ''', False),
    "another error swallowed": ('''
        async def f(user):
            async with Maker() as session:
                session.add(user)
                with suppress(KeyError):
                    await session.commit()
                await session.get(type(user), 1)
        ''', False),
    "a raise follows": ('''
        async def f(user):
            async with Maker() as session:
                session.add(user)
                with suppress(IntegrityError):
                    await session.commit()
                raise RuntimeError("taken")
        ''', False),
    "in a savepoint": ('''
        async def f(user):
            async with Maker() as session:
                with suppress(IntegrityError):
                    async with session.begin_nested():
                        session.add(user)
                await session.commit()
        ''', False),
    "in a savepoint of the same statement": ('''
        def f(user):
            with SyncMaker() as session:
                with suppress(IntegrityError), session.begin_nested():
                    session.add(user)
                    session.flush()
                session.commit()
        ''', False),
    "not contextlib's": ('''
        from app.errors import suppress


        async def f(user):
            async with Maker() as session:
                session.add(user)
                with suppress(IntegrityError):
                    await session.commit()
                await session.get(type(user), 1)
        ''', False),
}


# (the other item; not a suppress; an `except` of nested tuples, which no code writes, is not read)
NO_TWIN = {"in a savepoint of the same statement", "not contextlib's", "nested tuples"}


def _twin(source: str) -> str:
    """``source`` with its `with suppress(E1, E2):` block written as `try:` ... `except (E1,
    E2): pass`."""
    lines = source.splitlines()
    at = next(i for i, line in enumerate(lines) if "suppress(" in line)
    indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
    caught = lines[at].split("suppress(", 1)[1].rsplit("):", 1)[0]
    end = next((i for i in range(at + 1, len(lines)) if lines[i].strip()
                and not lines[i].startswith(indent + " ")), len(lines))
    handler = [f"{indent}except {'(' + caught + ')' if ',' in caught else caught}:", f"{indent}    pass"]
    return "\n".join([*lines[:at], f"{indent}try:", *lines[at + 1:end], *handler, *lines[end:]]) + "\n"


def _reported(body: str) -> list:
    result = fix_text(HEAD + textwrap.dedent(body), Config(select=("SQF009",)))
    assert result.error is None
    assert result.new_text is None or "suppress(" not in body  # the twin's handler gets its rollback
    return result.findings


@pytest.mark.parametrize("name", list(CASES))
def test_suppress_is_judged_as_a_handler_that_passes(name):
    suppressed, reported = CASES[name]
    found = _reported(suppressed)
    assert bool(found) is reported, found
    if name not in NO_TWIN:
        twin = _twin(textwrap.dedent(suppressed))
        assert "suppress(" not in twin and "try:" in twin
        assert bool(_reported(twin)) is reported
    if reported:
        (finding,) = found
        assert "`suppress()` swallows" in finding.message and "PendingRollbackError" in finding.message
        line = HEAD.count("\n") + textwrap.dedent(suppressed).splitlines().index(
            next(ln for ln in textwrap.dedent(suppressed).splitlines() if "suppress(" in ln)) + 1
        assert finding.line == line  # at the `suppress(...)` item


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)


def test_the_session_needs_a_rollback_after_suppress_swallowed_a_failed_commit():
    """The premise, on SQLite: the next use of the session raises PendingRollbackError; after
    a rollback it works."""

    async def run() -> tuple[bool, int]:
        engine = create_async_engine("sqlite+aiosqlite://")
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        maker = async_sessionmaker(engine)
        async with maker() as session:
            session.add(User(name="a"))
            await session.commit()
            session.add(User(name="a"))
            with suppress(IntegrityError):
                await session.commit()
            try:
                await session.scalars(select(User))
                raised = False
            except PendingRollbackError:
                raised = True
            await session.rollback()
            count = len((await session.scalars(select(User))).all())
        await engine.dispose()
        return raised, count

    assert asyncio.run(run()) == (True, 1)
