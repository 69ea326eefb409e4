"""Shared helpers: run the command as a user would (a subprocess of this interpreter)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, cwd: str | os.PathLike | None = None, input: bytes | None = None,
            env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    full_env.pop("NO_COLOR", None)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    # Keep test projects out of any git repository above tmp.
    full_env.setdefault("GIT_CEILING_DIRECTORIES", str(Path(cwd or ".").resolve().parent))
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "codemods", *args], cwd=cwd, input=input,
        capture_output=True, env=full_env, timeout=300,
    )


def invoke_in(project: str | os.PathLike, *args: str):
    """Run the command in-process (click's CliRunner) in the directory ``project``."""
    from click.testing import CliRunner

    from codemods.cli import cli as command

    old = os.getcwd()
    os.chdir(project)
    try:
        return CliRunner().invoke(command, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


@pytest.fixture
def cli():
    return run_cli
