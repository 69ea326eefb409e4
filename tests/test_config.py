"""Configuration as ruff finds it: per file, --config, --force-exclude, per-file-ignores,
extend-select, gitignore-style globs, and exit status 2 for every configuration error."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from snippets import BUGGY

from codemods.cli import cli
from codemods.config import ConfigError, load


@pytest.fixture
def tree(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    return tmp_path


def invoke(*args: str):
    return CliRunner().invoke(cli, ["check", "--no-cache", "--format", "concise", *args], catch_exceptions=False)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def findings(result) -> list[str]:
    return sorted(line.split(":")[0] for line in result.output.splitlines() if ": SQF" in line)


def test_each_file_takes_its_nearest_configuration_in_any_order(tree):
    """A monorepo: svc_a ignores SQF002, svc_b does not. The order of the paths must not matter."""
    write(tree / "svc_a" / "pyproject.toml", '[tool.sqla-fix]\nignore = ["SQF002"]\n')
    write(tree / "svc_b" / "pyproject.toml", "[tool.sqla-fix]\n")
    write(tree / "svc_a" / "h.py", BUGGY)
    write(tree / "svc_b" / "h.py", BUGGY)
    forward = invoke("svc_a/h.py", "svc_b/h.py")
    backward = invoke("svc_b/h.py", "svc_a/h.py")
    assert findings(forward) == findings(backward) == ["svc_b/h.py"]
    assert findings(invoke(".")) == ["svc_b/h.py"]


def test_pyproject_without_a_table_is_passed_over_and_sqla_fix_toml_wins(tree):
    write(tree / "pyproject.toml", '[tool.sqla-fix]\nignore = ["SQF002"]\n')
    write(tree / "pkg" / "pyproject.toml", '[project]\nname = "pkg"\n')  # no [tool.sqla-fix]
    write(tree / "pkg" / "h.py", BUGGY)
    assert findings(invoke("pkg")) == []  # the settings above apply
    write(tree / "pkg" / "sqla-fix.toml", 'select = ["SQF"]\n')  # keys at the top level
    assert findings(invoke("pkg")) == ["pkg/h.py"]
    write(tree / "pkg" / ".sqla-fix.toml", 'ignore = ["SQF002"]\n')  # the dotted name comes first
    assert findings(invoke("pkg")) == []
    # The project root is still pkg/ (its pyproject.toml), whatever file the settings come from.
    assert load(str(tree / "pkg" / "h.py")).root == str(tree / "pkg")


def test_config_option_names_one_file_for_every_file(tree):
    write(tree / "svc_a" / "pyproject.toml", '[tool.sqla-fix]\nignore = ["SQF002"]\n')
    write(tree / "svc_a" / "h.py", BUGGY)
    write(tree / "strict.toml", 'select = ["SQF002"]\nexclude = ["other/**"]\n')
    assert findings(invoke("svc_a")) == []
    assert findings(invoke("--config", "strict.toml", "svc_a")) == ["svc_a/h.py"]
    write(tree / "ci" / "pyproject.toml", '[tool.sqla-fix]\nignore = ["SQF"]\n')
    assert findings(invoke("--config", "ci/pyproject.toml", "svc_a")) == []
    res = invoke("--config", "missing.toml", "svc_a")
    assert res.exit_code == 2 and "no such configuration file" in res.output


def test_exclude_applies_to_named_files_only_with_force_exclude(tree):
    write(tree / "pyproject.toml", '[tool.sqla-fix]\nexclude = ["migrations/"]\n')
    write(tree / "migrations" / "v1.py", BUGGY)
    write(tree / "app" / "h.py", BUGGY)
    assert findings(invoke(".")) == ["app/h.py"]
    assert findings(invoke("migrations/v1.py")) == ["migrations/v1.py"]  # named: checked
    res = invoke("--force-exclude", "migrations/v1.py", "app/h.py")
    assert findings(res) == ["app/h.py"]
    assert invoke("--force-exclude", "migrations/v1.py").exit_code == 0
    # The command line's --exclude is forced the same way.
    assert invoke("--force-exclude", "--exclude", "app/h.py", "app/h.py").exit_code == 0


def test_globs_are_gitignore_style(tree):
    for name in ("a.py", "b.py", "c.py"):
        write(tree / "pkg" / name, BUGGY)
    assert findings(invoke("--exclude", "pkg/[ab].py", ".")) == ["pkg/c.py"]
    assert findings(invoke("--exclude", "*.py", "--exclude", "!c.py", ".")) == ["pkg/c.py"]
    # Anchored to the configuration file's directory: /pkg matches here only.
    write(tree / "pyproject.toml", '[tool.sqla-fix]\nexclude = ["/pkg"]\n')
    write(tree / "lib" / "pkg" / "d.py", BUGGY)
    assert findings(invoke(".")) == ["lib/pkg/d.py"]


def test_per_file_ignores_and_extend_select(tree):
    write(tree / "pyproject.toml", '[tool.sqla-fix]\nselect = ["SQF001"]\nextend-select = ["SQF002"]\n'
          '[tool.sqla-fix.per-file-ignores]\n"tests/**" = ["SQF002"]\n"!src/**" = ["SQF0"]\n')
    write(tree / "tests" / "test_h.py", BUGGY)
    write(tree / "src" / "h.py", BUGGY)
    write(tree / "other" / "h.py", BUGGY)
    assert findings(invoke(".")) == ["src/h.py"]
    # An ignored rule is not fixed either.
    res = CliRunner().invoke(cli, ["apply", "--dry-run", "--no-cache", "tests/test_h.py"])
    assert res.exit_code == 0 and "+++" not in res.output


def test_extend_select_on_the_command_line(tree):
    write(tree / "pyproject.toml", '[tool.sqla-fix]\nselect = ["SQF001"]\n')
    write(tree / "h.py", BUGGY)
    assert findings(invoke(".")) == []
    assert findings(invoke("--extend-select", "SQF002", ".")) == ["h.py"]
    # The command line's --select replaces the configured extend-select too.
    write(tree / "pyproject.toml", '[tool.sqla-fix]\nselect = ["SQF001"]\nextend-select = ["SQF002"]\n')
    assert findings(invoke(".")) == ["h.py"]
    assert findings(invoke("--select", "SQF001", ".")) == []


@pytest.mark.parametrize("toml, message", [
    ('selec = ["SQF002"]', "unknown key 'selec'"),
    ("select = [", "pyproject.toml"),  # bad TOML
    ('select = "SQF002"', "select must be a list of strings"),
    ("unsafe-fixes = 1", "unsafe-fixes must be true or false"),
    ('exclude = "migrations"', "exclude must be a list of strings"),
    ('ignore = ["XYZ1"]', "unknown rule code 'XYZ1'"),
    ('per-file-ignores = ["x"]', "per-file-ignores must be a table"),
    ('session-factories = { "a.b" = { async = "yes" } }', "must be true or false"),
])
def test_every_configuration_error_exits_2(tree, toml, message):
    write(tree / "pyproject.toml", f"[tool.sqla-fix]\n{toml}\n")
    write(tree / "h.py", BUGGY)
    res = invoke(".")
    assert res.exit_code == 2, res.output
    assert message in res.output
    with pytest.raises(ConfigError):
        load(str(tree))


def test_configuration_error_in_a_nested_file_also_exits_2(tree):
    write(tree / "h.py", BUGGY)
    write(tree / "svc" / "sqla-fix.toml", "bogus = 1\n")
    write(tree / "svc" / "x.py", BUGGY)
    res = invoke(".")
    assert res.exit_code == 2 and "unknown key 'bogus'" in res.output


def test_a_pyproject_that_never_names_the_tool_is_not_read_as_settings(tree):
    """A project template's pyproject.toml (`{{ placeholders }}`, not TOML) under the tree:
    it cannot hold settings of ours, so it neither stops the run nor changes the settings of
    the files beside it; a broken one that does name the tool still exits 2."""
    write(tree / "pyproject.toml", '[tool.sqla-fix]\nignore = ["SQF002"]\n')
    write(tree / "h.py", BUGGY)
    write(tree / "template" / "{{name}}" / "pyproject.toml", "[project]\n{% if x %}\nname = 1\n{% endif %}\n")
    write(tree / "template" / "{{name}}" / "x.py", BUGGY)
    res = invoke(".")
    assert res.exit_code == 0, res.output
    assert findings(res) == []  # the root's ignore applies to the template's files too
    write(tree / "pyproject.toml", "[tool.sqla-fix]\n")
    assert findings(invoke(".")) == ["h.py", "template/{{name}}/x.py"]
    write(tree / "template" / "{{name}}" / "pyproject.toml", "[tool.sqla-fix]\n{% if x %}\n")
    assert invoke(".").exit_code == 2


def test_force_exclude_with_stdin_leaves_the_source_alone(tree):
    write(tree / "pyproject.toml", '[tool.sqla-fix]\nexclude = ["migrations/"]\n')
    args = ["-", "--stdin-filename", "migrations/v1.py"]
    checked = CliRunner().invoke(cli, ["check", *args], input=BUGGY)
    assert checked.exit_code == 1  # named: checked
    skipped = CliRunner().invoke(cli, ["check", "--force-exclude", *args], input=BUGGY)
    assert skipped.exit_code == 0 and "SQF002" not in skipped.output
    fixed = CliRunner().invoke(cli, ["apply", "--force-exclude", *args], input=BUGGY)
    assert fixed.exit_code == 0 and fixed.output == BUGGY


def test_an_excluded_directory_is_pruned_even_where_a_nested_configuration_starts(tree):
    write(tree / "pyproject.toml", '[tool.sqla-fix]\nexclude = ["vendor/"]\n')
    write(tree / "vendor" / "lib" / "pyproject.toml", "[tool.sqla-fix]\n")
    write(tree / "vendor" / "lib" / "h.py", BUGGY)
    write(tree / "app" / "h.py", BUGGY)
    assert findings(invoke(".")) == ["app/h.py"]
    assert findings(invoke("vendor/lib")) == ["vendor/lib/h.py"]  # named: its own settings
    assert findings(invoke("--force-exclude", "vendor/lib/h.py", "app/h.py")) == ["app/h.py"]


MODELS = "from sqlalchemy.orm import DeclarativeBase\n\n\nclass Base(DeclarativeBase):\n    pass\n"
USES = "from sqlalchemy.orm import Session\n\nfrom app.models import Base\n\n\ndef f(db: Session):\n    db.add(Base())\n"


def test_nested_projects_are_indexed_separately(tree):
    """Two services with the same package names: each has its own index, so imports between
    their modules are not ambiguous."""
    write(tree / "pyproject.toml", "[tool.sqla-fix]\n")
    for svc in ("svc_a", "svc_b"):
        write(tree / svc / "pyproject.toml", '[project]\nname = "x"\n')
        write(tree / svc / "app" / "__init__.py", "")
        write(tree / svc / "app" / "models.py", MODELS)
        write(tree / svc / "app" / "uses.py", USES)
    write(tree / "tools" / "uses.py", USES)  # the outer project: its index holds no service
    res = CliRunner().invoke(cli, ["check", "--no-cache", "."])
    assert res.exit_code == 0, res.output
    assert "matches several modules" not in res.output
