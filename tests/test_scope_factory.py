"""A session scope handed out by a function that returns an instance of a class it defines
(`def transaction_scope(db): class Scope: async def __aenter__ ...; return Scope()`), used
without `as` in a module that never names a session: the module is still read, and a
callback kept to run after the scope reads an instance it loaded
(tests/fixtures/projects/scope_factory). The finding is checked against what the code
really does at run time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import invoke_in

PROJECT = Path(__file__).parent / "fixtures" / "projects" / "scope_factory"


def _invoke(*args: str):
    return invoke_in(PROJECT, *args)


def test_the_module_naming_no_session_is_read(monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(PROJECT.parent))
    source = (PROJECT / "app" / "connection.py").read_bytes()
    assert b"ession" not in source and b"sqlalchemy" not in source  # only the scope's name says so
    data = json.loads(_invoke("check", "--no-cache", "--select", "SQF007", "--format", "json", ".").stdout)
    # `follow` keeps a callback reading `user.name`; `follow_by_name` one reading a value read now
    assert [(f["path"], f["line"], f["code"]) for f in data["findings"]] == [("app/connection.py", 25, "SQF007")]


def test_index_lists_the_function_and_its_class(monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(PROJECT.parent))
    data = json.loads(_invoke("index", "--format", "json", ".").stdout)
    scopes = {s["name"]: s for s in data["scopes"]}
    for name in ("app.engine.transaction_scope", "app.engine.transaction_scope.Scope"):
        scope = scopes[name]
        assert (scope["factory"], scope["async"], scope["expire_on_commit"]) == ("app.engine.Database.session", True, True)
        assert scope["commits_on_exit"] and scope["closes_on_exit"] and not scope["rolls_back_on_exit"]


RUN = """
import asyncio
from sqlalchemy.orm.exc import DetachedInstanceError
from app.connection import Connection
from app.engine import Database
from app.models import Base, User


async def main():
    database = Database("sqlite+aiosqlite://")
    async with database.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with database.session() as s:
        s.add(User(id=1, name="ann"))
        await s.commit()
    outcome = []
    for captured in (False, True):
        connection = Connection(database)
        await connection.serve(1, "news", captured)
        try:
            outcome.append(connection.close()[0])
        except DetachedInstanceError:
            outcome.append("detached")
    await database.engine.dispose()
    print(",".join(outcome))


asyncio.run(main())
"""


def test_the_finding_really_raises():
    proc = subprocess.run([sys.executable, "-c", RUN], cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "detached,ann stops following news"
