"""What `check` and `apply` print: # noqa, --exit-zero, --output-file, --statistics,
--show-fixes, --quiet, colours, GitHub annotations and SARIF validated against its schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from snippets import BUG_LINE, BUGGY, FIXED

from codemods import HOMEPAGE, sarif
from codemods.cli import _color, cli
from codemods.passes import ALL_PASSES
from codemods.sarif import replacements, rule_anchor

ROOT = Path(__file__).resolve().parent.parent
# Syntax error on line 2; the first line makes it worth parsing.
BROKEN = b"from sqlalchemy.orm import Session\nif (:\n    db.add(x)\n"
SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "visits.py").write_text(BUGGY)
    return tmp_path


def invoke(*args: str):
    return CliRunner().invoke(cli, [*args], catch_exceptions=False)


# --------------------------------------------------------------------------- noqa


@pytest.mark.parametrize("comment, suppressed", [
    ("  # noqa", True),
    ("  # noqa: SQF002", True),
    ("  # noqa:SQF001,SQF002", True),
    ("  # NOQA: E501 SQF002", True),
    ("  # noqa: E501", False),  # another tool's code only
    ("  # noqa: SQF001", False),
    ("  # noqa:", False),  # a colon and no code
    ("  # sqla-fix: ignore[SQF002]", True),
])
def test_noqa_comments(project, comment, suppressed):
    (project / "pkg" / "visits.py").write_text(BUGGY.replace(BUG_LINE, BUG_LINE + comment))
    res = invoke("check", "--no-cache", "pkg")
    assert res.exit_code == (0 if suppressed else 1), res.output
    # A suppressed finding is not fixed either.
    fixed = invoke("apply", "--dry-run", "--no-cache", "pkg")
    assert ("+    user = db.merge(user)" in fixed.output) is not suppressed


# --------------------------------------------------------------------------- options


def test_exit_zero_keeps_findings_but_not_usage_errors(project):
    res = invoke("check", "--exit-zero", "pkg")
    assert res.exit_code == 0 and "SQF002" in res.output
    assert invoke("check", "--exit-zero", "missing").exit_code == 2


def test_output_file(project):
    res = invoke("check", "--format", "json", "--output-file", "out.json", "pkg")
    assert res.exit_code == 1 and res.output == ""
    assert json.loads((project / "out.json").read_text())["findings"][0]["code"] == "SQF002"
    bad = invoke("check", "--output-file", "no/such/dir/out.txt", "pkg")
    assert bad.exit_code == 2 and "cannot write" in bad.output


def test_statistics(project):
    (project / "pkg" / "more.py").write_text(BUGGY)
    res = invoke("check", "--statistics", "pkg")
    assert res.exit_code == 1
    assert res.output == "2\tSQF002\t[*] merge-foreign-instance\n"
    data = json.loads(invoke("check", "--statistics", "--format", "json", "pkg").output)
    assert data == [{"code": "SQF002", "name": "merge-foreign-instance", "count": 2, "fixable": True}]


def test_show_fixes_and_quiet(project):
    res = invoke("check", "--show-fixes", "--quiet", "pkg")
    lines = res.output.splitlines()
    assert lines[0].startswith("pkg/visits.py:6:5: SQF002")
    assert "    +    user = db.merge(user)" in lines and "    --- a/pkg/visits.py" in lines
    assert "Found 1 finding" not in res.output  # --quiet: no summary
    applied = CliRunner().invoke(cli, ["apply", "--yes", "--allow-dirty", "--show-fixes", "pkg"])
    assert applied.exit_code == 0
    assert "Fixed 1 finding:\n- pkg/visits.py:\n    1 × SQF002 (merge-foreign-instance)\n" in applied.output
    assert (project / "pkg" / "visits.py").read_text() == FIXED
    quiet = CliRunner().invoke(cli, ["apply", "--yes", "--quiet", "pkg"])
    assert quiet.output == ""


def test_colour_follows_no_color_then_force_color(monkeypatch):
    class Pipe:
        def isatty(self) -> bool:
            return False

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    assert not _color(Pipe())
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert _color(Pipe())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not _color(Pipe())


def test_force_color_colours_the_diff_on_a_pipe(project, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert "\x1b[" in invoke("apply", "--dry-run", "pkg").output
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in invoke("apply", "--dry-run", "pkg").output


# --------------------------------------------------------------------------- GitHub


def check_odd_names(project: Path, buggy: str, fmt: str):
    """`check --format fmt` of the project plus a buggy file named ``buggy`` and a file that
    does not parse."""
    (project / buggy).parent.mkdir(parents=True)
    (project / buggy).write_text(BUGGY)
    (project / "broken.py").write_bytes(BROKEN)
    return invoke("check", "--format", fmt, ".")


def unescape(value: str) -> str:
    return value.replace("%3A", ":").replace("%2C", ",").replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def test_github_annotations_escape_properties_and_data(project):
    res = check_odd_names(project, "a,b:c%d/h.py", "github")
    lines = res.output.splitlines()
    warning = next(line for line in lines if line.startswith("::warning") and "%2C" in line)
    props, message = re.match(r"::warning (.*?)::(.*)", warning).groups()
    fields = dict(p.split("=", 1) for p in props.split(","))  # a bare `,` only separates
    assert unescape(fields["file"]) == "a,b:c%d/h.py"
    assert fields["line"] == "6" and fields["col"] == "5"
    assert message.startswith("SQF002 ")
    error = next(line for line in lines if line.startswith("::error"))
    props, message = re.match(r"::error (.*?)::(.*)", error).groups()
    fields = dict(p.split("=", 1) for p in props.split(","))
    assert fields["file"] == "broken.py" and fields["line"] == "2" and "col" in fields
    assert message.startswith("syntax error")


def test_readme_vs_code_matcher_matches_findings_and_errors(project):
    readme = (ROOT / "README.md").read_text()
    regexps = re.findall(r'"regexp": "(.*?)",', readme)
    assert regexps
    (project / "broken.py").write_bytes(BROKEN)
    res = invoke("check", "--format", "concise", ".")  # stdout and stderr, as a task shows them
    lines = [line for line in res.output.splitlines() if line]
    matchers = [re.compile(json.loads(f'"{rx}"')) for rx in regexps]
    assert len(matchers) == 2  # findings, then errors
    finding = next(line for line in lines if line.startswith("pkg/visits.py:6:5: SQF002"))
    error = next(line for line in lines if line.startswith("broken.py:2:"))
    assert matchers[0].match(finding) and not matchers[1].match(finding)
    assert matchers[1].match(error) and not matchers[0].match(error)
    assert matchers[1].match(error).group(4).startswith("syntax error")


# --------------------------------------------------------------------------- SARIF


def validate(document: dict) -> None:
    validator = jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(document), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def test_the_schema_checks_uri_formats():
    """The validation below would be hollow if `format: uri` were not checked."""
    bad = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x", "informationUri": "not a uri"}}}]}
    with pytest.raises(AssertionError):
        validate(bad)


def test_sarif_validates_and_carries_fixes_columns_and_help(project):
    res = check_odd_names(project, "my dir/h é.py", "sarif")
    document = json.loads(res.output)
    validate(document)
    run = document["runs"][0]
    assert run["columnKind"] == "unicodeCodePoints"
    uris = sorted(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"])
    assert uris == ["my%20dir/h%20%C3%A9.py", "pkg/visits.py"]
    result = next(r for r in run["results"] if r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                  == "pkg/visits.py")
    (change,) = result["fixes"][0]["artifactChanges"]
    assert apply_replacements(BUGGY, change["replacements"]) == FIXED
    (note,) = run["invocations"][0]["toolExecutionNotifications"]
    assert note["locations"][0]["physicalLocation"]["region"]["startLine"] == 2
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == {p.code for p in ALL_PASSES}


def test_rule_help_points_at_a_readme_heading():
    readme = (ROOT / "README.md").read_text()
    headings = {re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
                for line in readme.splitlines() if line.startswith("#")}
    for p in ALL_PASSES:
        assert rule_anchor(p) in headings, p.code
    for rule in sarif.document([], [])["runs"][0]["tool"]["driver"]["rules"]:
        assert rule["helpUri"].startswith(HOMEPAGE + "/blob/main/README.md#")
        assert rule["helpUri"].split("#")[1] in headings


def test_replacements_of_a_diff_with_two_hunks():
    old = "".join(f"line {i}\n" for i in range(1, 21))
    new = old.replace("line 2\n", "line two\n").replace("line 19\n", "line 19\nadded\n")
    import difflib

    diff = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), "a/x", "b/x"))
    assert len(replacements(diff)) == 2
    assert apply_replacements(old, replacements(diff)) == new


def apply_replacements(text: str, changes: list[dict]) -> str:
    """Apply SARIF replacements (line and column regions, a line's break part of the line)."""
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    for change in sorted(changes, key=lambda c: c["deletedRegion"]["startLine"], reverse=True):
        region = change["deletedRegion"]
        begin = starts[region["startLine"] - 1] + region["startColumn"] - 1
        end = starts[region["endLine"] - 1] + region["endColumn"] - 1
        text = text[:begin] + change["insertedContent"]["text"] + text[end:]
    return text
