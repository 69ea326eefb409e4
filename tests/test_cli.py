"""The command line: every command, option and exit code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from snippets import BUGGY, FIXED

from codemods.cli import cli
from codemods.passes import ALL_PASSES

CLEAN = "from sqlalchemy.orm import Session\n\n\ndef f(db: Session):\n    db.add(object())\n"
LINE = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<code>SQF\d{3}) (?P<msg>.+)$")


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.delenv("NO_COLOR", raising=False)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "visits.py").write_text(BUGGY)
    (tmp_path / "pkg" / "clean.py").write_text(CLEAN)
    return tmp_path


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_check_reports_findings_as_path_line_col_code_message(project):
    res = invoke("check", "pkg")
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if LINE.match(ln)]
    assert len(lines) == 1
    m = LINE.match(lines[0])
    assert m["path"] == "pkg/visits.py" and m["line"] == "6" and m["col"] == "5" and m["code"] == "SQF002"
    assert "Found 1 finding in 1 file (1 fixable" in res.output


def test_check_defaults_to_the_current_directory(project):
    assert invoke("check").exit_code == 1


def test_check_clean_exits_zero(project):
    res = invoke("check", "pkg/clean.py")
    assert res.exit_code == 0
    assert "No findings in 1 file." in res.output


def test_missing_path_is_a_usage_error(project):
    res = invoke("check", "nope")
    assert res.exit_code == 2
    assert "no such file or directory" in res.output


def test_select_and_ignore(project):
    assert invoke("check", "--ignore", "SQF002", "pkg").exit_code == 0
    assert invoke("check", "--select", "SQF002", "pkg").exit_code == 1
    assert invoke("check", "--select", "SQF", "--ignore", "SQF002", "pkg").exit_code == 0
    res = invoke("check", "--select", "SQF999", "pkg")
    assert res.exit_code == 2 and "unknown rule code" in res.output


def test_pyproject_configuration_and_command_line_wins(project):
    (project / "pyproject.toml").write_text('[tool.sqla-fix]\nignore = ["SQF002"]\n')
    assert invoke("check", "pkg").exit_code == 0
    assert invoke("check", "--select", "SQF002", "pkg").exit_code == 1


def test_pyproject_exclude(project):
    (project / "pyproject.toml").write_text('[tool.sqla-fix]\nexclude = ["pkg/visits.py"]\n')
    assert invoke("check", "pkg").exit_code == 0
    assert invoke("check", "pkg/visits.py").exit_code == 1  # named explicitly: always checked


def test_unknown_configuration_key_is_an_error(project):
    (project / "pyproject.toml").write_text('[tool.sqla-fix]\nselec = ["SQF002"]\n')
    res = invoke("check", "pkg")
    assert res.exit_code != 0 and "unknown key" in res.output


def test_exclude_option(project):
    assert invoke("check", "--exclude", "visits.py", "pkg").exit_code == 0
    assert invoke("check", "--exclude", "pkg/**", ".").exit_code == 0
    assert invoke("check", "--exclude", "other/**", ".").exit_code == 1


def test_json_format(project):
    res = invoke("check", "--format", "json", "pkg")
    assert res.exit_code == 1
    data = json.loads(res.output)
    (f,) = data["findings"]
    assert {k: f[k] for k in ("path", "line", "column", "code", "fixable")} == {
        "path": "pkg/visits.py", "line": 6, "column": 5, "code": "SQF002", "fixable": True}
    assert f["end_line"] == 6 and f["end_column"] == 17
    assert "--- a/pkg/visits.py" in f["fix"]["diff"]
    assert "+    user = db.merge(user)" in f["fix"]["diff"]
    assert f["fix"]["safe"] is True


def test_github_and_sarif_formats(project):
    gh = invoke("check", "--format", "github", "pkg")
    assert gh.output.startswith("::warning title=sqla-fix SQF002,file=pkg/visits.py,line=6,col=5")
    sarif = json.loads(invoke("check", "--format", "sarif", "pkg").output)
    assert sarif["version"] == "2.1.0"
    (result,) = sarif["runs"][0]["results"]
    assert result["ruleId"] == "SQF002"
    assert {r["id"] for r in sarif["runs"][0]["tool"]["driver"]["rules"]} == {p.code for p in ALL_PASSES}


def test_concise_has_no_summary(project):
    res = invoke("check", "--format", "concise", "pkg")
    assert res.output.count("\n") == 1 and LINE.match(res.output.strip())


def test_rules_and_explain():
    res = invoke("rules")
    assert res.exit_code == 0
    for p in ALL_PASSES:
        assert p.code in res.output and p.name in res.output
    page = invoke("explain", "SQF002")
    assert page.exit_code == 0
    assert "## Fix safety" in page.output and "await db.merge(current_user)" in page.output
    assert invoke("explain", "merge-foreign-instance").output == page.output
    assert json.loads(invoke("rules", "--format", "json").output)[0]["code"] == ALL_PASSES[0].code
    assert invoke("explain", "SQF999").exit_code == 2


def test_dry_run_prints_a_unified_diff_and_writes_nothing(project):
    res = invoke("apply", "--dry-run", "pkg")
    assert res.exit_code == 1
    assert "--- a/pkg/visits.py\n+++ b/pkg/visits.py\n@@ " in res.output
    assert "-    db.add(user)\n+    user = db.merge(user)\n" in res.output
    assert "\x1b[" not in res.output  # no colour off a terminal
    assert (project / "pkg" / "visits.py").read_text() == BUGGY


def test_apply_without_a_terminal_refuses_to_prompt(project):
    res = invoke("apply", "pkg")
    assert res.exit_code == 2
    assert "--yes" in res.output and "--dry-run" in res.output
    assert (project / "pkg" / "visits.py").read_text() == BUGGY


def test_apply_yes_writes_and_second_run_changes_nothing(project):
    res = invoke("apply", "--yes", "pkg")
    assert res.exit_code == 0, res.output
    assert (project / "pkg" / "visits.py").read_text() == FIXED
    again = invoke("apply", "--yes", "pkg")
    assert again.exit_code == 0 and "wrote 0 files" in again.output
    assert invoke("check", "pkg").exit_code == 0


def test_suppression_comments(project):
    path = project / "pkg" / "visits.py"
    path.write_text(BUGGY.replace("db.add(user)", "db.add(user)  # sqla-fix: ignore[SQF002]"))
    assert invoke("check", "pkg").exit_code == 0
    path.write_text(BUGGY.replace("db.add(user)", "db.add(user)  # sqla-fix: ignore"))
    assert invoke("check", "pkg").exit_code == 0
    path.write_text(BUGGY.replace("db.add(user)", "db.add(user)  # sqla-fix: ignore[SQF001]"))
    assert invoke("check", "pkg").exit_code == 1
    path.write_text("# sqla-fix: skip-file\n" + BUGGY)
    assert invoke("check", "pkg").exit_code == 0


def test_internal_error_in_a_pass_names_the_file_and_exits_2(project, monkeypatch):
    from codemods.passes.merge_foreign import MergeForeignInstance

    def boom(self, ctx, call):
        raise RuntimeError("boom")

    monkeypatch.setattr(MergeForeignInstance, "check_call", boom)
    res = invoke("apply", "--yes", "pkg")
    assert res.exit_code == 2
    assert "pkg/visits.py: internal error in merge_foreign.py" in res.output
    assert (project / "pkg" / "visits.py").read_text() == BUGGY


def test_an_internal_error_is_one_short_line_whatever_the_exception_prints(project, monkeypatch):
    from codemods.passes.merge_foreign import MergeForeignInstance

    class Node:  # a syntax node's repr spans hundreds of lines
        def __repr__(self) -> str:
            return "Node(\n" + "    field=...,\n" * 200 + ")"

    def boom(*args):
        raise KeyError(Node())

    monkeypatch.setattr(MergeForeignInstance, "check_call", boom)
    res = invoke("check", "pkg")
    assert res.exit_code == 2
    line = next(x for x in res.output.splitlines() if "internal error" in x)
    assert line.startswith("pkg/visits.py: internal error in merge_foreign.py") and "KeyError: " in line
    assert line.endswith("; file left unchanged") and len(line) < 260
    assert "field=" not in res.output


@pytest.fixture
def index_fails_on_clean(monkeypatch):
    """The index's extraction raises on `clean.py` (a bug of sqla-fix, not of the code)."""
    from codemods.index.extract import Extractor

    real = Extractor.module_level

    def fails_on_clean(self, tree):
        if self.facts.path.endswith("clean.py"):
            raise IndexError("list index out of range")
        return real(self, tree)

    monkeypatch.setattr(Extractor, "module_level", fails_on_clean)


