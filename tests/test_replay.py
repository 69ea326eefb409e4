"""A re-run of `check` with nothing changed is answered from the record of the last run of the
same command, before the command line is loaded; any change goes the normal way.

The runs are processes (`python -m codemods`): what is tested is what reaches the real stdout
and stderr, and which modules the run loaded (a replay loads neither click nor the command
line). Timings belong in `make bench`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from snippets import BUGGY, FIXED

from codemods import replay

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, runpy, sys
sys.argv = ["sqla-fix", *json.loads(sys.argv[1])]
code = 0
try:
    runpy.run_module("codemods", run_name="__main__")
except SystemExit as exc:
    code = exc.code
sys.stdout.flush()
sys.stderr.flush()
with open(PROBE_OUT, "w") as fh:
    json.dump({"code": code, "normal": "codemods.cli" in sys.modules}, fh)
"""


@dataclass
class Run:
    stdout: bytes
    stderr: bytes
    code: int
    normal: bool  # went the normal way (the command line was loaded)


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> Run:
    with tempfile.TemporaryDirectory() as folder:  # outside the project: it is watched
        out = Path(folder) / "probe.json"
        probe = PROBE.replace("PROBE_OUT", repr(str(out)))
        proc = subprocess.run([sys.executable, "-c", probe, json.dumps(args)], cwd=cwd, capture_output=True,
                              timeout=300, env={"PYTHONPATH": str(ROOT), "GIT_CEILING_DIRECTORIES": str(cwd.parent),
                                                "PATH": "/usr/bin:/bin", **(env or {})})
        facts = json.loads(out.read_text())
    return Run(proc.stdout, proc.stderr, facts["code"], facts["normal"])


