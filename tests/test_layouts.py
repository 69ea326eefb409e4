"""Project layouts: every way a real project puts its import roots, and that a module imported
under the name the code uses is found (tests/fixtures/projects/layout_*).

Each fixture has the same three modules (a session factory, a model, a job that reads an
attribute after the session that committed it closed) under a different layout; the finding
in the job exists only when its imports resolve to the factory and the model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import invoke_in

from codemods.index import RootKind, module_names

PROJECTS = Path(__file__).parent / "fixtures" / "projects"

LAYOUTS = {
    # name: (job path, its module name, the root kind of that name)
    "layout_src_namespace": ("src/jobs.py", "jobs", RootKind.DISTRIBUTION),
    "layout_monorepo": ("libs/billing-svc/billing/jobs.py", "billing.jobs", RootKind.PACKAGE),
    "layout_lib_package": ("lib/jobs.py", "lib.jobs", RootKind.PACKAGE),
    "layout_scripts": ("scripts/jobs.py", "scripts.jobs", RootKind.PROJECT),
    "layout_configured_src": ("backend/app/jobs.py", "app.jobs", RootKind.CONFIGURED),
}


def run(*args: str, cwd: Path):
    return invoke_in(cwd, *args)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_imports_resolve_in_every_layout(name, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(PROJECTS))
    job, _, _ = LAYOUTS[name]
    result = run("check", "--no-cache", "--format", "json", ".", cwd=PROJECTS / name)
    data = json.loads(result.stdout)
    assert [(f["path"], f["line"], f["code"]) for f in data["findings"]] == [(job, 10, "SQF003")]


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_index_shows_the_root_of_each_module(name, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(PROJECTS))
    job, module, kind = LAYOUTS[name]
    result = run("index", "--format", "json", ".", cwd=PROJECTS / name)
    rows = {r["path"]: r for r in json.loads(result.stdout)["modules"]}
    row = rows[job]
    assert (row["name"], row["root_kind"]) == (module, kind.value)


def test_names_of_a_namespace_src_module(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "src").mkdir()
    path = tmp_path / "src" / "db.py"
    path.write_text("")
    names = [(n.name, n.kind) for n in module_names(str(path), str(tmp_path))]
    # `db` under src/ (its distribution's source root), and `src.db` from the repository root
    assert names[:2] == [("db", RootKind.DISTRIBUTION), ("src.db", RootKind.PROJECT)]


def test_a_real_package_named_lib_keeps_its_name(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "__init__.py").write_text("")
    (tmp_path / "lib" / "db.py").write_text("")
    assert module_names(str(tmp_path / "lib" / "db.py"), str(tmp_path))[0].name == "lib.db"


def test_directories_that_are_not_identifiers_are_not_part_of_a_name(tmp_path):
    pkg = tmp_path / "libs" / "chat-server" / "chat"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "db.py").write_text("")
    names = [n.name for n in module_names(str(pkg / "db.py"), str(tmp_path))]
    assert names[0] == "chat.db"
    assert not any("chat-server" in n for n in names)


def test_script_neighbours_resolve_but_never_shadow_the_standard_library(tmp_path):
    from codemods.index import ProjectIndex, extract

    scripts = tmp_path / "scripts"
    scripts.mkdir()
    facts = extract(str(scripts / "logging.py"), "def get_db():\n    pass\n",
                    module_names(str(scripts / "logging.py"), str(tmp_path)))
    idx = ProjectIndex([facts])
    assert idx.function("scripts.logging.get_db") is not None
    assert idx.function("logging.get_db") is None  # `import logging` is the standard library


def test_an_import_inside_a_function_does_not_change_a_module_level_name():
    from codemods.index import extract

    facts = extract("m.py", (
        "from app.db import Session\n"
        "def f():\n"
        "    from requests import Session\n"
        "def g():\n"
        "    from app.models import User\n"
    ), "m")
    assert facts.imports["Session"] == "app.db.Session"
    assert facts.imports["User"] == "app.models.User"  # deferred imports still resolve


def test_a_model_reached_through_re_exporting_modules(monkeypatch):
    """`db.Review`, where `store/db.py` re-exports from the package `store.model`, which
    re-exports from `store.model.review`: neither re-exporting module names a database library,
    so the byte scan leaves them out, yet the annotation resolves to the model through them."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(PROJECTS))
    project = PROJECTS / "reexport_models"
    result = run("check", "--no-cache", "--format", "json", ".", cwd=project)
    data = json.loads(result.stdout)
    assert [(f["path"], f["line"], f["code"]) for f in data["findings"]] == [("store/views.py", 15, "SQF007")]
    assert "(Review)" in data["findings"][0]["message"]
    shown = run("index", "--format", "json", ".", cwd=project)
    names = {r["name"] for r in json.loads(shown.stdout)["modules"]}
    assert {"store.db", "store.model"} <= names


def test_re_exporting_modules_are_kept_by_the_cache(tmp_path, monkeypatch):
    """A cached run, and a run after the re-exporting module changed, still resolve `db.Review`."""
    import shutil

    project = tmp_path / "reexport_models"
    shutil.copytree(PROJECTS / "reexport_models", project)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))

    def findings():
        data = json.loads(run("check", "--format", "json", ".", cwd=project).stdout)
        return [(f["path"], f["code"]) for f in data["findings"]]

    expected = [("store/views.py", "SQF007")]
    assert findings() == expected
    assert (project / ".sqla-fix-cache").is_dir()
    assert findings() == expected
    with open(project / "store" / "db.py", "a") as fh:
        fh.write("# the models, re-exported\n")
    assert findings() == expected
