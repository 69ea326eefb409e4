"""`sqla-fix check -` / `sqla-fix apply -`: source on stdin, named by --stdin-filename."""

from __future__ import annotations

import codecs
import os
import subprocess
import textwrap
from pathlib import Path

import pytest
from snippets import BUGGY, FIXED  # noqa: E402

from codemods.passes.merge_foreign import MergeForeignInstance

CLEAN = '''\
from sqlalchemy.orm import Session


def create(db: Session, name: str) -> None:
    user = User(name=name)
    db.add(user)
    db.commit()
'''

# The FastAPI example: only the project index knows that get_current_user loads the user
# through get_auth_db while the endpoint's session comes from get_db.
ENDPOINT = textwrap.dedent(MergeForeignInstance.examples[0].before).lstrip("\n")
ENDPOINT_FIXED = textwrap.dedent(MergeForeignInstance.examples[0].after).lstrip("\n")
ENDPOINT_LINE = ENDPOINT.splitlines().index("    db.add(current_user)  # keep this comment") + 1


@pytest.fixture
def empty_dir(tmp_path: Path) -> Path:
    d = tmp_path / "empty"
    d.mkdir()
    return d


def write_project(root: Path, with_pyproject: bool) -> Path:
    for rel, text in MergeForeignInstance.example_project.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    if with_pyproject:
        (root / "pyproject.toml").write_text('[project]\nname = "shop"\nversion = "0"\n')
    return root


