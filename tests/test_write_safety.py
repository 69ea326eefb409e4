"""`sqla-fix apply --yes` must never lose or damage a byte of a file it rewrites.

Every test works on files in ``tmp_path``, outside any git work tree, so the dirty-tree guard
does not get in the way (checked by the ``outside_git`` fixture).
"""

from __future__ import annotations

import codecs
import os
import stat
import subprocess
from pathlib import Path

import libcst as cst
import pytest
from click.testing import CliRunner
from snippets import BUG_LINE, BUGGY, FIXED, FIXED_LINE  # noqa: E402

import codemods.cli as cli_mod
import codemods.writer as writer_mod
from codemods import engine
from codemods.cache import CACHE_DIR
from codemods.passes.merge_foreign import MergeForeignInstance
from codemods.source import read_source
from codemods.writer import ChangedOnDisk, WriteError, write_atomic


def fixed_bytes(data: bytes) -> bytes:
    """``data`` with exactly the buggy line rewritten, byte for byte everywhere else."""
    assert data.count(BUG_LINE.encode()) == 1
    return data.replace(BUG_LINE.encode(), FIXED_LINE.encode())


@pytest.fixture
def outside_git(tmp_path: Path) -> Path:
    """``tmp_path``, checked not to be inside a git work tree (with the environment the
    command runs with: ``GIT_CEILING_DIRECTORIES`` set to the parent of its cwd)."""
    env = dict(os.environ, GIT_CEILING_DIRECTORIES=str(tmp_path.parent))
    proc = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=tmp_path, env=env,
                          capture_output=True)
    assert proc.returncode != 0, "tmp_path must not be inside a git work tree"
    return tmp_path


@pytest.fixture
def in_process(outside_git: Path, monkeypatch: pytest.MonkeyPatch):
    """Run the command in this process (so that it can be monkeypatched), in ``tmp_path``."""
    monkeypatch.chdir(outside_git)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(outside_git.parent))
    monkeypatch.delenv("SQLA_FIX_DEBUG", raising=False)

    def invoke(*args: str):
        return CliRunner().invoke(cli_mod.cli, list(args), catch_exceptions=False)

    return invoke


def stderr_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return proc.stderr.decode("utf-8", "replace").splitlines()


def leftovers(directory: Path, expected: set[str]) -> set[str]:
    """Entries beyond ``expected``. The index cache directory is expected (it is documented);
    a temporary file inside it is not."""
    found = set(os.listdir(directory)) - expected
    if CACHE_DIR in found:
        found.discard(CACHE_DIR)
        found |= {f"{CACHE_DIR}/{n}" for n in os.listdir(directory / CACHE_DIR)
                  if n not in ("index.json", ".gitignore")}
    return found


# --------------------------------------------------------------------------- encodings


def test_snippet_is_fixed_with_plain_utf8(outside_git, cli):
    """Baseline: the snippet is a fixable SQF002 bug and `apply --yes` writes the fix."""
    (outside_git / "visits.py").write_bytes(BUGGY.encode())
    proc = cli("apply", "--yes", ".", cwd=outside_git)
    assert proc.returncode == 0, proc.stderr.decode()
    assert (outside_git / "visits.py").read_bytes() == FIXED.encode()


def test_crlf_file_stays_crlf(outside_git, cli):
    original = BUGGY.replace("\n", "\r\n").encode()
    target = outside_git / "visits.py"
    target.write_bytes(original)

    proc = cli("apply", "--yes", ".", cwd=outside_git)

    assert proc.returncode == 0, proc.stderr.decode()
    data = target.read_bytes()
    assert data == fixed_bytes(original)
    assert (FIXED_LINE + "\r\n").encode() in data  # the rewritten line too
    assert data.count(b"\n") == data.count(b"\r\n")  # no bare LF anywhere


def test_crlf_without_final_newline(outside_git, cli):
    original = BUGGY.replace("\n", "\r\n").rstrip("\r\n").encode()
    target = outside_git / "visits.py"
    target.write_bytes(original)

    proc = cli("apply", "--yes", ".", cwd=outside_git)

    assert proc.returncode == 0, proc.stderr.decode()
    assert target.read_bytes() == fixed_bytes(original)


