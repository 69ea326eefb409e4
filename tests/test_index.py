"""The project index on multi-file fixture projects (tests/fixtures/projects/): what it finds,
and the findings that follow from it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import run_cli

from codemods import engine
from codemods.config import load
from codemods.discovery import discover
from codemods.index import describe, extract

PROJECTS = Path(__file__).parent / "fixtures" / "projects"


def build(name: str):
    root = PROJECTS / name
    config = load(str(root))
    return engine.build_index(discover([str(root)], config.root, ()), config, 1)


def by_name(rows: list[dict], suffix: str) -> dict:
    (row,) = [r for r in rows if r["name"].endswith(suffix)]
    return row


def check(name: str) -> tuple[int, list[str]]:
    proc = run_cli("check", "--format", "json", ".", cwd=PROJECTS / name)
    data = json.loads(proc.stdout)
    return proc.returncode, [f"{f['path']}:{f['line']}:{f['code']}" for f in data["findings"]]


# ---------------------------------------------------------------- FastAPI, one shared get_db


def test_fastapi_shared_session_index():
    idx = build("fastapi_shared")
    data = describe(idx)
    factory = by_name(data["factories"], "app.db.SessionLocal")
    assert factory["async"] is False and factory["expire_on_commit"] is True
    assert factory["expire_on_commit_stated"] is False and factory["bind"] == "engine"
    assert by_name(data["providers"], "app.db.get_db")["provides_session"] is True
    alias = by_name(data["aliases"], "app.api.deps.SessionDep")
    assert alias["depends"] == "app.db.get_db"
    user = by_name(data["providers"], "app.api.deps.get_current_user")
    assert user["value_sessions"] == [{"provider": "app.db.get_db", "open": True, "use_cache": True}]
    models = {m["name"]: m for m in data["models"]}
    assert models["app.models.User"]["relationships"] == {"items": "select"}
    assert models["app.models.Item"]["relationships"] == {"owner": "joined"}
    assert models["app.models.User"]["columns"] == ["email", "id"]
    assert "app.models.Base" not in models


def test_fastapi_shared_session_add_is_correct_code():
    code, findings = check("fastapi_shared")
    assert (code, findings) == (0, [])


# ---------------------------------------------------------------- FastAPI, provider opens its own session


def test_fastapi_own_session_index():
    idx = build("fastapi_own")
    data = describe(idx)
    factory = by_name(data["factories"], "app.database.async_session")
    assert factory["async"] is True
    user = by_name(data["providers"], "app.auth.get_current_user")
    assert user["value_sessions"] == [{"provider": None, "open": True, "use_cache": True}]
    models = {m["name"]: m for m in data["models"]}
    assert models["app.models.User"]["relationships"] == {"contacts": "select"}
    assert models["app.models.Contact"]["relationships"] == {"owner": "select"}  # a backref


def test_fastapi_own_session_add_is_found_and_fixed(tmp_path):
    code, findings = check("fastapi_own")
    assert code == 1
    assert findings == ["app/main.py:17:SQF002"]
    proc = run_cli("apply", "--dry-run", ".", cwd=PROJECTS / "fastapi_own")
    assert "+        current_user = await db.merge(current_user)\n" in proc.stdout.decode()


# ---------------------------------------------------------------- aiogram-style bot


def test_bot_service_scopes_use_the_factory_settings():
    idx = build("bot")
    data = describe(idx)
    factory = by_name(data["factories"], "bot.db.session_pool")
    assert factory["expire_on_commit"] is False and factory["async"] is True
    scope = by_name(data["scopes"], "bot.services.get_user_service")
    assert scope["yields"] == "service" and scope["service"] == "bot.services.users.UserService"
    assert scope["expire_on_commit"] is False and scope["commits_on_exit"] is True
    models = {m["name"]: m for m in data["models"]}
    user = models["bot.models.User"]
    assert user["relationships"] == {"avatars": "selectin", "balance": "select"}
    assert "created" in user["columns"]  # from a mixin
    assert "bot.models.TimestampMixin" not in models


def test_bot_is_clean():
    assert check("bot") == (0, [])


# ---------------------------------------------------------------- Flask-SQLAlchemy


def test_flask_models_and_deferred_columns():
    idx = build("flaskapp")
    models = {m["name"]: m for m in describe(idx)["models"]}
    user = models["flaskapp.models.User"]
    assert user["relationships"] == {"posts": "dynamic"}
    assert user["deferred"] == ["about"]
    assert models["flaskapp.models.Post"]["relationships"] == {"author": "select"}  # backref


def test_flask_cookie_session_and_db_session_make_no_finding():
    assert check("flaskapp") == (0, [])


# ---------------------------------------------------------------- configured factory


def test_factory_from_another_package_configured_by_name():
    idx = build("external")
    scope = idx.scope("corelib.db.SessionLocal")
    assert scope is not None and scope.expire_on_commit is False and scope.is_async is True
    configured = idx.scope("corelib.db.transaction")
    assert configured is not None and configured.kind == "configured"
    assert idx.scope("corelib.db.other") is None


def test_unconfigured_factory_uses_assume_expire_on_commit(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.sqla-fix]\nassume-expire-on-commit = false\n")
    (tmp_path / "m.py").write_text("from corelib.db import make\nimport sqlalchemy\nSessionLocal = make()\n")
    config = load(str(tmp_path))
    idx = engine.build_index([str(tmp_path / "m.py")], config, 1)
    assert idx.expire_on_commit("corelib.db.SessionLocal") is False
    assert idx.expire_on_commit("sqlalchemy.orm.Session") is True


# ---------------------------------------------------------------- look-alike names


def test_variable_named_async_sessionmaker_is_not_a_factory():
    idx = build("notclass")
    data = describe(idx)
    assert data["factories"] == []
    assert idx.opens_session("pools.async_sessionmaker") is None
    assert check("notclass") == (0, [])


# ---------------------------------------------------------------- extraction details


def test_factory_options_and_configure_call():
    facts = extract("m.py", (
        "from sqlalchemy.orm import sessionmaker, scoped_session\n"
        "from sqlalchemy.ext.asyncio import async_sessionmaker, AsyncSession\n"
        "A = sessionmaker(bind=engine, expire_on_commit=False)\n"
        "B = sessionmaker(class_=AsyncSession)\n"
        "C = scoped_session(sessionmaker(engine, expire_on_commit=False))\n"
        "D = sessionmaker()\n"
        "D.configure(bind=engine, expire_on_commit=False)\n"
        "class Database:\n"
        "    def __init__(self, engine):\n"
        "        self.session_factory = async_sessionmaker(engine, expire_on_commit=False)\n"
    ), "m")
    f = facts.factories
    assert (f["A"].is_async, f["A"].expire_on_commit, f["A"].bind) == (False, False, "engine")
    assert f["B"].is_async is True
    assert f["C"].scoped and f["C"].expire_on_commit is False
    assert f["D"].expire_on_commit is False
    assert f["Database.session_factory"].is_async is True


def test_context_managers_and_decorators():
    facts = extract("m.py", (
        "from contextlib import contextmanager\n"
        "from functools import wraps\n"
        "from sqlalchemy.orm import sessionmaker\n"
        "Maker = sessionmaker(expire_on_commit=True)\n"
        "@contextmanager\n"
        "def session_scope():\n"
        "    session = Maker()\n"
        "    try:\n"
        "        yield session\n"
        "        session.commit()\n"
        "    except Exception:\n"
        "        session.rollback()\n"
        "        raise\n"
        "    finally:\n"
        "        session.close()\n"
        "@contextmanager\n"
        "def tx():\n"
        "    with Maker.begin() as s:\n"
        "        yield s\n"
        "def with_session(func):\n"
        "    @wraps(func)\n"
        "    def wrapper(*args, **kwargs):\n"
        "        with Maker() as session:\n"
        "            result = func(session, *args, **kwargs)\n"
        "            session.commit()\n"
        "            return result\n"
        "    return wrapper\n"
    ), "m")
    from codemods.index import ProjectIndex

    idx = ProjectIndex([facts])
    scope = idx.scope("m.session_scope")
    assert scope.yields == "session" and scope.commits_on_exit and scope.expire_on_commit
    tx = idx.scope("m.tx")
    assert tx.commits_on_exit
    deco = idx.decorator("m.with_session")
    assert deco is not None and deco.position == 0 and deco.commits
    assert idx.scope("m.with_session") is None


def test_index_command_text_and_json():
    text = run_cli("index", ".", cwd=PROJECTS / "bot")
    assert text.returncode == 0
    out = text.stdout.decode()
    assert "bot.db.session_pool" in out and "expire_on_commit=False" in out
    assert "bot.services.get_user_service" in out and "yields a service (bot.services.users.UserService)" in out
    assert "balance (lazy=select)" in out
    data = json.loads(run_cli("index", "--format", "json", ".", cwd=PROJECTS / "bot").stdout)
    assert {"factories", "scopes", "decorators", "providers", "aliases", "models"} <= set(data)


# ---------------------------------------------------------------- modern syntax


MODERN = '''\
from sqlalchemy.orm import Session, sessionmaker

type UserId = int


class Repo[T]:
    def get[K](self, session: Session, key: K) -> T: ...


def record_visit(user, db: Session) -> None:
    try:
        user.visits += 1
    except ValueError, TypeError:
        pass
    db.add(user)
    db.commit()


def handle(SessionLocal: sessionmaker, user_id: UserId) -> None:
    with SessionLocal() as auth:
        user = auth.get(User, user_id)
        match user_id:
            case 0:
                return
        with SessionLocal() as db:
            record_visit(user, db)
'''


def test_syntax_newer_than_this_python_is_indexed_and_fixed(tmp_path):
    """PEP 695 generics, `type` aliases and Python 3.14's unparenthesised `except A, B:` are
    parsed by libcst; the index (ast) gets a downgraded copy with the same line numbers."""
    facts = extract("m.py", MODERN, "m")
    assert {"Repo.get", "record_visit", "handle"} <= set(facts.functions)
    assert facts.functions["handle"].line == 19
    (tmp_path / "m.py").write_text(MODERN)
    proc = run_cli("apply", "--yes", ".", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert "    user = db.merge(user)\n" in (tmp_path / "m.py").read_text()
    assert b"internal error" not in proc.stderr


def test_project_session_types_newtype_and_alias():
    from codemods.index import ProjectIndex

    types = extract("app/types.py", (
        "from typing import NewType\n"
        "from sqlalchemy.ext.asyncio import AsyncSession as _AsyncSession\n"
        "from sqlalchemy.orm import Session\n"
        "AsyncSession = NewType('AsyncSession', _AsyncSession)\n"
        "SyncDB = Session\n"
        "Other = NewType('Other', int)\n"
    ), "app.types")
    idx = ProjectIndex([types])
    assert idx.session_class("app.types.AsyncSession") is True
    assert idx.session_class("app.types.SyncDB") is False
    assert idx.session_class("app.types.Other") is None


def test_env_directories_are_source_unless_they_are_virtualenvs(tmp_path):
    from codemods.discovery import discover

    (tmp_path / "app" / "config" / "env").mkdir(parents=True)
    (tmp_path / "app" / "config" / "env" / "settings.py").write_text("x = 1\n")
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr\n")
    (tmp_path / "env" / "lib.py").write_text("y = 2\n")
    found = [os.path.relpath(p, tmp_path) for p in discover([str(tmp_path)], str(tmp_path))]
    assert found == [os.path.join("app", "config", "env", "settings.py")]


def _project(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_stdlib_names_do_not_resolve_to_project_modules(tmp_path):
    from codemods.index import ProjectIndex

    facts = extract("app/logging.py", "import sqlalchemy\ndef get_db():\n    pass\n", "app.logging")
    idx = ProjectIndex([facts])
    assert idx.function("logging.get_db") is None  # `import logging` is the standard library
    assert idx.function("app.logging.get_db") is not None


def test_several_projects_with_the_same_package_warn_instead_of_guessing(tmp_path):
    for name in ("one", "two"):
        _project(tmp_path / name, {
            "app/__init__.py": "",
            "app/db.py": "from sqlalchemy.orm import sessionmaker\nSessionLocal = sessionmaker()\n",
            "app/users.py": "from app.db import SessionLocal\n",
        })
    alone = run_cli("check", ".", cwd=tmp_path / "one")
    assert b"warning" not in alone.stderr
    # One project (a marker above both) holding two `app` packages.
    (tmp_path / "pyproject.toml").write_text("[tool.sqla-fix]\n")
    proc = run_cli("check", ".", cwd=tmp_path)
    assert b"warning: `app.db` is imported but matches several modules" in proc.stderr


def test_each_file_is_indexed_once_whatever_its_spelling(tmp_path, monkeypatch):
    _project(tmp_path, {"pkg/db.py": "from sqlalchemy.orm import sessionmaker\nS = sessionmaker()\n"})
    monkeypatch.chdir(tmp_path)
    config = load(".")
    files = sorted(set(discover([str(tmp_path)], config.root)) | set(discover(["pkg"], config.root)))
    assert files == [os.path.join("pkg", "db.py")]


def test_context_managers_that_yield_no_session_are_not_scopes():
    from codemods.index import ProjectIndex

    facts = extract("m.py", (
        "import tempfile\n"
        "from contextlib import contextmanager\n"
        "from sqlalchemy.orm import Session, sessionmaker\n"
        "Maker = sessionmaker()\n"
        "@contextmanager\n"
        "def workdir():\n"
        "    tmp = tempfile.mkdtemp()\n"
        "    yield tmp\n"
        "@contextmanager\n"
        "def timed():\n"
        "    t = Timer()\n"
        "    yield Report(t)\n"
        "@contextmanager\n"
        "def service(session: Session):\n"
        "    yield UserService(session)\n"
        "@contextmanager\n"
        "def scope():\n"
        "    s = Maker()\n"
        "    yield s\n"
    ), "m")
    idx = ProjectIndex([facts])
    assert idx.scope("m.workdir") is None
    assert idx.scope("m.timed") is None
    assert idx.scope("m.service") is not None and idx.scope("m.service").yields == "service"
    assert idx.scope("m.scope") is not None and idx.scope("m.scope").yields == "session"


def test_a_function_returning_a_session_from_its_own_factory_opens_sessions(tmp_path):
    """`def session_factory(): SessionDb = sessionmaker(...); return SessionDb()`, then
    `with session_factory() as session:` is a session scope (a real project's shape)."""
    (tmp_path / "db.py").write_text(
        "from sqlalchemy import create_engine\n"
        "from sqlalchemy.orm import sessionmaker\n"
        "def session_factory():\n"
        "    SessionDb = sessionmaker(bind=create_engine('sqlite://'))\n"
        "    return SessionDb()\n"
        "def commit_on_db(obj) -> bool:\n"
        "    with session_factory() as session:\n"
        "        try:\n"
        "            session.add(obj)\n"
        "            session.commit()\n"
        "        except Exception:\n"
        "            session.rollback()\n"
        "            return False\n"
        "    return True\n"
    )
    idx = build_at(tmp_path)
    assert idx.opens_session("db.session_factory") is False
    assert idx.scope("db.session_factory").yields == "session"
    proc = run_cli("check", "--format", "concise", ".", cwd=tmp_path)
    assert "db.py:12:13: SQF004" in proc.stdout.decode()


def build_at(root: Path):
    config = load(str(root))
    return engine.build_index(discover([str(root)], config.root, ()), config, 1)


def test_a_factory_assigned_through_global_in_an_init_function():
    from codemods.index import ProjectIndex

    facts = extract("db.py", (
        "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
        "_maker = None\n"
        "def init(engine):\n"
        "    global _maker\n"
        "    _maker = async_sessionmaker(engine, expire_on_commit=False)\n"
        "def not_global(engine):\n"
        "    other = async_sessionmaker(engine)\n"
    ), "db")
    idx = ProjectIndex([facts])
    assert idx.factory("db._maker") is not None
    assert idx.expire_on_commit("db._maker") is False
    assert idx.factory("db.other") is None


def test_a_decorator_passing_something_else_than_a_session_is_not_a_session_decorator():
    from codemods.index import ProjectIndex

    facts = extract("m.py", (
        "from functools import wraps\n"
        "from sqlalchemy.orm import sessionmaker\n"
        "Maker = sessionmaker(expire_on_commit=False)\n"
        "def with_committer(func):\n"
        "    @wraps(func)\n"
        "    def wrapper(*args):\n"
        "        committer = Committer()\n"
        "        return func(committer, *args)\n"
        "    return wrapper\n"
        "def session():\n"
        "    return Maker()\n"
        "def with_session(func):\n"
        "    @wraps(func)\n"
        "    def wrapper(*args):\n"
        "        s = session()\n"
        "        return func(s, *args)\n"
        "    return wrapper\n"
    ), "m")
    idx = ProjectIndex([facts])
    assert idx.decorator("m.with_committer") is None
    deco = idx.decorator("m.with_session")
    assert deco is not None
    # a function returning a session carries its factory's setting
    assert idx.expire_on_commit(deco.factory, deco.expire_on_commit) is False


def test_the_index_walk_is_ast_walk():
    """The index's module-wide walk gives what ``ast.walk`` gives, node for node, in its order,
    less the leaves every reader reads through its parent (a name's Load or Store, an
    operator): and nothing else is left out."""
    import ast

    from codemods.index.astutil import children, source_order, walk

    leaves = (ast.expr_context, ast.operator, ast.boolop, ast.cmpop, ast.unaryop)
    root = Path(__file__).resolve().parent.parent
    compared = 0
    for path in sorted([*root.glob("tests/fixtures/**/*.py"), *root.glob("samples/**/*.py"), *root.glob("codemods/**/*.py")]):
        tree = ast.parse(path.read_bytes())
        expected = [id(n) for n in ast.walk(tree) if not isinstance(n, leaves)]
        first = walk(tree)
        assert [id(n) for n in first] == expected, path
        # again, each node's children as the first walk kept them
        assert [id(n) for n in walk(tree)] == expected, path
        for node in first:
            assert [id(c) for c in children(node)] == [
                id(c) for c in ast.iter_child_nodes(node) if not isinstance(c, leaves)], path
        in_source = [id(n) for n in source_order([tree])]
        assert sorted(in_source) == sorted(expected) and in_source[:2] == expected[:2], path
        compared += 1
    assert compared > 100


def test_a_name_resolves_to_what_the_index_holds_now():
    """Resolved names are remembered for the index's state: a module added (an editor's
    buffer, a re-export that now points elsewhere) is seen at once."""
    from codemods.index import ProjectIndex

    idx = ProjectIndex([extract("app/db.py", "def get_db():\n    pass\n", "app.db"),
                        extract("app/__init__.py", "from app.db import get_db\n", "app")])
    first = idx.function("app.get_db")  # through the package's re-export
    assert first is not None and first is idx.function("app.db.get_db")
    assert idx.function("app.open_db") is None
    idx.add(extract("app/db.py", "def open_db():\n    pass\n\n\ndef get_db():\n    pass\n", "app.db"))
    assert idx.function("app.get_db") is not first and idx.function("app.get_db") is idx.function("app.db.get_db")
    assert idx.function("app.db.open_db") is not None
    idx.add(extract("app/__init__.py", "from app.db import open_db as get_db\n", "app"))
    assert idx.function("app.get_db") is idx.function("app.db.open_db")


def test_the_facts_are_the_same_when_the_walks_visit_the_leaves(monkeypatch):
    """No fact of the index comes from visiting a context or operator leaf: with them walked
    too, every fixture's and sample's facts are the same."""
    from codemods import codec
    from codemods.index import astutil, extract

    root = Path(__file__).resolve().parent.parent
    paths = sorted([*root.glob("tests/fixtures/**/*.py"), *root.glob("samples/**/*.py")])

    def all_facts() -> list:
        astutil._FIELDS.clear()
        return [codec.encode(extract(str(p), p.read_bytes(), "m"), defaults=False) for p in paths]

    skipped = all_facts()
    monkeypatch.setattr(astutil, "_LEAF_FIELDS", frozenset())
    assert all_facts() == skipped
    astutil._FIELDS.clear()  # (monkeypatch restores the leaves; the next walk works the fields out again)
