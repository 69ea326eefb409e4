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

from . import filelist
from .config import Globs, below

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
    out: list[str] = []
    for here, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not _skipped_dir(d, os.path.join(here, d)))
        out.extend(os.path.join(here, f) for f in files if f.endswith(".py"))
    return out


def discover(paths: Iterable[str], root: str = ".", exclude: Iterable[str] = (), *,
             is_excluded: Callable[[str, bool], bool] | None = None, force_exclude: bool = False,
             listings: Callable[[str], filelist.Listings | None] | None = None) -> list[str]:
    """Python files under ``paths``: sorted, de-duplicated, relative when under the cwd.

    ``is_excluded(path, is_dir)`` says whether a file or a directory is excluded (by default:
    it matches one of the gitignore-style ``exclude`` globs, relative to ``root``). As in a
    walk that prunes, a file is left out when a directory between the named path and the file
    is excluded, even if a configuration further down would not exclude the file.
    ``listings(top)``: where the listing of the directory ``top`` is kept between runs (None:
    nowhere), see :mod:`.filelist`."""
    if is_excluded is None:
        is_excluded = Globs(os.path.abspath(root), tuple(exclude)).match
    found: dict[str, None] = {}
    pruned: dict[str, bool] = {}
    for path in paths:
        if os.path.isfile(path):
            if not (force_exclude and excluded_file(path, is_excluded)):
                found[os.path.normpath(path)] = None
            continue
        if not os.path.isdir(path):
            raise FileNotFoundError(path)
        top = os.path.abspath(path)
        kept = listings(top) if listings is not None else None
        if kept is None:
            found.update(dict.fromkeys(_listed(top, is_excluded, pruned)))
            continue
        state, trusted = filelist.tree_state(top, _skipped_dir)
        files = kept.get(top, state)
        if files is None:
            files = _listed(top, is_excluded, pruned)
            if trusted:
                kept.put(top, state, files)
        found.update(dict.fromkeys(files))
    return sorted({display_name(p) for p in found}, key=lambda p: (p.replace(os.sep, "/").lower(), p))


def _listed(top: str, is_excluded: Callable[[str, bool], bool], pruned: dict[str, bool]) -> list[str]:
    """The files under the directory ``top`` (absolute), excludes applied."""
    listed = _git_files(top)
    return [full for full in (listed if listed is not None else _walk(top))  # absolute and normalised
            if not (_pruned(os.path.dirname(full), top, is_excluded, pruned) or is_excluded(full, False))]


def excluded_file(path: str, is_excluded: Callable[[str, bool], bool]) -> bool:
    """A file named explicitly is excluded (``--force-exclude``) when it or one of its
    directories is, each by the configuration that applies to it (as ruff decides)."""
    absolute = os.path.abspath(path)
    return is_excluded(absolute, False) or _pruned(os.path.dirname(absolute), "", is_excluded, {})


def _pruned(directory: str, top: str, is_excluded: Callable[[str, bool], bool], memo: dict[str, bool]) -> bool:
    """``directory``, or one of its parents below ``top``, is always skipped (a virtualenv,
    build output, a cache) or excluded."""
    if directory == top or os.path.dirname(directory) == directory:
        return False
    if directory not in memo:
        memo[directory] = (_pruned(os.path.dirname(directory), top, is_excluded, memo)
                           or _skipped_dir(os.path.basename(directory), directory)
                           or is_excluded(directory, True))
    return memo[directory]


def display_name(path: str) -> str:
    """One spelling per file: relative to the cwd when under it, else absolute."""
    absolute = os.path.abspath(path)
    rel = below(absolute, os.getcwd())
    return absolute if rel is None or rel == "." else rel