def test_utf8_bom_is_kept(outside_git, cli):
    original = codecs.BOM_UTF8 + ("# café\n" + BUGGY).encode("utf-8")
    target = outside_git / "visits.py"
    target.write_bytes(original)

    proc = cli("apply", "--yes", ".", cwd=outside_git)

    assert proc.returncode == 0, proc.stderr.decode()
    data = target.read_bytes()
    assert data.startswith(codecs.BOM_UTF8)
    assert not data[len(codecs.BOM_UTF8):].startswith(codecs.BOM_UTF8)  # not doubled
    assert data == fixed_bytes(original)


def test_latin1_with_coding_cookie_keeps_its_encoding(outside_git, cli):
    text = "# -*- coding: latin-1 -*-\n# café, naïve, ½\n" + BUGGY + 'GREETING = "olá"\n'
    original = text.encode("latin-1")
    assert b"caf\xe9" in original
    target = outside_git / "visits.py"
    target.write_bytes(original)

    proc = cli("apply", "--yes", ".", cwd=outside_git)

    assert proc.returncode == 0, proc.stderr.decode()
    data = target.read_bytes()
    assert data == fixed_bytes(original)
    assert b"caf\xe9" in data and "café".encode() not in data


@pytest.mark.parametrize("mode", [0o754, 0o644])
def test_mode_bits_are_kept(outside_git, cli, mode):
    target = outside_git / "visits.py"
    target.write_bytes(BUGGY.encode())
    os.chmod(target, mode)

    proc = cli("apply", "--yes", ".", cwd=outside_git)

    assert proc.returncode == 0, proc.stderr.decode()
    assert target.read_bytes() == FIXED.encode()
    assert stat.S_IMODE(os.stat(target).st_mode) == mode


# --------------------------------------------------------------------------- bad files beside good ones


def test_syntax_error_is_one_line_and_good_files_are_still_fixed(outside_git, cli):
    (outside_git / "a_good.py").write_bytes(BUGGY.encode())
    bad = b"from sqlalchemy.orm import Session\n\n\ndef broken(db: Session:\n    db.add(x)\n"
    (outside_git / "bad.py").write_bytes(bad)
    (outside_git / "z_good.py").write_bytes(BUGGY.encode())

    proc = cli("apply", "--yes", ".", cwd=outside_git)

    assert proc.returncode == 1
    naming = [line for line in stderr_lines(proc) if "bad.py" in line]
    assert len(naming) == 1, proc.stderr.decode()
    assert naming[0].startswith("bad.py:")
    parts = naming[0].split(":", 4)
    assert parts[1].isdigit() and parts[2].isdigit(), naming[0]
    assert parts[3] == " syntax error", naming[0]
    assert "Traceback" not in proc.stderr.decode()
    assert (outside_git / "bad.py").read_bytes() == bad
    assert (outside_git / "a_good.py").read_bytes() == FIXED.encode()
    assert (outside_git / "z_good.py").read_bytes() == FIXED.encode()


def test_syntax_error_points_at_the_offending_line(outside_git, cli):
    """`path:line:col` must name the line the error is on (CPython says line 3 here)."""
    (outside_git / "bad.py").write_bytes(
        b"from sqlalchemy.orm import Session\n"
        b"def f(user, db: Session):\n"
        b"    x = = 1\n"
        b"    db.add(user)\n"
    )

    proc = cli("check", ".", cwd=outside_git)

    assert proc.returncode == 1
    naming = [line for line in stderr_lines(proc) if "bad.py" in line]
    assert len(naming) == 1, proc.stderr.decode()
    assert naming[0].startswith("bad.py:3:"), naming[0]


def test_undecodable_file_is_one_line_and_the_run_goes_on(outside_git, cli):
    (outside_git / "a_good.py").write_bytes(BUGGY.encode())
    undecodable = BUGGY.encode() + b"# \xff\xfe not utf-8\n"
    (outside_git / "undecodable.py").write_bytes(undecodable)
    (outside_git / "z_good.py").write_bytes(BUGGY.encode())

    proc = cli("apply", "--yes", ".", cwd=outside_git)

    assert proc.returncode == 1
    naming = [line for line in stderr_lines(proc) if "undecodable.py" in line]
    assert len(naming) == 1, proc.stderr.decode()
    assert naming[0].startswith("undecodable.py:15:"), naming[0]
    assert "decode" in naming[0]
    assert "Traceback" not in proc.stderr.decode()
    assert (outside_git / "undecodable.py").read_bytes() == undecodable
    assert (outside_git / "a_good.py").read_bytes() == FIXED.encode()
    assert (outside_git / "z_good.py").read_bytes() == FIXED.encode()


