"""The pre-commit hooks, run by pre-commit itself from a git repository holding this tree.

pre-commit installs the hook repository into an environment of its own (with pip), stashes
unstaged changes, and passes the staged Python files. One test runs both hooks, to keep the
suite fast (the environment is built once).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from snippets import BUGGY, FIXED
from test_packaging import NOT_SHIPPED, ROOT

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_check_and_fix_hooks_on_staged_files(tmp_path):
    hooks = tmp_path / "hooks"
    shutil.copytree(ROOT, hooks, ignore=shutil.ignore_patterns(*NOT_SHIPPED))
    git(hooks, "init", "-q")
    git(hooks, "add", "-A")
    git(hooks, "commit", "-q", "-m", "hooks")
    rev = git(hooks, "rev-parse", "HEAD")

    project = tmp_path / "project"
    (project / "app").mkdir(parents=True)
    (project / "legacy").mkdir()
    (project / "pyproject.toml").write_text('[tool.sqla-fix]\nexclude = ["legacy/"]\n')
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {hooks}\n  rev: {rev}\n  hooks:\n  - id: sqla-fix\n  - id: sqla-fix-fix\n")
    (project / "app" / "notes.py").write_text("NOTE = 1\n")
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "start")
    (project / "app" / "visits.py").write_text(BUGGY)
    (project / "legacy" / "old.py").write_text(BUGGY)
    git(project, "add", "app/visits.py", "legacy/old.py")
    (project / "app" / "notes.py").write_text("NOTE = 2  # not staged\n")

    env = {**os.environ, **GIT_ENV, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "NO_COLOR": "1"}
    env.pop("PYTHONPATH", None)

    def pre_commit(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pre_commit", "run", *args, "--color", "never"],
                              cwd=project, capture_output=True, text=True, env=env, timeout=900)

    check = pre_commit("sqla-fix")
    assert check.returncode == 1, check.stdout + check.stderr
    assert "app/visits.py:6:5: SQF002" in check.stdout
    assert "legacy/old.py" not in check.stdout  # excluded, although pre-commit names it

    fix = pre_commit("sqla-fix-fix")
    assert fix.returncode == 1  # pre-commit fails a hook that changed files
    assert "files were modified by this hook" in fix.stdout
    assert "Fixed 1 finding:" in fix.stdout
    assert (project / "app" / "visits.py").read_text() == FIXED
    assert (project / "legacy" / "old.py").read_text() == BUGGY
    assert (project / "app" / "notes.py").read_text() == "NOTE = 2  # not staged\n"  # restored
    assert "+    user = db.merge(user)" in git(project, "diff", "app/visits.py")  # to review

    git(project, "add", "app/visits.py")
    again = pre_commit("sqla-fix")
    assert again.returncode == 0, again.stdout + again.stderr
