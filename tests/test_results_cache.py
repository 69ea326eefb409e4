"""The results cache and the persisted index: a re-run gives what a cold run gives, analyses
only what changed, and follows every change that matters (another module's facts, the
configuration, the rules selected); a damaged cache is ignored."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from codemods import engine
from codemods import index as index_mod
from codemods.cache import CACHE_DIR
from codemods.cli import cli

VIEW = '''\
from app.db import SessionLocal


def show(user_id):
    with SessionLocal() as s:
        user = s.get(User, user_id)
        s.commit()
    return user.name
'''
PLAIN = "def total(values):\n    return sum(values)\n"


def _db(expire: bool) -> str:
    return f"from sqlalchemy.orm import sessionmaker\nSessionLocal = sessionmaker(expire_on_commit={expire})\n"


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'p'\nversion = '0'\n")
    app = tmp_path / "app"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "db.py").write_text(_db(True))
    (app / "views.py").write_text(VIEW)
    (app / "plain.py").write_text(PLAIN)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def analysed(monkeypatch) -> list[str]:
    """The files the passes look at (in this process: -j 1)."""
    seen: list[str] = []
    real = engine.process_source

    def counting(path, *args, **kw):
        seen.append(Path(path).name)
        return real(path, *args, **kw)

    monkeypatch.setattr(engine, "process_source", counting)
    return seen


def check(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["check", "-j", "1", "--no-progress", *args], input=stdin,
                                catch_exceptions=False)
    return result.exit_code, result.output


def _rewrite(path: Path, text: str) -> None:
    """Change a file so that its stamp changes too (a new size is enough)."""
    path.write_text(text)


def test_a_rerun_is_served_from_the_cache_and_equals_a_cold_run(project, analysed):
    cold = check("--no-cache", ".")
    assert cold[0] == 1 and "SQF005" in cold[1]
    assert not (project / CACHE_DIR).exists()
    assert check(".") == cold
    assert (project / CACHE_DIR / "results.json").exists()
    analysed.clear()
    assert check(".") == cold
    assert analysed == []  # nothing read, parsed or analysed


def test_a_fact_changed_in_another_module_invalidates_its_dependants(project, analysed):
    assert "SQF005" in check(".")[1]
    _rewrite(project / "app" / "db.py", _db(False))
    analysed.clear()
    code, out = check(".")
    assert "SQF005" not in out and code == 0
    assert "views.py" in analysed  # unchanged itself, but what it depends on changed
    assert check("--no-cache", ".") == (code, out)
    _rewrite(project / "app" / "db.py", _db(True) + "\n")
    assert "SQF005" in check(".")[1]


def test_a_change_that_touches_no_fact_reanalyses_only_that_file(project, analysed):
    check(".")
    _rewrite(project / "app" / "plain.py", PLAIN + "\n\ndef more():\n    return 1\n")
    analysed.clear()
    check(".")
    assert analysed == ["plain.py"]


def test_rule_selection_and_configuration_invalidate(project, analysed):
    assert "SQF005" in check(".")[1]
    assert check("--select", "SQF001", ".") == (0, check("--no-cache", "--select", "SQF001", ".")[1])
    assert "SQF005" in check(".")[1]
    (project / "pyproject.toml").write_text(
        "[project]\nname = 'p'\nversion = '0'\n[tool.sqla-fix]\nignore = ['SQF005']\n")
    code, out = check(".")
    assert code == 0 and "SQF005" not in out


def test_a_damaged_results_cache_is_ignored(project, analysed):
    cold = check("--no-cache", ".")
    check(".")
    results = project / CACHE_DIR / "results.json"
    data = json.loads(results.read_text())
    ill_typed = json.loads(json.dumps(data))
    for entry in ill_typed["entries"].values():
        entry["value"]["findings"] = [{"code": 5}]
    stale = json.loads(json.dumps(data))
    for entry in stale["entries"].values():
        entry["value"]["key"] = "0" * 32
        entry["value"]["findings"] = []
    for bad in (b"\x00garbage", json.dumps(ill_typed).encode(), json.dumps(stale).encode(), b"[]"):
        results.write_bytes(bad)
        assert check(".") == cold


def test_stdin_reuses_the_stored_result_only_for_the_same_bytes(project, analysed):
    full = check(".")
    analysed.clear()
    code, out = check("-", "--stdin-filename", "app/views.py", stdin=VIEW)
    assert code == 1 and "SQF005" in out and analysed == []
    assert out.splitlines()[0] in full[1]
    fixed = VIEW.replace("    return user.name\n", "        return user.name\n")
    code, out = check("-", "--stdin-filename", "app/views.py", stdin=fixed)
    assert analysed == ["views.py"]
    assert check("--no-cache", "-", "--stdin-filename", "app/views.py", stdin=fixed) == (code, out)


def test_stdin_without_session_code_never_builds_the_index(project, monkeypatch):
    def no_index(*args, **kw):
        raise AssertionError("the index was built")

    from codemods import project as project_mod

    monkeypatch.setattr(project_mod, "load", no_index)
    assert check("-", "--stdin-filename", "app/plain.py", stdin=PLAIN) == (0, "No findings in 1 file.\n")
    code, out = check("-", "--stdin-filename", "app/plain.py", stdin="def f(:\n")
    assert code == 1


def test_the_index_is_not_read_again_when_nothing_changed(project, monkeypatch):
    check(".")
    calls: list[str] = []
    real = index_mod.extract

    def counting(path, source, module):
        calls.append(Path(path).name)
        return real(path, source, module)

    monkeypatch.setattr(index_mod, "extract", counting)
    check(".")
    assert calls == []
    (project / "app" / "helpers.py").write_text("from app.db import SessionLocal\n\ndef get():\n    return SessionLocal()\n")
    check(".")
    # The new module, found through the name SessionLocal; db.py, unchanged, is not read again
    # (views.py is re-analysed, the fingerprint having changed, and its fix re-extracts it).
    assert "helpers.py" in calls and "db.py" not in calls


def test_a_fix_served_from_the_cache_applies_to_the_file(project):
    from snippets import BUGGY, FIXED

    target = project / "app" / "visits.py"
    target.write_text(BUGGY)
    check(".")
    result = CliRunner().invoke(cli, ["apply", "--yes", "--allow-dirty", "-j", "1", "--no-progress", "app/visits.py"])
    assert result.exit_code == 0, result.output
    assert target.read_text() == FIXED
    os.utime(target)  # and the fixed file is analysed afresh
    assert "SQF002" not in check(".")[1]