def test_unreadable_file_is_one_line_and_the_run_goes_on(outside_git, cli):
    (outside_git / "a_good.py").write_bytes(BUGGY.encode())
    os.symlink(outside_git / "does-not-exist" / "target.py", outside_git / "bad.py")
    (outside_git / "z_good.py").write_bytes(BUGGY.encode())

    proc = cli("apply", "--yes", ".", cwd=outside_git)

    assert proc.returncode == 1
    naming = [line for line in stderr_lines(proc) if "bad.py" in line]
    assert len(naming) == 1, proc.stderr.decode()
    assert naming[0].startswith("bad.py:")
    assert "cannot read" in naming[0]
    assert "Traceback" not in proc.stderr.decode()
    assert os.path.islink(outside_git / "bad.py")
    assert not os.path.exists(outside_git / "does-not-exist")
    assert (outside_git / "a_good.py").read_bytes() == FIXED.encode()
    assert (outside_git / "z_good.py").read_bytes() == FIXED.encode()


# --------------------------------------------------------------------------- changed on disk


def test_write_atomic_refuses_a_file_changed_since_it_was_read(outside_git):
    target = outside_git / "visits.py"
    target.write_bytes(BUGGY.encode())
    source = read_source(str(target))
    changed = BUGGY.encode() + b"# edited meanwhile\n"
    target.write_bytes(changed)

    with pytest.raises(ChangedOnDisk):
        write_atomic(source, FIXED)

    assert issubclass(ChangedOnDisk, WriteError)
    assert target.read_bytes() == changed
    assert leftovers(outside_git, {"visits.py"}) == set()


def test_write_atomic_writes_when_unchanged(outside_git):
    target = outside_git / "visits.py"
    target.write_bytes(BUGGY.encode())
    os.chmod(target, 0o754)
    source = read_source(str(target))

    write_atomic(source, FIXED)

    assert target.read_bytes() == FIXED.encode()
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o754
    assert leftovers(outside_git, {"visits.py"}) == set()


def test_cli_skips_a_file_changed_between_run_and_write(in_process, monkeypatch):
    tmp = Path.cwd()
    (tmp / "a_raced.py").write_bytes(BUGGY.encode())
    (tmp / "b_calm.py").write_bytes(BUGGY.encode())
    edited = BUGGY.encode() + b"# saved by the editor meanwhile\n"
    real = writer_mod.write_atomic
    calls = []

    def racing(source, text):
        calls.append(os.path.basename(source.path))
        if os.path.basename(source.path) == "a_raced.py":
            Path(source.path).write_bytes(edited)
        return real(source, text)

    monkeypatch.setattr(writer_mod, "write_atomic", racing)
    result = in_process("apply", "--yes", "-j", "1", ".")

    assert sorted(calls) == ["a_raced.py", "b_calm.py"]
    assert (tmp / "a_raced.py").read_bytes() == edited
    assert (tmp / "b_calm.py").read_bytes() == FIXED.encode()
    raced = [line for line in result.stderr.splitlines() if "a_raced.py" in line]
    assert len(raced) == 1, result.stderr
    assert "changed on disk" in raced[0]
    assert "wrote 1 file." in result.stderr
    assert result.exit_code != 0
    assert leftovers(tmp, {"a_raced.py", "b_calm.py"}) == set()


# --------------------------------------------------------------------------- temporary files


