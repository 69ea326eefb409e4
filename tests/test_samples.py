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
}

PAIRS = sorted(
    (before, before.with_name(before.name.replace("_before.py", "_after.py")))
    for before in SAMPLES.glob("sqf*/*_before.py")
)


def _run_program(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-W", "ignore", str(path)], capture_output=True,
                          text=True, timeout=120, cwd=path.parent)


def test_every_pass_has_samples():
    from codemods.passes import ALL_PASSES

    have = {before.parent.name.split("_")[0] for before, _ in PAIRS}
    for p in ALL_PASSES:
        if p.fix_safety != "none":
            assert p.code.lower() in have, f"{p.code} has no runnable sample"


@pytest.mark.parametrize("before,after", PAIRS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_before_fails_with_the_sqlalchemy_error(before, after):
    proc = _run_program(before)
    assert proc.returncode != 0
    expected = EXPECTED_ERROR[before.parent.name.split("_")[0]]
    assert expected in proc.stderr


@pytest.mark.parametrize("before,after", PAIRS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sqla_fix_turns_before_into_after(before, after):
    rel = before.relative_to(SAMPLES)
    proc = run_cli("apply", "-", "--stdin-filename", str(rel), cwd=SAMPLES, input=before.read_bytes())
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
    """`apply --yes` on a copy of samples/ writes each `after`; a second run changes nothing."""
    import shutil

    copy = tmp_path / "samples"
    shutil.copytree(SAMPLES, copy)
    first = run_cli("apply", "--yes", ".", cwd=copy)
    assert first.returncode == 0, first.stderr.decode()
    for before, after in PAIRS:
        fixed = copy / before.relative_to(SAMPLES)
        assert fixed.read_text() == after.read_text()
        assert _run_program(fixed).returncode == 0
    second = run_cli("apply", "--yes", ".", cwd=copy)
    assert second.returncode == 0
    assert b"wrote 0 files" in second.stderr
