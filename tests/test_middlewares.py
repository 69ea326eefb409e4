"""Middlewares that hand their handlers a session through the handler's data (aiogram's
shape): what the index reads of them, and SQF009's reading of a handler they serve."""

from __future__ import annotations

import textwrap

import pytest

from codemods.config import Config
from codemods.engine import fix_text
from codemods.index import ProjectIndex, extract

POOL = '''
from aiogram import BaseMiddleware
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

pool = async_sessionmaker(create_async_engine("sqlite+aiosqlite://"))


class DbSession(BaseMiddleware):
    async def __call__(self, handler, event, data):
{body}
'''

HANDLER = '''
from aiogram import Router
from aiogram.types import Message
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

router = Router()


@router.message()
async def save_note(message: Message, session: AsyncSession) -> None:
    try:
        await session.execute(text("INSERT INTO notes(body) VALUES (:b)"), {"b": message.text})
        await session.commit()
    except Exception:
        await message.answer("could not save")
'''


def _middleware(body: str) -> str:
    return textwrap.dedent(POOL).lstrip("\n").replace("{body}", textwrap.indent(textwrap.dedent(body).strip("\n"), " " * 8))


CLOSES = '''
async with pool() as session:
    data["session"] = session
    return await handler(event, data)
'''
COMMITS = '''
async with pool() as session:
    data["session"] = session
    result = await handler(event, data)
    await session.commit()
    return result
'''


@pytest.mark.parametrize("body, after", [
    (CLOSES, []),
    (COMMITS, ["commit"]),
    ('async with pool() as session:\n    data["session"] = session\n    try:\n        return await handler(event, data)\n'
     '    except Exception:\n        await session.rollback()\n        raise', []),  # ending it is no use
    ('async with pool() as session:\n    data["session"] = session\n    result = await handler(event, data)\n'
     '    log_state(session)\n    return result', ["use"]),
    ('session = pool()\ndata["session"] = session\ntry:\n    return await handler(event, data)\n'
     'finally:\n    await session.close()', ["unknown"]),  # not a with block: not read, it may go on
])
def test_what_a_middleware_does_with_the_session_after_the_handler(body, after):
    facts = extract("app/mw.py", _middleware(body), "app.mw")
    (injection,) = facts.functions["DbSession.__call__"].injects
    assert (injection.key, injection.name, injection.after) == ("session", "session", after)
    index = ProjectIndex([facts])
    assert index.middleware_sessions("session") == [("app.mw.DbSession.__call__", after)]
    assert index.middleware_sessions("db") == []


def test_a_begin_block_commits_after_the_handler():
    body = CLOSES.replace("pool() as", "pool.begin() as")
    index = ProjectIndex([extract("app/mw.py", _middleware(body), "app.mw")])
    assert index.middleware_sessions("session") == [("app.mw.DbSession.__call__", ["commit"])]


def _handler_findings(middleware: str) -> list[str]:
    files = {"app/__init__.py": "", "app/mw.py": _middleware(middleware)}
    result = fix_text(textwrap.dedent(HANDLER).lstrip("\n"), Config(root="/p", select=("SQF009",)),
                      project=files, path="app/notes.py")
    assert result.error is None, result.error
    return [f.message for f in result.findings]


def test_a_handler_whose_middleware_closes_its_session_is_left_alone():
    assert _handler_findings(CLOSES) == []


def test_a_handler_whose_middleware_commits_after_it_is_reported_naming_it():
    (message,) = _handler_findings(COMMITS)
    assert "`DbSession`, the middleware that hands it in, goes on using it" in message


def test_without_a_middleware_handing_it_the_caller_is_unknown():
    (message,) = _handler_findings(CLOSES.replace('data["session"]', 'data["db"]'))
    assert "the code that handed it in goes on using it" in message


HELPER = '''
from aiogram import Router
from aiogram.types import Message
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

router = Router()


async def save(session: AsyncSession, body: str) -> None:
    try:
        await session.execute(text("INSERT INTO notes(body) VALUES (:b)"), {"b": body})
        await session.commit()
    except Exception:
        pass


@router.message()
async def save_note(message: Message, session: AsyncSession) -> None:
    await save(session, message.text)
    await message.answer("saved")
'''


@pytest.mark.parametrize("middleware, expected", [
    (CLOSES, []),
    (COMMITS, ["`save_note()` (line 19) goes on using it"]),  # the helper's caller is named
])
def test_a_helper_a_handler_calls_has_the_handler_for_its_caller(middleware, expected):
    files = {"app/__init__.py": "", "app/mw.py": _middleware(middleware)}
    result = fix_text(textwrap.dedent(HELPER).lstrip("\n"), Config(root="/p", select=("SQF009",)),
                      project=files, path="app/notes.py")
    assert result.error is None, result.error
    assert [next((e for e in expected if e in f.message), f.message) for f in result.findings] == expected


@pytest.mark.parametrize("body, after", [
    ('async with pool() as session, session.begin():\n    data["session"] = session\n'
     '    return await handler(event, data)', ["commit"]),  # the transaction commits on exit
    ('async with pool() as session:\n    repo = Repo(session)\n    data["session"] = session\n'
     '    result = await handler(event, data)\n    await repo.commit()\n    return result', ["use"]),  # through a wrapper
])
def test_a_commit_the_middleware_makes_another_way_counts(body, after):
    facts = extract("app/mw.py", _middleware(body), "app.mw")
    assert facts.functions["DbSession.__call__"].injects[0].after == after


@pytest.mark.parametrize("wiring, reported", [
    ("router.message.register(save_note)\n", False),  # a handler registered without a decorator
    ("scheduler.add_job(save_note, kwargs={'session': None})\n", True),  # not a handler: its own caller
])
def test_only_a_handler_a_router_registers_has_the_middleware_for_caller(wiring, reported):
    handler = textwrap.dedent(HANDLER).lstrip("\n").replace("@router.message()\n", "") + "\n\n" + wiring
    files = {"app/__init__.py": "", "app/mw.py": _middleware(CLOSES)}
    result = fix_text(handler, Config(root="/p", select=("SQF009",)), project=files, path="app/notes.py")
    assert result.error is None, result.error
    assert bool(result.findings) is reported
