"""One bad file never takes the run down: files too deeply nested for a parser, workers that
die, files that take too long, warnings from other people's code; files named on the command
line are always parsed; the index stays inside the project."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import run_cli
from snippets import BUGGY

from codemods import cli as cli_mod
from codemods import config as config_mod
from codemods import guard, writer
from codemods import project as project_mod

HEAD = "from sqlalchemy.orm import Session\n"
DEEP_SOURCES = {
    # libcst's native parser overflows the C stack on these (a segmentation fault)
    "brackets.py": HEAD + "x = " + "(" * 3000 + "1" + ")" * 3000 + "\n",
    "calls.py": HEAD + "x = " + "f(" * 2500 + ")" * 2500 + "\n",
    "lambdas.py": HEAD + "f = " + "lambda: " * 5000 + "1\n",
    # ... and Python's recursion limit on these
    "unary.py": HEAD + "x = " + "-" * 3000 + "1\n",
    "nots.py": HEAD + "x = " + "not " * 1500 + "1\n",
}


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def _invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli_mod.cli, list(args), env=env, catch_exceptions=False)


def _stderr_lines(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if name in line]


# --------------------------------------------------------------------------- deep nesting


@pytest.mark.parametrize("name", sorted(DEEP_SOURCES))
def test_too_deep_is_recognised_before_any_parser(name):
    with pytest.raises(guard.TooDeep):
        guard.check_depth(DEEP_SOURCES[name].encode())


def test_ordinary_nesting_and_many_lambdas_side_by_side_are_not_too_deep():
    flat = "handlers = {" + ", ".join(f"{i}: lambda x: x + {i}" for i in range(400)) + "}\n"
    rule = "# " + "-" * 400 + "\n"
    nested = "x = " + "[" * 150 + "]" * 150 + "\n"
    text = "'" + "(" * 300 + "'\n'" + ")" * 300 + "'\n"
    for source in (flat, rule, nested, text):
        guard.check_depth(source.encode())


def test_deep_files_beside_a_real_finding_single_process(tmp_path):
    """In one process (-j1) the crashers never reach the parser: the run survives, reports the
    finding, and names each deep file once."""
    _write(tmp_path, {"good.py": BUGGY, **DEEP_SOURCES})
    proc = run_cli("check", "-j", "1", "--no-cache", ".", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert b"good.py:" in proc.stdout and b"SQF002" in proc.stdout
    err = proc.stderr.decode()
    for name in DEEP_SOURCES:
        lines = _stderr_lines(err, name)
        assert len(lines) == 1 and "too deeply nested" in lines[0], err


def test_deep_file_in_apply_is_left_alone(tmp_path):
    _write(tmp_path, {"good.py": BUGGY, "brackets.py": DEEP_SOURCES["brackets.py"]})
    result = _invoke("apply", "--yes", "--allow-dirty", "--no-cache", "-j", "1", str(tmp_path))
    assert result.exit_code == 1
    assert (tmp_path / "brackets.py").read_text() == DEEP_SOURCES["brackets.py"]
    assert (tmp_path / "good.py").read_text() != BUGGY


def _many(root: Path, n: int = 20) -> None:
    """Enough files for the run to use worker processes."""
    files = {"good.py": BUGGY}
    files.update({f"clean{i:02}.py": f"import sqlalchemy\nX{i} = {i}\n" for i in range(n)})
    files["victim.py"] = "from sqlalchemy.orm import Session\n\ndef f(db: Session):\n    db.commit()\n"
    _write(root, files)


def test_a_worker_killed_by_a_signal_is_replaced(tmp_path):
    _many(tmp_path)
    proc = run_cli("check", "-j", "2", "--no-cache", ".", cwd=tmp_path,
                   env={guard.KILL_HOOK: "victim.py"})
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert b"good.py:" in proc.stdout and b"SQF002" in proc.stdout
    lines = _stderr_lines(err, "victim.py")
    assert len(lines) == 1 and "SIGKILL" in lines[0] and "not analysed" in lines[0], err
    assert "internal error" not in err


def test_a_file_over_its_time_limit_is_reported_single_process(tmp_path):
    _write(tmp_path, {"good.py": BUGGY, "slow.py": "import sqlalchemy\n"})
    result = _invoke("check", "-j", "1", "--no-cache", "--file-timeout", "4", str(tmp_path),
                     env={guard.HANG_HOOK: "slow.py"})
    assert result.exit_code == 1
    assert "SQF002" in result.stdout
    lines = _stderr_lines(result.stderr, "slow.py")
    assert len(lines) == 1 and "took longer than 4 s" in lines[0]


def test_a_worker_over_its_time_limit_is_killed_and_replaced(tmp_path):
    """In a worker the hook also blocks the timer signal, as a hang in native code would: the
    pool kills the worker and the run completes."""
    _many(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.sqla-fix]\nfile-timeout = 4\n")
    proc = run_cli("check", "-j", "2", "--no-cache", ".", cwd=tmp_path, env={guard.HANG_HOOK: "victim.py"})
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert b"SQF002" in proc.stdout
    lines = _stderr_lines(err, "victim.py")
    assert len(lines) == 1 and "took longer than 4 s" in lines[0], err


def test_file_timeout_must_be_positive(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.sqla-fix]\nfile-timeout = 0\n")
    (tmp_path / "a.py").write_text("x = 1\n")
    assert _invoke("check", str(tmp_path)).exit_code != 0
    assert _invoke("check", "--file-timeout", "-1", str(tmp_path / "a.py")).exit_code == 2


def test_warnings_from_analysed_code_never_reach_the_terminal(tmp_path):
    _write(tmp_path, {"good.py": BUGGY,
                      "noisy.py": 'import sqlalchemy\nPATTERN = "\\d+"\nOK = 1 is 1\n' + BUGGY})
    proc = run_cli("check", "-j", "1", "--no-cache", ".", cwd=tmp_path,
                   env={"PYTHONWARNINGS": "default"})
    assert proc.returncode == 1
    assert b"Warning" not in proc.stderr, proc.stderr


# --------------------------------------------------------------------------- named files


def test_a_file_named_explicitly_is_always_parsed(tmp_path):
    (tmp_path / "broken.py").write_text("def f(:\n    return 1\n")
    named = _invoke("check", "--no-cache", str(tmp_path / "broken.py"))
    assert named.exit_code == 1
    assert "broken.py:1:" in named.stderr and "syntax error" in named.stderr
    walked = _invoke("check", "--no-cache", str(tmp_path))
    assert walked.exit_code == 0  # found by walking: the byte prefilter skips it


# --------------------------------------------------------------------------- the index's scope


def test_without_markers_the_root_is_the_file_and_its_package(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "one.py").write_text("x = 1\n")
    config = config_mod.load(str(tmp_path / "x" / "one.py"))
    assert config.root == str(tmp_path / "x") and not config.marked
    assert config_mod.project_scope([str(tmp_path / "x" / "one.py")], config) == [str(tmp_path / "x" / "one.py")]

    _write(tmp_path, {"app/__init__.py": "", "app/sub/__init__.py": "", "app/sub/m.py": "x = 1\n"})
    config = config_mod.load(str(tmp_path / "app" / "sub" / "m.py"))
    assert config.root == str(tmp_path) and not config.marked
    assert config_mod.project_scope([str(tmp_path / "app" / "sub" / "m.py")], config) == [str(tmp_path / "app")]

    (tmp_path / "setup.cfg").write_text("")
    config = config_mod.load(str(tmp_path / "app" / "sub" / "m.py"))
    assert config.root == str(tmp_path) and config.marked
    assert config_mod.project_scope(["anything"], config) == [str(tmp_path)]


def _indexed(monkeypatch) -> list[list[str]]:
    calls: list[list[str]] = []
    real = project_mod.load

    def spy(files, *args, **kw):
        calls.append(list(files))
        return real(files, *args, **kw)

    monkeypatch.setattr(project_mod, "load", spy)
    return calls


def test_the_index_never_reads_beyond_the_paths_given_without_markers(tmp_path, monkeypatch):
    _write(tmp_path, {"x/one.py": BUGGY, "elsewhere/db.py": "from sqlalchemy.orm import sessionmaker\n"})
    calls = _indexed(monkeypatch)
    monkeypatch.chdir(tmp_path)
    result = _invoke("check", "--no-cache", "-j", "1", str(tmp_path / "x" / "one.py"))
    assert result.exit_code == 1 and "SQF002" in result.stdout
    assert calls and all("elsewhere" not in f for f in calls[0]), calls


def test_a_run_that_reads_far_more_files_than_given_says_so(tmp_path, monkeypatch):
    _write(tmp_path, {"pyproject.toml": "", **{f"m{i}.py": "x = 1\n" for i in range(12)}})
    monkeypatch.setattr(cli_mod, "FAR_MORE_FILES", 5)
    result = _invoke("check", "--no-cache", "-j", "1", str(tmp_path / "m0.py"))
    assert "read 12 files" in result.stderr and "for 1 file given" in result.stderr
    quiet = _invoke("check", "--no-cache", "-j", "1", str(tmp_path))
    assert "files given" not in quiet.stderr and "file given" not in quiet.stderr


# --------------------------------------------------------------------------- killed runs


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leftover_temporary_files_of_dead_runs_are_removed(tmp_path):
    dead = tmp_path / f".a.py.{_dead_pid()}.abc123{writer.TEMP_SUFFIX}"
    mine = tmp_path / f".b.py.{os.getpid()}.abc123{writer.TEMP_SUFFIX}"
    other = tmp_path / ".c.py.tmp"
    for p in (dead, mine, other):
        p.write_text("partial")
    (tmp_path / "a.py").write_text("old\n")
    writer._swept.discard(str(tmp_path))
    writer.replace_file(str(tmp_path / "a.py"), b"new\n")
    assert (tmp_path / "a.py").read_text() == "new\n"
    assert not dead.exists() and mine.exists() and other.exists()


SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "sqf002_merge_foreign_instance" / "sync_before.py"


def test_sigkill_during_apply_leaves_every_file_old_or_new(tmp_path):
    """Killed while writing many fixes: each file is byte for byte the old or the new content,
    and the next run removes any temporary file the killed one left."""
    old = SAMPLE.read_bytes()
    reference = tmp_path / "reference"
    reference.mkdir()
    (reference / "one.py").write_bytes(old)
    assert run_cli("apply", "--yes", "--allow-dirty", "--no-cache", "-j", "1", ".", cwd=reference).returncode in (0, 1)
    new = (reference / "one.py").read_bytes()
    assert new != old

    project = tmp_path / "project"
    project.mkdir()
    for i in range(40):
        (project / f"m{i:03}.py").write_bytes(old)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    proc = subprocess.Popen([sys.executable, "-m", "codemods", "apply", "--yes", "--allow-dirty", "--no-cache",
                             "-j", "2", "."], cwd=project, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    files = sorted(project.glob("m*.py"))
    while proc.poll() is None:
        if any(f.read_bytes() != old for f in files[::5]):
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    contents = [f.read_bytes() for f in files]
    assert all(c in (old, new) for c in contents)
    leftovers = [p.name for p in project.iterdir() if p.name.endswith(".tmp")]
    assert all(writer.TEMP_SUFFIX in n for n in leftovers)

    again = run_cli("apply", "--yes", "--allow-dirty", "--no-cache", "-j", "2", ".", cwd=project)
    assert again.returncode in (0, 1), again.stderr
    assert all(f.read_bytes() == new for f in files)
    assert [p.name for p in project.iterdir() if p.name.endswith(".tmp")] == []


def test_a_project_file_the_index_cannot_read_is_reported_once(tmp_path, monkeypatch):
    from codemods import index as index_mod

    _write(tmp_path, {"pyproject.toml": "", "one.py": BUGGY, "other.py": "import sqlalchemy\n"})
    real = index_mod.extract

    def stuck(path, source, module):
        if path.endswith("other.py"):
            raise guard.FileTimeout()
        return real(path, source, module)

    monkeypatch.setattr(index_mod, "extract", stuck)
    result = _invoke("check", "--no-cache", "-j", "1", str(tmp_path / "one.py"))
    assert result.exit_code == 1 and "SQF002" in result.stdout
    lines = _stderr_lines(result.stderr, "other.py")
    assert len(lines) == 1 and "while indexing" in lines[0] and "took longer than" in lines[0]