def test_a_bug_of_the_index_on_one_file_is_reported_for_it_and_the_run_goes_on(project, index_fails_on_clean):
    """The index's extraction failing on one module is one line naming that file; the other
    files are indexed and checked as ever."""
    res = invoke("check", "-j", "1", "pkg")
    errors = [x for x in res.output.splitlines() if "clean.py" in x]
    assert errors == ["pkg/clean.py: not analysed: internal error in the index: IndexError: list index out of range"]
    assert "pkg/visits.py:" in res.output and "SQF002" in res.output  # the other file's finding
    assert res.exit_code == 2  # an internal error, as for a pass's


def test_a_bug_of_the_index_on_a_file_no_rule_reads_again_is_still_reported(project, index_fails_on_clean):
    """With only a rule that has nothing to look at in the file, the engine never extracts it
    again: the index's failure is that file's result, and the exit status says so."""
    res = invoke("check", "-j", "1", "--select", "SQF001", "pkg")
    assert [x for x in res.output.splitlines() if "clean.py" in x] == [
        "pkg/clean.py: not analysed: internal error in the index: IndexError: list index out of range"]
    assert res.exit_code == 2


def test_an_empty_subscript_in_an_annotation_is_read(project):
    """`EventType[()]`, `tuple[()]`: a subscript whose tuple has no element."""
    (project / "pkg" / "events.py").write_text(
        "from sqlalchemy.orm import Session\n\n\n"
        "def on_blur(db: Session, handler: EventType[()] | None = None) -> tuple[()]:\n"
        "    return ()\n\n\n"
        "def rows(db: Session) -> Iterator[()]:\n"
        "    yield from ()\n")
    res = invoke("check", "-j", "1", "pkg")
    assert "events.py" not in res.output and "internal error" not in res.output


