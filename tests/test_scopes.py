"""Session scopes that are not plain ``@contextmanager`` session functions: a class whose
``__enter__`` returns its session, a context manager that rolls back on exit (which expires
everything, even under ``expire_on_commit=False``), and a decorator whose wrapper enters a
project scope (tests/fixtures/projects/scope_shapes). Each finding is checked against what
the code really does at run time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from codemods.cli import cli

PROJECT = Path(__file__).parent / "fixtures" / "projects" / "scope_shapes"

EXPECTED = [
    ("app/jobs.py", 12, "SQF003"),  # UnitOfWork.__exit__ commits: user.name expired and detached
    ("app/jobs.py", 18, "SQF003"),  # read_only() rolls back on exit: expired, whatever the factory says
    ("app/jobs.py", 25, "SQF005"),  # with_session commits after touch() returns the instance
    ("app/jobs.py", 33, "SQF003"),  # reporting() rolls back through a helper: each listed user expired
]


def _invoke(*args: str):
    old = os.getcwd()
    os.chdir(PROJECT)
    try:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def test_findings(monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(PROJECT.parent))
    data = json.loads(_invoke("check", "--no-cache", "--select", "SQF003,SQF005", "--format", "json", ".").stdout)
    assert [(f["path"], f["line"], f["code"]) for f in data["findings"]] == EXPECTED


def test_index_lists_the_class_scope_and_the_rollback(monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(PROJECT.parent))
    data = json.loads(_invoke("index", "--format", "json", ".").stdout)
    scopes = {s["name"]: s for s in data["scopes"]}
    assert scopes["app.db.UnitOfWork"]["commits_on_exit"] is True
    assert scopes["app.db.read_only"]["rolls_back_on_exit"] is True
    assert scopes["app.db.read_only"]["expire_on_commit"] is False
    assert scopes["app.db.reporting"]["rolls_back_on_exit"] is True
    (decorator,) = data["decorators"]
    assert (decorator["name"], decorator["factory"], decorator["commits"]) == (
        "app.decorators.with_session", "app.db.SessionLocal", True)


RUN = """
import sys
from sqlalchemy.orm.exc import DetachedInstanceError
from app.db import SessionLocal, engine
from app.models import Base, User
from app import jobs

Base.metadata.create_all(engine)
with SessionLocal() as s:
    s.add(User(id=1, name="ann"))
    s.commit()
outcome = []
for call in (lambda: jobs.rename(1, "bob"), lambda: jobs.peek(1), lambda: jobs.touch(1).name, jobs.names):
    try:
        call()
        outcome.append("ok")
    except DetachedInstanceError:
        outcome.append("detached")
print(",".join(outcome))
"""


def test_each_finding_really_raises():
    proc = subprocess.run([sys.executable, "-c", RUN], cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "detached,detached,detached,detached"


def test_module_level_code_is_read_as_a_function():
    from codemods.config import Config
    from codemods.engine import fix_text

    db = (PROJECT / "app" / "models.py").read_text() + "\nfrom sqlalchemy import create_engine\nengine = create_engine('sqlite://')\n"
    script = (
        "from sqlalchemy.orm import Session\n"
        "from app.db import User, engine\n"
        "\n"
        "if __name__ == \"__main__\":\n"
        "    with Session(engine) as session:\n"
        "        user = session.get(User, 1)\n"
        "        session.commit()\n"
        "    print(user.name)\n"
    )
    result = fix_text(script, Config(root="/p"), project={"app/db.py": db}, path="app/script.py")
    assert [(f.code, f.line) for f in result.findings] == [("SQF003", 8)]
    assert "        user_name = user.name\n" in result.new_text and "print(user_name)" in result.new_text
