"""Two ways an expired instance leaves its session, on a fixture project
(tests/fixtures/projects/kept_scope_instance), each finding checked against what the code does
at run time:

- a scope opened by calling an instance a class keeps (``with self.db_factory() as s``, the
  instance's class has a ``@contextmanager`` ``__call__`` that commits and removes the
  thread's session), the class reached through a module-level alias;
- an ``async def`` that commits the session it was handed and returns an instance it added or
  refreshed in it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import invoke_in

PROJECT = Path(__file__).parent / "fixtures" / "projects" / "kept_scope_instance"

EXPECTED = [
    ("app/consumer.py", 16, "SQF005"),  # package.alias read after the scope committed and closed
    ("app/store.py", 15, "SQF005"),  # returned expired by the commit of an async session
    # left alone: on_build_captured (read inside the scope), tag_refreshed (refreshed after the
    # commit), untouched (nothing shows the instance is in that session)
]


def test_findings(monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(PROJECT.parent))
    data = json.loads(invoke_in(PROJECT, "check", "--no-cache", "--select", "SQF003,SQF005",
                                "--format", "json", ".").stdout)
    assert [(f["path"], f["line"], f["code"]) for f in data["findings"]] == EXPECTED


def test_the_fixes_are_the_refresh_and_the_detach(monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(PROJECT.parent))
    out = invoke_in(PROJECT, "apply", "--dry-run", "--select", "SQF005", ".").stdout
    assert "+            dbsession.expunge(package)\n" in out
    assert "+        await self.session.refresh(package)\n" in out


RUN = """
import asyncio
from sqlalchemy.orm.exc import DetachedInstanceError
from app.db import AsyncSessionLocal, Base, Package, async_engine, engine
from app.consumer import BuildConsumer
from app.store import PackageStore

Base.metadata.create_all(engine)
outcome = []
for call in (lambda: BuildConsumer().on_build("a"), lambda: BuildConsumer().on_build_captured("b")):
    try:
        call()
        outcome.append("ok")
    except DetachedInstanceError:
        outcome.append("detached")


async def main():
    async with async_engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    for method in ("tag", "tag_refreshed"):
        async with AsyncSessionLocal() as session:
            package = Package(alias=method)
            session.add(package)
            await session.flush()
            pid = package.id
            await session.commit()
            package = await session.get(Package, pid)
            returned = await getattr(PackageStore(session), method)(package, "x")
            try:
                returned.alias
                outcome.append("ok")
            except Exception as exc:  # StatementError wrapping MissingGreenlet on SQLAlchemy 2.1
                outcome.append("greenlet" if "greenlet" in str(exc) else repr(exc))

asyncio.run(main())
print(",".join(outcome))
"""


def test_each_finding_really_raises():
    proc = subprocess.run([sys.executable, "-c", RUN], cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "detached,ok,greenlet,ok"