def test_no_temporary_files_left_after_apply(outside_git, cli):
    names = {"one.py", "two.py", "clean.py"}
    (outside_git / "one.py").write_bytes(BUGGY.encode())
    (outside_git / "two.py").write_bytes(BUGGY.replace("\n", "\r\n").encode())
    (outside_git / "clean.py").write_bytes(b"x = 1\n")
    sub = outside_git / "pkg"
    sub.mkdir()
    (sub / "three.py").write_bytes(BUGGY.encode())

    proc = cli("apply", "--yes", ".", cwd=outside_git)

    assert proc.returncode == 0, proc.stderr.decode()
    assert leftovers(outside_git, names | {"pkg"}) == set()
    assert set(os.listdir(sub)) == {"three.py"}
    assert (sub / "three.py").read_bytes() == FIXED.encode()


def test_no_temporary_file_left_when_the_final_rename_fails(outside_git, monkeypatch):
    target = outside_git / "visits.py"
    target.write_bytes(BUGGY.encode())
    source = read_source(str(target))

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(os, "replace", boom)
        with pytest.raises(OSError):
            write_atomic(source, FIXED)

    assert target.read_bytes() == BUGGY.encode()
    assert leftovers(outside_git, {"visits.py"}) == set()


def test_cli_reports_a_failed_write_and_leaves_no_temporary_file(in_process, monkeypatch):
    tmp = Path.cwd()
    (tmp / "visits.py").write_bytes(BUGGY.encode())
    real_replace = os.replace

    def boom(src, dst):
        if str(src).endswith(".sqla-fix.tmp"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    with monkeypatch.context() as m:
        m.setattr(os, "replace", boom)
        result = in_process("apply", "--yes", "-j", "1", ".")

    assert (tmp / "visits.py").read_bytes() == BUGGY.encode()
    assert leftovers(tmp, {"visits.py"}) == set()
    naming = [line for line in result.stderr.splitlines() if "visits.py" in line]
    assert len(naming) == 1 and "cannot write" in naming[0], result.stderr
    assert result.exit_code != 0


# --------------------------------------------------------------------------- fixes that do not parse


def test_parses_like():
    assert engine.parses_like("x = 1\n", "x = 2\n")
    assert not engine.parses_like("x = 1\n", "x = (\n")
    assert not engine.parses_like("x = 1\n", "f() = x\n")
    # A file that never compiled with ast only has to keep parsing with libcst.
    assert engine.parses_like("def f(:\n", "x = 1\n")


def test_a_fix_that_does_not_parse_is_never_written(in_process, monkeypatch):
    tmp = Path.cwd()
    (tmp / "visits.py").write_bytes(BUGGY.encode())

    def broken_merge(updated, obj, owner, is_async):
        # `db.merge(user) = user`: target and value swapped, not valid Python.
        merge = cst.Call(func=cst.Attribute(value=owner.deep_clone(), attr=cst.Name("merge")),
                         args=[cst.Arg(cst.Name(obj))])
        return cst.Assign(targets=[cst.AssignTarget(merge)], value=cst.Name(obj))

    monkeypatch.setattr(MergeForeignInstance, "_merge", staticmethod(broken_merge))
    result = in_process("apply", "--yes", "-j", "1", ".")

    assert result.exit_code == 2
    assert (tmp / "visits.py").read_bytes() == BUGGY.encode()
    naming = [line for line in result.stderr.splitlines() if "visits.py" in line]
    assert len(naming) == 1, result.stderr
    assert naming[0].startswith("visits.py: internal error")
    assert "file left unchanged" in naming[0]
    assert "wrote 0 files" in result.stderr
    assert leftovers(tmp, {"visits.py"}) == set()


def test_a_fix_that_does_not_parse_is_never_written_in_dry_run_either(in_process, monkeypatch):
    tmp = Path.cwd()
    (tmp / "visits.py").write_bytes(BUGGY.encode())

    def broken_merge(updated, obj, owner, is_async):
        merge = cst.Call(func=cst.Attribute(value=owner.deep_clone(), attr=cst.Name("merge")),
                         args=[cst.Arg(cst.Name(obj))])
        return cst.Assign(targets=[cst.AssignTarget(merge)], value=cst.Name(obj))

    monkeypatch.setattr(MergeForeignInstance, "_merge", staticmethod(broken_merge))
    result = in_process("apply", "--dry-run", "-j", "1", ".")

    assert result.exit_code == 2
    assert "merge(user) = user" not in result.stdout
    assert (tmp / "visits.py").read_bytes() == BUGGY.encode()