def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "app").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "0"\n')
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "visits.py").write_text(BUGGY)
    (root / "app" / "plain.py").write_text("def total(values):\n    return sum(values)\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)  # the listing comes from git
    return root


def recorded(root: Path, args: list[str], env: dict[str, str] | None = None) -> Run:
    """Two runs: the first makes the caches (and changes the root's stamp, so it is not
    recorded), the second is recorded. Returns the second."""
    run(args, root, env)
    second = run(args, root, env)
    assert second.normal
    return second


@pytest.mark.parametrize("args", [
    ["check", "."],
    ["check", "--format", "json", "app"],
    ["check", "--show-fixes", "--statistics", "app/visits.py"],
    ["check", "--format", "concise", "--select", "SQF002", "."],
])
def test_the_replay_is_byte_for_byte_the_normal_run(tmp_path, args):
    root = project(tmp_path)
    normal = recorded(root, args)
    assert b"SQF002" in normal.stdout
    again = run(args, root)
    assert not again.normal
    assert (again.stdout, again.stderr, again.code) == (normal.stdout, normal.stderr, normal.code)


def test_stderr_and_the_exit_status_are_replayed_too(tmp_path):
    # A warning on stderr (modules imported under two names) and exit status 0 with --exit-zero.
    root = project(tmp_path)
    for sub in ("one", "two"):
        (root / sub / "app").mkdir(parents=True)
        (root / sub / "app" / "__init__.py").write_text("")
        (root / sub / "app" / "models.py").write_text("X = 1\n")
    (root / "app" / "uses.py").write_text("from app.models import X\n")
    args = ["check", "--exit-zero", "."]
    normal = recorded(root, args)
    assert normal.code == 0
    again = run(args, root)
    assert not again.normal
    assert (again.stdout, again.stderr, again.code) == (normal.stdout, normal.stderr, normal.code)


def touch(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


@pytest.mark.parametrize("change", ["touch a file", "edit a file", "add a file", "remove a file",
                                    "change the configuration", "add a configuration file",
                                    "add a .gitignore", "change the environment"])
def test_any_change_goes_the_normal_way(tmp_path, change):
    root = project(tmp_path)
    args = ["check", "."]
    normal = recorded(root, args)
    env = None
    if change == "touch a file":
        touch(root / "app" / "plain.py")
    elif change == "edit a file":  # same size: only the stamps tell
        text = (root / "app" / "visits.py").read_text()
        (root / "app" / "visits.py").write_text(text.replace("user_id", "user_ix"))
    elif change == "add a file":
        (root / "app" / "more.py").write_text(BUGGY)
    elif change == "remove a file":
        (root / "app" / "visits.py").unlink()
    elif change == "change the configuration":
        with open(root / "pyproject.toml", "a") as fh:
            fh.write('\n[tool.sqla-fix]\nignore = ["SQF002"]\n')
    elif change == "add a configuration file":
        (root / "app" / "sqla-fix.toml").write_text('ignore = ["SQF002"]\n')
    elif change == "add a .gitignore":
        (root / ".gitignore").write_text("visits.py\n")
    else:
        env = {"NO_COLOR": "1"}
    again = run(args, root, env)
    assert again.normal
    expected = {"touch a file": True, "edit a file": True, "add a file": True, "change the environment": True}
    assert (b"SQF002" in again.stdout) == expected.get(change, False)
    if change == "add a file":
        assert again.stdout.count(b"SQF002") == 2 * normal.stdout.count(b"SQF002")
    # The normal run is recorded in turn (or, when it made a cache directory, the next one):
    # then the run replays.
    third = run(args, root, env)
    if third.normal:
        assert change == "add a configuration file"  # a project of its own, with its caches
        assert third.stdout == again.stdout
        third = run(args, root, env)
    assert not third.normal
    assert third.stdout == again.stdout


def test_another_option_or_directory_is_another_record(tmp_path):
    root = project(tmp_path)
    recorded(root, ["check", "."])
    other = run(["check", "--select", "SQF001", "."], root)
    assert other.normal and b"SQF002" not in other.stdout
    below = run(["check", "."], root / "app")
    assert below.normal  # the same command elsewhere
    assert not run(["check", "."], root).normal


def test_no_cache_neither_replays_nor_records(tmp_path):
    root = project(tmp_path)
    recorded(root, ["check", "."])
    (record,) = (root / ".sqla-fix-cache").glob("run-*")  # the plain command's
    for _ in range(2):
        assert run(["check", "--no-cache", "."], root).normal
    assert list((root / ".sqla-fix-cache").glob("run-*")) == [record]


def test_a_run_that_could_not_analyse_a_file_is_not_recorded(tmp_path):
    root = project(tmp_path)
    (root / "app" / "broken.py").write_text("from sqlalchemy.orm import Session\n\ndef broken(db: Session:\n    db.add(1)\n")
    args = ["check", "."]
    first = run(args, root)
    assert b"syntax error" in first.stderr
    for _ in range(2):
        assert run(args, root).normal
    assert list((root / ".sqla-fix-cache").glob("run-*")) == []


def test_a_damaged_record_goes_the_normal_way(tmp_path):
    root = project(tmp_path)
    normal = recorded(root, ["check", "."])
    (record,) = (root / ".sqla-fix-cache").glob("run-*")
    data = record.read_bytes()
    assert data.startswith(replay.MAGIC)
    for damaged in (data[: len(data) // 2], data.replace(b"SQF002", b"SQF0002"), data[1:], b"", b"{}"):
        record.write_bytes(damaged)
        again = run(["check", "."], root)
        assert again.normal and again.stdout == normal.stdout


def test_a_fix_in_the_file_changes_the_answer(tmp_path):
    root = project(tmp_path)
    normal = recorded(root, ["check", "."])
    assert b"SQF002" in normal.stdout
    (root / "app" / "visits.py").write_text(FIXED)
    again = run(["check", "."], root)
    assert again.normal and b"SQF002" not in again.stdout


@pytest.mark.parametrize("argv, ok", [
    (["check", "."], True),
    (["check", "--format", "json", "-q", "src"], True),
    (["check", "-j2", "."], True),
    (["check", "-", "--stdin-filename", "a.py"], False),
    (["check", "--no-cache", "."], False),
    (["check", "-o", "out.txt", "."], False),
    (["check", "--output-file=out.txt", "."], False),
    (["check", "-qo", "out.txt", "."], False),
    (["check", "--help"], False),
    (["apply", "--yes", "."], False),
    (["apply", "--dry-run", "."], False),
    (["rules"], False),
])
def test_only_check_writing_to_the_terminal_is_recorded(argv, ok):
    assert replay.eligible(argv) is ok


def _record_in_process(tmp_path, monkeypatch, change_during_run: bool) -> list[Path]:
    """A run recorded in this process: it depends on one file, prints, exits 1; the file is
    rewritten while it runs, or not."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".sqla-fix-cache").mkdir(exist_ok=True)
    watched = tmp_path / "watched.py"
    watched.write_text("x = 1\n")
    # Past the tick of a coarse clock the recorder allows for (it takes a change that close
    # to the run's start for one during the run): an order of events, not a timing.
    time.sleep(0.05)
    with pytest.raises(SystemExit):
        with replay.recording(["check", "."]):
            replay.depend(["watched.py"])
            print("watched.py: one finding")
            if change_during_run:
                watched.write_text("x = 2\n")
            raise SystemExit(1)
    return sorted((tmp_path / ".sqla-fix-cache").glob("run-*"))


def test_a_file_changed_while_the_run_reads_it_keeps_the_run_from_being_recorded(tmp_path, monkeypatch):
    unchanged, changed = tmp_path / "unchanged", tmp_path / "changed"
    unchanged.mkdir()
    changed.mkdir()
    assert len(_record_in_process(unchanged, monkeypatch, change_during_run=False)) == 1
    assert _record_in_process(changed, monkeypatch, change_during_run=True) == []