def test_parallel_jobs_give_the_same_output_in_the_same_order(project):
    for i in range(24):
        (project / "pkg" / f"m{i:02d}.py").write_text(BUGGY if i % 3 == 0 else CLEAN)
    serial = invoke("apply", "--dry-run", "-j", "1", "pkg")
    parallel = invoke("apply", "--dry-run", "-j", "2", "pkg")
    assert serial.output == parallel.output
    headers = re.findall(r"^--- a/(\S+)$", parallel.output, re.M)
    assert headers == sorted(headers) and len(headers) == 9


def test_version():
    res = invoke("--version")
    assert res.exit_code == 0 and "sqla-fix" in res.output


SWALLOWING = '''\
from sqlalchemy.orm import sessionmaker

SessionLocal = sessionmaker()


def import_rows(rows) -> int:
    done = 0
    with SessionLocal() as session:
        for row in rows:
            try:
                session.add(row)
                session.commit()
                done += 1
            except ValueError:
                session.rollback()
                continue
    return done
'''


def test_unsafe_fixes_wait_for_the_flag(project):
    """SQF004 in a handler that goes on is an unsafe fix: reported, not applied by default."""
    path = project / "pkg" / "rows.py"
    path.write_text(SWALLOWING)
    res = invoke("apply", "--yes", "--select", "SQF004", "pkg/rows.py")
    assert res.exit_code == 1
    assert path.read_text() == SWALLOWING
    assert "unsafe fix (--unsafe-fixes)" in res.output
    summary = invoke("check", "--select", "SQF004", "pkg/rows.py").output
    assert "(0 fixable with `sqla-fix apply`, 1 more with `--unsafe-fixes`)" in summary
    res = invoke("apply", "--yes", "--unsafe-fixes", "--select", "SQF004", "pkg/rows.py")
    assert res.exit_code == 0, res.output
    assert "session.rollback()\n                session.expunge_all()\n" in path.read_text()
