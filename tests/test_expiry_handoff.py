"""SQF010 across a call: a caller that expired an instance (a rollback, a commit of a session
that expires on commit) and hands it in with its session makes the callee's first column read
of it an implicit reload; reported in the callee, naming the caller."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from codemods.cli import cli
from codemods.config import Config
from codemods.engine import fix_text
from codemods.passes.examples import BOT

CALLEE = '''
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from bot.services import User, quiet_pool, session_pool


async def greet(db: AsyncSession, user: User) -> str:
    if user.name == "admin":
        return "hello boss"
    return f"hello {user.id}"
'''


def findings(source: str) -> list[tuple[int, str]]:
    """The findings in the callee ``greet`` (the caller may get its own, for the read one call away)."""
    result = fix_text(textwrap.dedent(CALLEE) + textwrap.dedent(source), Config(root="/p", select=("SQF010",)),
                      project={"bot/__init__.py": "", "bot/services.py": BOT}, path="bot/jobs.py")
    return [(f.line, f.message) for f in result.findings if f.line < 12]


CALLER = '''

async def start(user_id: int, name: str) -> str:
    async with {pool}() as db:
        user = await db.get(User, user_id)
        {before}
        try:
            db.add(User(name=name))
            await db.commit()
        except Exception:
            await db.rollback()
        {after}
        return await greet(db, user)
'''


def test_a_caller_that_rolled_back_makes_the_callees_first_read_expired():
    found = findings(CALLER.format(pool="quiet_pool", before="", after=""))
    assert [line for line, _ in found] == [8]
    assert "`user.name` read here, but `start()` (bot/jobs.py:" in found[0][1]
    assert "calls this with `user` after `db.rollback()` expired it" in found[0][1]


def test_a_commit_of_a_session_that_expires_on_commit_counts_too():
    found = findings(CALLER.format(pool="session_pool", before="", after=""))
    assert [line for line, _ in found] == [8]


@pytest.mark.parametrize("after", ["await db.refresh(user)", "user = await db.get(User, user_id)",
                                   "await db.execute(select(User).where(User.id == user_id))"])
def test_a_caller_that_refreshes_or_reloads_before_the_call_is_left_alone(after):
    source = CALLER.format(pool="quiet_pool", before="", after=after)
    assert findings(source) == []


def test_a_rollback_that_cannot_precede_the_call_is_left_alone():
    source = '''

async def start(user_id: int, name: str) -> str:
    async with quiet_pool() as db:
        user = await db.get(User, user_id)
        try:
            db.add(User(name=name))
            await db.commit()
        except Exception:
            await db.rollback()
            return "failed"
        return await greet(db, user)
'''
    assert findings(source) == []


def test_an_object_new_in_the_rolled_back_transaction_is_left_alone():
    source = '''


async def start(name: str) -> str:
    async with quiet_pool() as db:
        user = User(name=name)
        db.add(user)
        try:
            await db.flush()
        except Exception:
            await db.rollback()
        return await greet(db, user)
'''
    assert findings(source) == []


def test_a_commit_under_expire_on_commit_false_is_left_alone():
    source = '''


async def start(user_id: int) -> str:
    async with quiet_pool() as db:
        user = await db.get(User, user_id)
        user.visits += 1
        await db.commit()
        return await greet(db, user)
'''
    assert findings(source) == []


def test_another_session_handed_in_is_not_reported_in_the_callee():
    # the read still reloads through the expired instance's own session: the caller's finding
    # (a read one call away) reports it at the call
    source = '''


async def start(user_id: int) -> str:
    async with session_pool() as db:
        user = await db.get(User, user_id)
        await db.rollback()
        async with session_pool() as other:
            return await greet(other, user)
'''
    assert findings(source) == []


def test_sync_code_is_left_alone():
    source = '''
from sqlalchemy.orm import Session


def plain(db: Session, user: User) -> str:
    return user.name


def start(db: Session, user_id: int) -> str:
    user = db.get(User, user_id)
    db.rollback()
    return plain(db, user)
'''
    assert findings(source) == []


def test_the_caller_in_another_file_is_named_with_its_path_and_line(tmp_path):
    (tmp_path / "bot").mkdir()
    (tmp_path / "bot" / "__init__.py").write_text("")
    (tmp_path / "bot" / "services.py").write_text(BOT)
    (tmp_path / "bot" / "greeting.py").write_text(textwrap.dedent(CALLEE))
    (tmp_path / "bot" / "handlers.py").write_text(textwrap.dedent('''
        from bot.greeting import greet
        from bot.services import User, quiet_pool


        async def start(user_id: int) -> str:
            async with quiet_pool() as db:
                user = await db.get(User, user_id)
                try:
                    await db.commit()
                except Exception:
                    await db.rollback()
                return await greet(db, user)
        '''))
    result = CliRunner().invoke(cli, ["check", "--no-cache", "--no-progress", "--select", "SQF010", str(tmp_path)])
    assert "greeting.py:8:" in result.output, result.output
    assert "`start()` (bot/handlers.py:13) calls this with `user` after `db.rollback()` expired it" in result.output


CHAIN = '''
from sqlalchemy.ext.asyncio import AsyncSession
from bot.services import User, quiet_pool


class Greeter:
    async def inner(self, db: AsyncSession, user: User) -> str:
        return user.name


async def middle(db: AsyncSession, user: User, {flag}) -> str:
    {read}
    greeter = Greeter()
    return await greeter.inner(db, user)


async def start(user_id: int) -> str:
    async with quiet_pool() as db:
        user = await db.get(User, user_id)
        try:
            await db.commit()
        except Exception:
            await db.rollback()
        return await middle(db, user, True)
'''


def chain(flag: str, read: str) -> list[tuple[int, str]]:
    result = fix_text(CHAIN.format(flag=flag, read=read), Config(root="/p", select=("SQF010",)),
                      project={"bot/__init__.py": "", "bot/services.py": BOT}, path="bot/jobs.py")
    return [(f.line, f.message) for f in result.findings if f.line < 17]


def test_an_instance_handed_on_expired_is_reported_where_it_is_first_read():
    found = chain("loud: bool", "print(user.visits)")
    assert [line for line, _ in found] == [12]


def test_handed_on_through_a_method_of_a_built_object_it_is_read_in_the_method():
    found = chain("loud: bool", "pass")
    assert [line for line, _ in found] == [8]
    assert "`middle()` (bot/jobs.py:14) calls this with `user` (handed on from `start()` (bot/jobs.py:24))" \
        in found[0][1]


def test_a_read_that_may_be_skipped_does_not_stop_the_hand_off():
    found = chain("loud: bool", "if loud and user.visits:\n        print('hi')")
    assert [line for line, _ in found] == [8, 12]


def test_a_read_in_a_try_that_catches_the_reload_error_is_left_alone():
    source = CALLER.format(pool="quiet_pool", before="", after="")
    guarded = textwrap.dedent(CALLEE).replace('''    if user.name == "admin":
        return "hello boss"
    return f"hello {user.id}"''', '''    try:
        name = user.name
    except Exception:
        name = user.__dict__.get("name")
    return f"hello {name}"''')
    result = fix_text(guarded + textwrap.dedent(source), Config(root="/p", select=("SQF010",)),
                      project={"bot/__init__.py": "", "bot/services.py": BOT}, path="bot/jobs.py")
    assert [f.line for f in result.findings if "read here" in f.message] == []


def test_a_callers_file_is_parsed_once_per_worker_and_again_once_it_changes(tmp_path):
    """Callers' files are kept for the worker's run (every callee's file reuses the parse and
    the walks cached on it), keyed by the file's size and time and by the index's state."""
    import libcst as cst

    from codemods.engine import _context
    from codemods.index import ProjectIndex
    from codemods.passes.expiry_handoff import context_of

    caller = tmp_path / "caller.py"
    caller.write_text("x = 1\n")
    index = ProjectIndex()
    ctx = _context(str(tmp_path / "callee.py"), cst.parse_module("y = 2\n"), index, Config(root=str(tmp_path)),
                   "callee", 0)
    first = context_of(ctx, str(caller), "caller")
    assert first is not None and context_of(ctx, str(caller), "caller") is first
    caller.write_text("x = 22\n")
    changed = context_of(ctx, str(caller), "caller")
    assert changed is not first and changed is not None and "22" in changed.module.code
    index.add(_facts_of(str(caller)))
    assert context_of(ctx, str(caller), "caller") is not changed  # the index moved on
    assert context_of(ctx, str(tmp_path / "gone.py"), "gone") is None
    kept = context_of(ctx, str(caller), "caller")
    another = _context(str(tmp_path / "callee.py"), cst.parse_module("y = 2\n"), ProjectIndex(),
                       Config(root=str(tmp_path)), "callee", 0)
    assert context_of(another, str(caller), "caller") is not kept  # another index: nothing kept serves it


def _facts_of(path: str):
    from codemods.index import extract
    with open(path, encoding="utf-8") as fh:
        return extract(path, fh.read(), "caller")



@pytest.mark.parametrize("project", ["bot", "bot_unannotated", "fastapi_own", "fastapi_shared", "scope_factory"])
def test_what_is_reported_in_a_file_does_not_depend_on_the_files_checked_before_it(project):
    """The worker keeps callers' parses and walks across the files it checks: each file's
    findings are the same checked alone as checked after every other file of its project."""
    root = Path(__file__).parent / "fixtures" / "projects" / project
    files = sorted(str(p) for p in root.rglob("*.py"))

    def findings(*paths: str) -> set[str]:
        res = CliRunner().invoke(cli, ["check", "--no-cache", "--no-progress", "-j", "1", "--format", "json",
                                       *paths], catch_exceptions=False)
        return {f"{f['path']}:{f['line']}:{f['code']}:{f['message']}" for f in json.loads(res.output)["findings"]}

    together = findings(*files)
    alone = set().union(*(findings(f) for f in files))
    assert together == alone
    assert together or project in ("bot", "fastapi_shared")  # these two projects' code is correct


_THROUGH_CLASS = '''
from sqlalchemy.ext.asyncio import AsyncSession
from bot.services import User, quiet_pool


class Greeter:
    async def greet(self, db: AsyncSession, user: User) -> str:
        if user.name == "admin":
            return "hello boss"
        return "hello"

    async def close_day(self, db: AsyncSession) -> None:
        await db.rollback()


async def start(user_id: int, name: str) -> str:
    greeter = Greeter()
    async with quiet_pool() as db:
        user = await db.get(User, user_id)
        {body}
'''


def _through_class(body: str) -> list[tuple[int, str]]:
    source = textwrap.dedent(_THROUGH_CLASS).lstrip("\n").format(body=body)
    result = fix_text(source, Config(root="/p", select=("SQF010",)),
                      project={"bot/__init__.py": "", "bot/services.py": BOT}, path="bot/jobs.py")
    return [(f.line, f.message) for f in result.findings]


@pytest.mark.parametrize("call", ["Greeter.greet(greeter, db, user)", "greeter.greet(db, user)"])
def test_a_method_called_through_its_class_or_an_instance_gets_its_arguments_mapped_alike(call):
    # through the class the instance fills `self`: `db` and `user` are the next two arguments
    found = _through_class(f"await db.rollback()\n        return await {call}")
    callee = [message for line, message in found if line == 7]
    assert len(callee) == 1 and "`start()` (bot/jobs.py:20) calls this with `user` after `db.rollback()`" in callee[0]


def test_a_method_called_through_its_class_that_rolls_back_expires_the_callers_instances():
    found = _through_class("await Greeter.close_day(greeter, db)\n        return user.name")
    assert [line for line, _ in found] == [20]
    assert "`Greeter.close_day(...)`" in found[0][1]


def test_a_method_called_through_its_class_with_another_session_is_left_alone():
    body = ("async with quiet_pool() as other:\n            await Greeter.close_day(greeter, other)\n"
            "        return user.name")
    assert _through_class(body) == []


_MODELS = '''
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Session = async_sessionmaker(create_async_engine("sqlite+aiosqlite://"))


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "item"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
'''

_PROCESS = '''
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Item


async def process(session: AsyncSession, item: Item) -> str:
    return item.name
'''


def _read_in_process(tmp_path, monkeypatch, files: dict[str, str]) -> list[str]:
    from codemods import engine
    from codemods.config import Config

    (tmp_path / "pyproject.toml").write_text('[project]\nname = "app"\n')
    (tmp_path / "app").mkdir()
    for name, text in {"__init__.py": "", "models.py": _MODELS, "process.py": _PROCESS, **files}.items():
        (tmp_path / "app" / name).write_text(textwrap.dedent(text).lstrip("\n"))
    monkeypatch.chdir(tmp_path)
    paths = sorted(f"app/{name}" for name in os.listdir(tmp_path / "app"))
    index = engine.build_index(paths, Config(), jobs=1)
    return [f.message for r in engine.run_files(["app/process.py"], index, Config(), jobs=1) for f in r.findings]


def test_an_instance_handed_on_through_callers_that_never_commit_is_followed(tmp_path, monkeypatch):
    """The commit is three calls up, in another file each time; the modules in between commit
    nothing on this path (b.py commits elsewhere, c.py never)."""
    found = _read_in_process(tmp_path, monkeypatch, {
        "b.py": "from sqlalchemy.ext.asyncio import AsyncSession\nfrom .models import Item\nfrom .process import process\n\n\n"
                "async def caller(session: AsyncSession, item: Item) -> None:\n    await process(session, item)\n\n\n"
                "async def other(session: AsyncSession) -> None:\n    await session.commit()\n",
        "c.py": "from sqlalchemy.ext.asyncio import AsyncSession\nfrom .b import caller\n\n\nasync def grand(session: AsyncSession, item) -> None:\n    await caller(session, item)\n",
        "d.py": "from .c import grand\nfrom .models import Item, Session\n\n\nasync def great() -> None:\n"
                "    async with Session() as session:\n        item = Item(name='x')\n        session.add(item)\n"
                "        await session.commit()\n        await grand(session, item)\n",
    })
    assert len(found) == 1 and "handed on from `grand()` (app/c.py:6), from `great()` (app/d.py:10)" in found[0]


def test_a_rollback_two_calls_down_in_the_callers_loop_is_followed(tmp_path, monkeypatch):
    found = _read_in_process(tmp_path, monkeypatch, {
        "inner.py": "from sqlalchemy.ext.asyncio import AsyncSession\n\n\nasync def undo(session: AsyncSession) -> None:\n    await session.rollback()\n\n\n"
                    "async def helper(session: AsyncSession) -> None:\n    await undo(session)\n",
        "runner.py": "from sqlalchemy import select\nfrom sqlalchemy.ext.asyncio import AsyncSession\n\nfrom .inner import helper\nfrom .models import Item\n"
                     "from .process import process\n\n\nasync def run_all(session: AsyncSession) -> None:\n"
                     "    items = (await session.scalars(select(Item))).all()\n    for item in items:\n"
                     "        await process(session, item)\n        await helper(session)\n\n\n"
                     "async def other(session: AsyncSession) -> None:  # the module rolls back elsewhere\n"
                     "    await session.rollback()\n",
    })
    assert len(found) == 1 and "`helper(...)` (line 13), which may roll back `session`" in found[0]


@pytest.mark.parametrize("annotation", ["Annotated[AsyncSession, 'db']", "DB"])
def test_a_caller_whose_session_parameter_is_annotated_otherwise_is_walked(tmp_path, monkeypatch, annotation):
    """Second review: the caller's session parameter is typed through `Annotated` or an alias,
    so its facts name no hand-off of it; the call of a function that commits a session it is
    given still makes the caller one to walk."""
    found = _read_in_process(tmp_path, monkeypatch, {
        "inner.py": "from sqlalchemy.ext.asyncio import AsyncSession\n\n\nasync def save(session: AsyncSession) -> None:\n"
                    "    await session.commit()\n",
        "runner.py": "from typing import Annotated\n\nfrom sqlalchemy.ext.asyncio import AsyncSession\n\nfrom .inner import save\n"
                     "from .models import Item\nfrom .process import process\n\nDB = AsyncSession\n\n\n"
                     f"async def run(session: {annotation}) -> None:\n    item = await session.get(Item, 1)\n"
                     "    await save(session)\n    await process(session, item)\n\n\n"
                     "async def other(session: AsyncSession) -> None:\n    await session.commit()\n",
    })
    assert len(found) == 1 and "after `save(...)` expired it" in found[0]
