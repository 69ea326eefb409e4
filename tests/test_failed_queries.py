"""SQF009 on PostgreSQL: a failed query (not a flush) caught without a rollback aborts the
transaction, and the code that goes on with the session fails. Only in a project whose engine
URLs are all PostgreSQL's (tests aside), and not under AUTOCOMMIT."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from codemods import engine
from codemods.cli import cli
from codemods.config import load
from codemods.discovery import discover
from codemods.index.aborts import aborting_database, database_named
from codemods.names import is_test_module

PROJECT = Path(__file__).parent / "fixtures" / "projects" / "failed_queries"


def _sqf009(root: Path, monkeypatch) -> list[tuple[str, int]]:
    monkeypatch.chdir(root)
    res = CliRunner().invoke(cli, ["check", "--format", "json", "--no-cache", "--no-progress", "."],
                             catch_exceptions=False)
    return [(Path(f["path"]).name, f["line"]) for f in json.loads(res.output)["findings"] if f["code"] == "SQF009"]


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "failed_queries"
    shutil.copytree(PROJECT, root)
    return root


@pytest.mark.parametrize(("text", "database"), [
    ("postgresql+asyncpg://u@h/db", "postgresql"),
    ("postgres://u@h/db", "postgresql"),
    ("postgresql+psycopg", "postgresql"),  # a driver name: URL.create("postgresql+psycopg", ...)
    ("sqlite+aiosqlite:///:memory:", "sqlite"),
    ("mysql+aiomysql://u@h/db", "mysql"),
    ("postgresql", None),  # a word, a dict key
    ("sqlite/tsv", None),
    ("see postgresql://docs", None),
])
def test_which_strings_name_a_database(text, database):
    assert database_named(text) == database


def test_the_index_knows_the_project_runs_on_postgresql():
    config = load(str(PROJECT))
    index = engine.build_index(discover([str(PROJECT)], config.root, ()), config, 1)
    assert aborting_database(index)  # the URL is built in a settings module naming no database library
    fn = index.function("shop.search.similar_products")
    assert fn is not None and fn.param_statements == ["session"]


def test_failed_queries_are_reported_where_the_session_goes_on(monkeypatch):
    # the caller's next query, and the loop's next round (then the commit rolls back);
    # a rollback, a savepoint, a try with no query, a re-raise, a session of its own: left alone
    assert _sqf009(PROJECT, monkeypatch) == [("recommend.py", 16), ("recommend.py", 33)]


def test_the_message_says_what_the_database_does(monkeypatch):
    monkeypatch.chdir(PROJECT)
    res = CliRunner().invoke(cli, ["check", "--format", "json", "--no-cache", "--no-progress", "."],
                             catch_exceptions=False)
    first = next(f for f in json.loads(res.output)["findings"] if f["code"] == "SQF009")
    assert "a failed query of `db` in `similar_products()`" in first["message"]
    assert "`product_page()` (line 22) goes on using it" in first["message"]
    assert "current transaction is aborted" in first["message"]
    assert "begin_nested" in first["message"]


def test_a_project_on_sqlite_is_left_alone(tmp_path, monkeypatch):
    root = _copy(tmp_path)
    settings = root / "shop" / "settings.py"
    settings.write_text(settings.read_text().replace("postgresql+asyncpg://", "sqlite+aiosqlite:///"))
    assert _sqf009(root, monkeypatch) == []


def test_a_second_database_anywhere_outside_tests_turns_it_off(tmp_path, monkeypatch):
    root = _copy(tmp_path)
    (root / "shop" / "reports.py").write_text('REPORTS_URL = "mysql+pymysql://reports@db/reports"\n')
    assert _sqf009(root, monkeypatch) == []


def test_autocommit_is_left_alone(tmp_path, monkeypatch):
    root = _copy(tmp_path)
    db = root / "shop" / "db.py"
    db.write_text(db.read_text().replace("create_async_engine(settings.database_url)",
                                         'create_async_engine(settings.database_url, isolation_level="AUTOCOMMIT")'))
    assert _sqf009(root, monkeypatch) == []


@pytest.mark.parametrize(("module", "test"), [
    ("shop.tests.test_search", True),
    ("shop.tests", True),  # Django's tests.py, or the package's __init__
    ("tests.conftest", True),
    ("conftest", True),
    ("shop.search_test", True),  # pytest's other file name
    ("shop.testing.factories", True),
    ("shop.test_utils.db", True),
    ("shop.search", False),
    ("shop.latest", False),
    ("shop.contest", False),
    ("shop.testimonials", False),
    ("shop.crud.test", False),  # the application's code for its test runs
    ("shop.testing", False),
])
def test_which_modules_are_the_tests(module, test):
    assert is_test_module(module) is test


@pytest.mark.parametrize("module", ["tests.py", "tests/__init__.py", "test_utils/db.py"])
def test_a_database_the_tests_name_does_not_count(tmp_path, monkeypatch, module):
    # test code naming SQLite (an in-memory database for a fast suite) says nothing about
    # where the project runs
    root = _copy(tmp_path)
    helper = root / "shop" / module
    helper.parent.mkdir(exist_ok=True)
    helper.write_text('TEST_URL = "sqlite+aiosqlite:///:memory:"\n')
    assert _sqf009(root, monkeypatch) == [("recommend.py", 16), ("recommend.py", 33)]
