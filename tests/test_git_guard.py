"""The git dirty-tree guard of `sqla-fix apply`, and which files discovery looks at."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from snippets import BUGGY, FIXED  # noqa: E402

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    env = dict(os.environ, **GIT_ENV, GIT_CEILING_DIRECTORIES=str(repo.parent))
    proc = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", *args],
        cwd=repo, env=env, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one committed file holding a fixable bug."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / "visits.py").write_text(BUGGY)
    git(root, "add", "visits.py")
    git(root, "commit", "-q", "-m", "initial")
    assert git(root, "status", "--porcelain") == ""
    return root


def refusal(proc: subprocess.CompletedProcess) -> str:
    return proc.stderr.decode("utf-8", "replace")


# --------------------------------------------------------------------------- the guard


def test_clean_tree_is_written(repo, cli):
    proc = cli("apply", "--yes", ".", cwd=repo)

    assert proc.returncode == 0, refusal(proc)
    assert (repo / "visits.py").read_text() == FIXED


def test_modified_file_is_refused(repo, cli):
    edited = BUGGY + "# work in progress\n"
    (repo / "visits.py").write_text(edited)

    proc = cli("apply", "--yes", ".", cwd=repo)

    assert proc.returncode == 2
    message = refusal(proc)
    assert "visits.py" in message
    assert "--allow-dirty" in message
    assert (repo / "visits.py").read_text() == edited


def test_staged_change_is_refused(repo, cli):
    edited = BUGGY + "# staged, not committed\n"
    (repo / "visits.py").write_text(edited)
    git(repo, "add", "visits.py")

    proc = cli("apply", "--yes", ".", cwd=repo)

    assert proc.returncode == 2
    assert "visits.py" in refusal(proc) and "--allow-dirty" in refusal(proc)
    assert (repo / "visits.py").read_text() == edited


def test_allow_dirty_writes_a_modified_file(repo, cli):
    edited = BUGGY + "# work in progress\n"
    (repo / "visits.py").write_text(edited)

    proc = cli("apply", "--yes", "--allow-dirty", ".", cwd=repo)

    assert proc.returncode == 0, refusal(proc)
    assert (repo / "visits.py").read_text() == FIXED + "# work in progress\n"


def test_untracked_file_counts_as_dirty(repo, cli):
    (repo / "fresh.py").write_text(BUGGY)

    proc = cli("apply", "--yes", ".", cwd=repo)

    assert proc.returncode == 2
    message = refusal(proc)
    assert "fresh.py" in message and "--allow-dirty" in message
    assert (repo / "fresh.py").read_text() == BUGGY

    proc = cli("apply", "--yes", "--allow-dirty", ".", cwd=repo)
    assert proc.returncode == 0, refusal(proc)
    assert (repo / "fresh.py").read_text() == FIXED


def test_untracked_file_in_untracked_directory_counts_as_dirty(repo, cli):
    (repo / "newpkg").mkdir()
    (repo / "newpkg" / "fresh.py").write_text(BUGGY)

    proc = cli("apply", "--yes", ".", cwd=repo)

    assert proc.returncode == 2
    assert "fresh.py" in refusal(proc)
    assert (repo / "newpkg" / "fresh.py").read_text() == BUGGY


def test_dirty_file_in_a_subdirectory_run_from_that_subdirectory(repo, cli):
    sub = repo / "pkg"
    sub.mkdir()
    (sub / "inner.py").write_text(BUGGY)
    git(repo, "add", "pkg/inner.py")
    git(repo, "commit", "-q", "-m", "pkg")
    edited = BUGGY + "# edited\n"
    (sub / "inner.py").write_text(edited)

    # (the default GIT_CEILING_DIRECTORIES would be the repository itself here)
    proc = cli("apply", "--yes", ".", cwd=sub, env={"GIT_CEILING_DIRECTORIES": str(repo.parent)})

    assert proc.returncode == 2
    assert "inner.py" in refusal(proc)
    assert (sub / "inner.py").read_text() == edited


def test_only_changed_files_are_checked_for_dirt(repo, cli):
    """A dirty file that needs no fix does not stop the fix of a clean one."""
    (repo / "notes.py").write_text("x = 1\n")
    git(repo, "add", "notes.py")
    git(repo, "commit", "-q", "-m", "notes")
    (repo / "notes.py").write_text("x = 2\n")

    proc = cli("apply", "--yes", ".", cwd=repo)

    assert proc.returncode == 0, refusal(proc)
    assert (repo / "visits.py").read_text() == FIXED
    assert (repo / "notes.py").read_text() == "x = 2\n"


def test_dry_run_never_refuses_and_never_writes(repo, cli):
    edited = BUGGY + "# work in progress\n"
    (repo / "visits.py").write_text(edited)

    proc = cli("apply", "--dry-run", ".", cwd=repo)

    assert proc.returncode == 1
    assert "+    user = db.merge(user)" in proc.stdout.decode()
    assert (repo / "visits.py").read_text() == edited


def test_outside_a_git_work_tree_files_are_written(tmp_path, cli):
    project = tmp_path / "plain"
    project.mkdir()
    (project / "visits.py").write_text(BUGGY)
    env = dict(os.environ, GIT_CEILING_DIRECTORIES=str(tmp_path))
    probe = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=project, env=env,
                           capture_output=True)
    assert probe.returncode != 0, "the test project must not be inside a git work tree"

    proc = cli("apply", "--yes", ".", cwd=project)

    assert proc.returncode == 0, refusal(proc)
    assert (project / "visits.py").read_text() == FIXED


# --------------------------------------------------------------------------- discovery


def test_gitignored_files_are_not_checked(repo, cli):
    (repo / ".gitignore").write_text("generated/\nscratch_*.py\n")
    (repo / "generated").mkdir()
    (repo / "generated" / "models.py").write_text(BUGGY)
    (repo / "scratch_try.py").write_text(BUGGY)
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore")

    proc = cli("check", ".", cwd=repo)

    out = proc.stdout.decode()
    assert proc.returncode == 1, refusal(proc)
    assert "visits.py:6:5: SQF002" in out
    assert "generated" not in out and "scratch_try" not in out
    assert "1 finding in 1 file" in out

    proc = cli("apply", "--yes", ".", cwd=repo)
    assert proc.returncode == 0, refusal(proc)
    assert (repo / "visits.py").read_text() == FIXED
    assert (repo / "generated" / "models.py").read_text() == BUGGY
    assert (repo / "scratch_try.py").read_text() == BUGGY


@pytest.mark.parametrize("skipped", [".venv", "build"])
def test_venv_and_build_are_skipped_outside_git(tmp_path, cli, skipped):
    project = tmp_path / "plain"
    project.mkdir()
    (project / "visits.py").write_text(BUGGY)
    inner = project / skipped / "lib" / "pkg"
    inner.mkdir(parents=True)
    (inner / "vendored.py").write_text(BUGGY)
    env = dict(os.environ, GIT_CEILING_DIRECTORIES=str(tmp_path))
    probe = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=project, env=env,
                           capture_output=True)
    assert probe.returncode != 0

    proc = cli("check", ".", cwd=project)

    out = proc.stdout.decode()
    assert proc.returncode == 1, refusal(proc)
    assert "visits.py:6:5: SQF002" in out
    assert skipped not in out and "vendored" not in out
    assert "1 finding in 1 file" in out

    proc = cli("apply", "--yes", ".", cwd=project)
    assert proc.returncode == 0, refusal(proc)
    assert (project / "visits.py").read_text() == FIXED
    assert (inner / "vendored.py").read_text() == BUGGY


@pytest.mark.parametrize("skipped", [".venv", "build"])
def test_venv_and_build_are_skipped_inside_git_when_not_ignored(repo, cli, skipped):
    inner = repo / skipped / "lib"
    inner.mkdir(parents=True)
    (inner / "vendored.py").write_text(BUGGY)
    git(repo, "add", "-f", f"{skipped}/lib/vendored.py")
    git(repo, "commit", "-q", "-m", "vendored")

    proc = cli("apply", "--yes", ".", cwd=repo)

    assert proc.returncode == 0, refusal(proc)
    assert (repo / "visits.py").read_text() == FIXED
    assert (inner / "vendored.py").read_text() == BUGGY
