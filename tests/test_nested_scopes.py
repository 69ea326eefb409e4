"""Session scopes built on scopes (tests/fixtures/projects/nested_scopes): a context manager
that yields, inside its own with-block, the session another project scope yielded ends that
scope when its own block ends, and commits too when it commits after its yield. The findings
are checked against what the code really does at run time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import invoke_in

PROJECT = Path(__file__).parent / "fixtures" / "projects" / "nested_scopes"


def test_index_reads_what_the_inner_scope_does_on_exit(monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(PROJECT.parent))
    data = json.loads(invoke_in(PROJECT, "index", "--format", "json", ".").stdout)
    scopes = {s["name"]: s for s in data["scopes"]}
    assert scopes["app.db.current_session"]["closes_on_exit"] and not scopes["app.db.current_session"]["commits_on_exit"]
    assert scopes["app.db.unit_of_work"]["closes_on_exit"] and scopes["app.db.unit_of_work"]["commits_on_exit"]


def test_reads_after_a_nested_scope_are_reported_and_really_fail(monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(PROJECT.parent))
    data = json.loads(invoke_in(PROJECT, "check", "--no-cache", "--format", "json", ".").stdout)
    assert [(f["path"], f["line"], f["code"]) for f in data["findings"]] == [
        ("app/views.py", 8, "SQF003"), ("app/views.py", 15, "SQF003")]
    run = """
from sqlalchemy.orm.exc import DetachedInstanceError
from app.db import engine
from app.models import Base, Note, User
from app import views
from sqlalchemy.orm import Session
Base.metadata.create_all(engine)
with Session(engine) as s:
    s.add(User(id=1, name="ann", notes=[Note(id=1)]))
    s.commit()
for call in (lambda: views.note_count(1), lambda: views.rename(1, "bo"), lambda: views.note_count_inside(1)):
    try:
        call()
        print("ok")
    except DetachedInstanceError:
        print("detached")
"""
    out = subprocess.run([sys.executable, "-c", run], cwd=PROJECT, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["detached", "detached", "ok"]