def out(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout.decode("utf-8")


# --------------------------------------------------------------------------- apply -


def test_apply_stdin_prints_the_fixed_source(empty_dir, cli):
    proc = cli("apply", "-", "--stdin-filename", "app/x.py", cwd=empty_dir, input=BUGGY.encode())

    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == FIXED.encode()
    assert not (empty_dir / "app").exists()  # stdin mode never writes a file
    assert os.listdir(empty_dir) == []


def test_apply_stdin_crlf_buggy_source_keeps_crlf(empty_dir, cli):
    raw = BUGGY.replace("\n", "\r\n").encode()
    proc = cli("apply", "-", "--stdin-filename", "app/x.py", cwd=empty_dir, input=raw)

    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == FIXED.replace("\n", "\r\n").encode()


def test_apply_stdin_keeps_a_bom(empty_dir, cli):
    raw = codecs.BOM_UTF8 + BUGGY.encode()
    proc = cli("apply", "-", "--stdin-filename", "app/x.py", cwd=empty_dir, input=raw)

    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == codecs.BOM_UTF8 + FIXED.encode()


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("source", [CLEAN, "x = 1\n"], ids=["add-but-no-bug", "no-trigger"])
def test_apply_stdin_clean_source_is_echoed_byte_for_byte(empty_dir, cli, newline, source):
    raw = source.replace("\n", newline).encode()
    proc = cli("apply", "-", "--stdin-filename", "app/x.py", cwd=empty_dir, input=raw)

    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == raw


def test_apply_stdin_without_final_newline_is_echoed_byte_for_byte(empty_dir, cli):
    raw = CLEAN.rstrip("\n").replace("\n", "\r\n").encode()
    proc = cli("apply", "-", "--stdin-filename", "app/x.py", cwd=empty_dir, input=raw)

    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == raw


# --------------------------------------------------------------------------- check -


def test_check_stdin_reports_with_the_stdin_filename(empty_dir, cli):
    proc = cli("check", "-", "--stdin-filename", "app/x.py", cwd=empty_dir, input=BUGGY.encode())

    assert proc.returncode == 1
    findings = [line for line in out(proc).splitlines() if " SQF002 " in line]
    assert len(findings) == 1
    assert findings[0].startswith("app/x.py:6:5: SQF002 ")
    assert "user = db.merge(user)" in findings[0]


def test_check_stdin_clean_source(empty_dir, cli):
    proc = cli("check", "-", "--stdin-filename", "app/x.py", cwd=empty_dir, input=CLEAN.encode())

    assert proc.returncode == 0, out(proc) + proc.stderr.decode()
    assert "SQF002" not in out(proc)


def test_check_stdin_syntax_error_names_the_stdin_filename(empty_dir, cli):
    proc = cli("check", "-", "--stdin-filename", "app/x.py", cwd=empty_dir,
               input=b"from sqlalchemy.orm import Session\n\n\ndef broken(db: Session:\n    db.add(x)\n")

    assert proc.returncode == 1
    errors = [line for line in proc.stderr.decode().splitlines() if "app/x.py" in line]
    assert len(errors) == 1 and errors[0].startswith("app/x.py:") and "syntax error" in errors[0]


# --------------------------------------------------------------------------- the project index


def test_stdin_finding_needs_the_project_index(empty_dir, cli):
    """Control: without the provider modules nothing says the sessions differ."""
    proc = cli("check", "-", "--stdin-filename", "app/x.py", cwd=empty_dir, input=ENDPOINT.encode())
    assert proc.returncode == 0, out(proc)
    assert "SQF002" not in out(proc)

    proc = cli("apply", "-", "--stdin-filename", "app/x.py", cwd=empty_dir, input=ENDPOINT.encode())
    assert proc.returncode == 0
    assert proc.stdout == ENDPOINT.encode()


def test_stdin_uses_the_project_index(tmp_path, cli):
    project = write_project(tmp_path / "shop", with_pyproject=True)

    proc = cli("check", "-", "--stdin-filename", "app/x.py", cwd=project, input=ENDPOINT.encode())
    assert proc.returncode == 1, proc.stderr.decode()
    assert out(proc).startswith(f"app/x.py:{ENDPOINT_LINE}:5: SQF002 ")
    assert "get_auth_db" in out(proc)

    proc = cli("apply", "-", "--stdin-filename", "app/x.py", cwd=project, input=ENDPOINT.encode())
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == ENDPOINT_FIXED.encode()
    assert not (project / "app" / "x.py").exists()


def test_stdin_uses_the_project_index_of_the_cwd_without_pyproject(tmp_path, cli):
    """No pyproject.toml and no .git: the project is the working directory, as it is for
    `sqla-fix check .` run there (which finds this bug in app/x.py)."""
    project = write_project(tmp_path / "shop", with_pyproject=False)

    proc = cli("check", "-", "--stdin-filename", "app/x.py", cwd=project, input=ENDPOINT.encode())
    assert proc.returncode == 1, out(proc)
    assert out(proc).startswith(f"app/x.py:{ENDPOINT_LINE}:5: SQF002 ")

    proc = cli("apply", "-", "--stdin-filename", "app/x.py", cwd=project, input=ENDPOINT.encode())
    assert proc.stdout == ENDPOINT_FIXED.encode()


def test_stdin_and_file_mode_agree_without_pyproject(tmp_path, cli):
    """The same file gives the same finding whether it is named, found in `.`, or piped."""
    project = write_project(tmp_path / "shop", with_pyproject=False)
    (project / "app" / "x.py").write_text(ENDPOINT)
    expected = f"app/x.py:{ENDPOINT_LINE}:5: SQF002 "

    whole = cli("check", ".", cwd=project)
    named = cli("check", "app/x.py", cwd=project)
    piped = cli("check", "-", "--stdin-filename", "app/x.py", cwd=project, input=ENDPOINT.encode())

    assert expected in out(whole)
    assert expected in out(named), out(named)
    assert expected in out(piped), out(piped)


# --------------------------------------------------------------------------- usage


@pytest.mark.parametrize("command", ["check", "apply"])
def test_stdin_filename_without_dash_is_a_usage_error(empty_dir, cli, command):
    (empty_dir / "visits.py").write_text(BUGGY)
    args = [command, "--stdin-filename", "app/x.py", "visits.py"]
    if command == "apply":
        args.insert(1, "--yes")

    proc = cli(*args, cwd=empty_dir, input=BUGGY.encode())

    assert proc.returncode == 2
    assert "--stdin-filename" in proc.stderr.decode()
    assert (empty_dir / "visits.py").read_text() == BUGGY


def test_stdin_filename_without_any_path_is_a_usage_error(empty_dir, cli):
    proc = cli("check", "--stdin-filename", "app/x.py", cwd=empty_dir, input=BUGGY.encode())

    assert proc.returncode == 2
    assert "--stdin-filename" in proc.stderr.decode()
    assert "SQF002" not in out(proc)


def test_dash_with_other_paths_is_a_usage_error(empty_dir, cli):
    (empty_dir / "visits.py").write_text(BUGGY)
    proc = cli("check", "-", "visits.py", cwd=empty_dir, input=BUGGY.encode())

    assert proc.returncode == 2
    assert "SQF002" not in out(proc)
