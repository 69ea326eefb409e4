"""The listing of a project kept between runs (.sqla-fix-cache/files.json): a re-run lists
nothing while the tree is unchanged, and every change that alters what is listed (a file
added or removed anywhere, a .gitignore, the configured excludes) is followed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_results_cache import VIEW, _db
from test_results_cache import project as results_fixture

from codemods import cache, discovery
from codemods.cli import cli

DB = _db(expire=True)
results_project = results_fixture.__wrapped__  # the fixture's function itself


@pytest.fixture
def tree(tmp_path, monkeypatch) -> Path:
    """The project of the results cache's tests (app/views.py has a finding, given app/db.py:
    the findings name the files a run checked), with a directory holding no Python file."""
    root = results_project(tmp_path, monkeypatch)
    (root / "docs").mkdir()
    (root / "docs" / "index.md").write_text("# docs\n")
    # Stamps made a moment ago count as settled: a test changes the tree within a second.
    monkeypatch.setattr(cache, "RACY_NS", 0)
    return root


@pytest.fixture
def listed(monkeypatch) -> list[str]:
    """The directories really listed (not served by the kept listing)."""
    tops: list[str] = []
    real = discovery._listed

    def counting(top, *args):
        tops.append(top)
        return real(top, *args)

    monkeypatch.setattr(discovery, "_listed", counting)
    return tops


def _check(*args: str) -> list[str]:
    result = CliRunner().invoke(cli, ["check", "--no-progress", "--format", "json", *args])
    assert result.exit_code in (0, 1), result.output
    return sorted({f["path"] for f in json.loads(result.stdout)["findings"]})


def test_a_rerun_lists_nothing_while_the_tree_is_unchanged(tree, listed):
    first = _check(".")
    assert listed == [str(tree)]
    assert (tree / cache.CACHE_DIR / "files.json").exists()
    listed.clear()
    assert _check(".") == first == ["app/views.py"]
    assert listed == []


@pytest.mark.parametrize("where", ["app/other.py", "docs/conf_views.py", "new/pkg/views2.py"])
def test_a_new_file_anywhere_is_listed(tree, listed, where):
    _check(".")
    target = tree / where
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(VIEW)
    assert where in _check(".")


def test_a_removed_file_leaves_the_listing(tree):
    (tree / "app" / "old.py").write_text(VIEW)
    assert "app/old.py" in _check(".")
    (tree / "app" / "old.py").unlink()
    assert _check(".") == ["app/views.py"]


def test_a_gitignore_change_is_followed(tree):
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    (tree / "app" / "gen.py").write_text(VIEW)
    (tree / ".gitignore").write_text("# nothing yet\n")
    assert "app/gen.py" in _check(".")
    (tree / ".gitignore").write_text("app/gen.py\n")  # same directory entries, new content
    assert _check(".") == ["app/views.py"]


def test_a_configured_exclude_is_followed(tree):
    (tree / "app" / "gen.py").write_text(VIEW)
    assert "app/gen.py" in _check(".")
    (tree / "pyproject.toml").write_text("[project]\nname = 'p'\nversion = '0'\n\n"
                                            "[tool.sqla-fix]\nexclude = ['app/gen.py']\n")
    assert _check(".") == ["app/views.py"]


def test_the_command_line_excludes_are_part_of_the_key(tree):
    (tree / "app" / "gen.py").write_text(VIEW)
    assert "app/gen.py" in _check(".")
    assert _check("--exclude", "app/gen.py", ".") == ["app/views.py"]
    assert "app/gen.py" in _check(".")


def _editor(source: str) -> list[dict]:
    result = CliRunner().invoke(cli, ["check", "-", "--stdin-filename", "app/views.py", "--format", "json"],
                                input=source)
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)["findings"]


def test_an_editor_file_sees_a_new_module(tree, listed):
    """The editor path (stdin) lists the project the same way: a module added since the
    last run takes part in the index."""
    (tree / "app" / "db.py").unlink()
    _check(".")
    listed.clear()
    assert _editor(VIEW) == []  # SessionLocal is nothing the index knows
    assert listed == []  # the kept listing served
    (tree / "app" / "db.py").write_text(DB)
    assert [f["code"] for f in _editor(VIEW)] == ["SQF005"]
    assert listed == [str(tree)]


def test_a_recent_change_is_not_trusted(tree, monkeypatch, listed):
    monkeypatch.setattr(cache, "RACY_NS", 10**18)  # every stamp is too recent
    _check(".")
    _check(".")
    assert listed == [str(tree), str(tree)]
    assert not (tree / cache.CACHE_DIR / "files.json").exists()


def test_no_cache_keeps_no_listing(tree):
    _check("--no-cache", ".")
    assert not (tree / cache.CACHE_DIR / "files.json").exists()
