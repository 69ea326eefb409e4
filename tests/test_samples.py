"""The samples are the proof that the fixes fix: each `before` really fails with the
SQLAlchemy error, sqla-fix rewrites it into exactly the committed `after`, and `after` runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

SAMPLES = ROOT / "samples"

# What each pass's `before` samples raise.
EXPECTED_ERROR = {
    "sqf001": "DetachedInstanceError",
    "sqf002": "is already attached to session",
    "sqf003": "DetachedInstanceError",
    "sqf005": "DetachedInstanceError",
    "sqf009": "PendingRollbackError",
    "sqf010": "MissingGreenlet",
    "sqf011": "QueuePool limit of size 1 overflow 0 reached",
}
# Passes whose bug raises nothing: `before` runs clean but prints the wrong result, which it
# names with this marker; `after` must not print it.
WRONG_RESULT = {"sqf008": "lost update"}
# Passes whose fix is hygiene: `before` runs clean and `after` must behave exactly the same.
SAME_BEHAVIOUR = {"sqf004"}
# Report-only passes: a program that shows the bug, which sqla-fix must report.
REPORTED = {
    "sqf006": ("SQF006", "MissingGreenlet"),
    "sqf007": ("SQF007", "FOREIGN KEY constraint failed"),
}
# Report-only passes with a before/after pair: `before` runs clean but prints the wrong result
# (named by the marker) and sqla-fix reports it without changing it; `after`, fixed by hand,
# prints the right result and is left alone.
REPORTED_PAIRS = {"sqf012": ("SQF012", "lost update")}

PAIRS = sorted(
    (before, before.with_name(before.name.replace("_before.py", "_after.py")))
    for before in SAMPLES.glob("sqf*/*_before.py")
)
SHOWCASES = sorted(p for code in REPORTED for p in SAMPLES.glob(f"{code}_*/*.py"))


def _run_program(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-W", "ignore", str(path)], capture_output=True,
                          text=True, timeout=120, cwd=path.parent)


def _code(path: Path) -> str:
    return path.parent.name.split("_")[0]


FIXED_PAIRS = [(b, a) for b, a in PAIRS if _code(b) not in REPORTED_PAIRS]
REPORTED_ONLY_PAIRS = [(b, a) for b, a in PAIRS if _code(b) in REPORTED_PAIRS]


def test_every_pass_has_samples():
    from codemods.passes import ALL_PASSES

    have = {_code(before) for before, _ in PAIRS} | {_code(p) for p in SHOWCASES}
    for p in ALL_PASSES:  # report-only rules too: a program that shows the bug
        assert p.code.lower() in have, f"{p.code} has no runnable sample"


@pytest.mark.parametrize("before,after", PAIRS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_before_fails_with_the_sqlalchemy_error(before, after):
    proc = _run_program(before)
    if _code(before) in SAME_BEHAVIOUR:
        assert proc.returncode == 0, proc.stderr
        fixed = _run_program(after)
        assert fixed.returncode == 0, fixed.stderr
        assert fixed.stdout == proc.stdout and proc.stdout
        return
    if _code(before) in WRONG_RESULT or _code(before) in REPORTED_PAIRS:
        marker = WRONG_RESULT.get(_code(before)) or REPORTED_PAIRS[_code(before)][1]
        assert proc.returncode == 0, proc.stderr
        assert marker in proc.stdout
        fixed = _run_program(after)
        assert fixed.returncode == 0, fixed.stderr
        assert marker not in fixed.stdout and fixed.stdout
        return
    assert proc.returncode != 0
    assert EXPECTED_ERROR[_code(before)] in proc.stderr


@pytest.mark.parametrize("program", SHOWCASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_report_only_bugs_fail_and_are_reported(program):
    code, error = REPORTED[_code(program)]
    proc = _run_program(program)
    assert proc.returncode != 0 and error in proc.stderr
    check = run_cli("check", "--select", code, str(program.relative_to(SAMPLES)), cwd=SAMPLES)
    assert check.returncode == 1
    assert f": {code} " in check.stdout.decode()


@pytest.mark.parametrize("before,after", REPORTED_ONLY_PAIRS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_report_only_pair_is_reported_and_left_as_it_is(before, after):
    code, _ = REPORTED_PAIRS[_code(before)]
    rel = before.relative_to(SAMPLES)
    check = run_cli("check", "--select", code, str(rel), cwd=SAMPLES)
    assert check.returncode == 1
    assert f"{rel}:" in check.stdout.decode() and f": {code} " in check.stdout.decode()
    proc = run_cli("apply", "-", "--unsafe-fixes", "--stdin-filename", str(rel), cwd=SAMPLES,
                   input=before.read_bytes())
    assert proc.stdout.decode() == before.read_text(), proc.stderr.decode()


@pytest.mark.parametrize("before,after", FIXED_PAIRS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sqla_fix_turns_before_into_after(before, after):
    rel = before.relative_to(SAMPLES)
    proc = run_cli("apply", "-", "--unsafe-fixes", "--stdin-filename", str(rel), cwd=SAMPLES,
                   input=before.read_bytes())
    assert proc.stdout.decode() == after.read_text(), proc.stderr.decode()
    assert proc.returncode == 0, proc.stderr.decode()


@pytest.mark.parametrize("before,after", PAIRS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_after_runs_clean_and_is_left_alone(before, after):
    proc = _run_program(after)
    assert proc.returncode == 0, proc.stderr
    rel = after.relative_to(SAMPLES)
    check = run_cli("check", str(rel), cwd=SAMPLES)
    assert check.returncode == 0, check.stdout.decode()


def test_apply_yes_fixes_copies_of_the_samples(tmp_path):
    """`apply --yes` on a copy of samples/ writes each `after`; a second run changes nothing.
    What is left is exactly the report-only findings: the showcase programs and the `before`
    of the report-only pairs, which stay as they are."""
    import shutil

    copy = tmp_path / "samples"
    shutil.copytree(SAMPLES, copy)
    first = run_cli("apply", "--yes", "--unsafe-fixes", ".", cwd=copy)
    left = first.stdout.decode().splitlines()
    reported = [code for code, _ in REPORTED.values()] + [code for code, _ in REPORTED_PAIRS.values()]
    assert left and all(any(f": {code} " in line for code in reported) for line in left), left
    assert first.returncode == 1, first.stderr.decode()
    for before, after in PAIRS:
        fixed = copy / before.relative_to(SAMPLES)
        assert fixed.read_text() == (after if (before, after) in FIXED_PAIRS else before).read_text()
        assert _run_program(fixed).returncode == 0
    second = run_cli("apply", "--yes", "--unsafe-fixes", ".", cwd=copy)
    assert b"wrote 0 files" in second.stderr
    assert second.stdout.decode().splitlines() == left
