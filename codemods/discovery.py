"""Which files a run looks at.

Inside a git work tree the file list comes from git itself (tracked plus untracked files that
``.gitignore`` does not ignore), so ignore rules are exactly git's. Elsewhere the tree is walked.
Either way virtualenvs, build output and caches are skipped, and excludes apply (each file's
own, from its configuration). A file named explicitly on the command line is taken unless
``force_exclude`` is set (as in ruff: pre-commit and editors name every file).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable
from functools import lru_cache

from .config import Globs

# `env/` is not here: it is often real source (settings packages); real virtualenvs of any
# name are recognised by their pyvenv.cfg.
SKIP_DIRS = {
    ".git", ".hg", ".svn", ".venv", "venv", "__pycache__", "build", "dist",
    "node_modules", ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".eggs",
    "site-packages", "__pypackages__", ".sqla-fix-cache",
}


@lru_cache(maxsize=4096)
def _is_venv(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "pyvenv.cfg"))


def _skipped_dir(name: str, full: str) -> bool:
    return name in SKIP_DIRS or name.endswith(".egg-info") or _is_venv(full)


def _git_files(directory: str) -> list[str] | None:
    try:
        proc = subprocess.run(
            ["git", "-C", directory, "ls-files", "-z", "--cached", "--others", "--exclude-standard",
             "--", "."],
            capture_output=True, timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    out = []
    for rel in proc.stdout.decode("utf-8", "surrogateescape").split("\0"):
        if rel.endswith(".py"):
            full = os.path.join(directory, rel)
            if os.path.isfile(full):  # deleted but still tracked files are skipped
                out.append(full)
    return out


def _walk(directory: str) -> list[str]:
    out = []
    for here, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not _skipped_dir(d, os.path.join(here, d)))
        out.extend(os.path.join(here, f) for f in files if f.endswith(".py"))
    return out


def discover(paths: Iterable[str], root: str = ".", exclude: Iterable[str] = (), *,
             is_excluded: Callable[[str], bool] | None = None, force_exclude: bool = False) -> list[str]:
    """Python files under ``paths``: sorted, de-duplicated, relative when under the cwd.

    A file is left out when ``is_excluded(path)`` says so, or else when it matches one of the
    gitignore-style ``exclude`` globs (relative to ``root``)."""
    if is_excluded is None:
        is_excluded = Globs(os.path.abspath(root), tuple(exclude)).match
    found: dict[str, None] = {}
    for path in paths:
        if os.path.isfile(path):
            if not (force_exclude and is_excluded(path)):
                found[os.path.normpath(path)] = None
            continue
        if not os.path.isdir(path):
            raise FileNotFoundError(path)
        listed = _git_files(path)
        candidates = listed if listed is not None else _walk(path)
        base = os.path.abspath(path)
        for full in candidates:
            if _in_skipped_dir(os.path.abspath(full), base) or is_excluded(full):
                continue
            found[os.path.normpath(full)] = None
    return sorted({_display(p) for p in found}, key=lambda p: (p.replace(os.sep, "/").lower(), p))


def _in_skipped_dir(path: str, top: str) -> bool:
    """A directory below ``top`` holding the file ``path`` is one that is always skipped
    (a virtualenv, build output, a cache)."""
    directory = os.path.dirname(path)
    while directory != top and os.path.dirname(directory) != directory:
        if _skipped_dir(os.path.basename(directory), directory):
            return True
        directory = os.path.dirname(directory)
    return False


def _display(path: str) -> str:
    """One spelling per file: relative to the cwd when under it, else absolute."""
    absolute = os.path.abspath(path)
    cwd = os.getcwd()
    if absolute.startswith(cwd.rstrip(os.sep) + os.sep):
        return os.path.relpath(absolute, cwd)
    return absolute
