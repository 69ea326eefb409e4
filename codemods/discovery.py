"""Which files a run looks at.

Inside a git work tree the file list comes from git itself (tracked plus untracked files that
``.gitignore`` does not ignore), so ignore rules are exactly git's. Elsewhere the tree is walked.
Either way virtualenvs, build output and caches are skipped, and ``exclude`` globs apply.
A file named explicitly on the command line is always taken.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable
from functools import lru_cache

# `env/` is not here: it is often real source (settings packages); real virtualenvs of any
# name are recognised by their pyvenv.cfg.
SKIP_DIRS = {
    ".git", ".hg", ".svn", ".venv", "venv", "__pycache__", "build", "dist",
    "node_modules", ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".eggs",
    "site-packages", "__pypackages__", ".sqla-fix-cache",
}


@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    pattern = pattern.strip().lstrip("/") if pattern.startswith("/") else pattern.strip()
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out).rstrip("/") + r"\Z")


def excluded(rel_path: str, patterns: Iterable[str]) -> bool:
    """True when ``rel_path`` (slash-separated, relative to the project root), one of its
    parent directories, or its base name matches an exclude glob."""
    parts = rel_path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))] + parts
    for pattern in patterns:
        rx = _glob_regex(pattern)
        if any(rx.match(c) for c in candidates):
            return True
    return False


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


def discover(paths: Iterable[str], root: str, exclude: Iterable[str] = ()) -> list[str]:
    """Python files under ``paths``: sorted, de-duplicated, relative when under the cwd."""
    exclude = tuple(exclude)
    found: dict[str, None] = {}
    root = os.path.abspath(root)
    for path in paths:
        if os.path.isfile(path):
            found[os.path.normpath(path)] = None  # named explicitly: always taken
            continue
        if not os.path.isdir(path):
            raise FileNotFoundError(path)
        listed = _git_files(path)
        candidates = listed if listed is not None else _walk(path)
        for full in candidates:
            absolute = os.path.abspath(full)
            rel_root = os.path.relpath(absolute, root).replace(os.sep, "/")
            rel_dir = os.path.relpath(absolute, os.path.abspath(path)).replace(os.sep, "/")
            parts = rel_dir.split("/")[:-1]
            base = os.path.abspath(path)
            skip = False
            for part in parts:
                base = os.path.join(base, part)
                if _skipped_dir(part, base):
                    skip = True
                    break
            if skip:
                continue
            if exclude and (excluded(rel_root, exclude) or excluded(rel_dir, exclude)):
                continue
            found[os.path.normpath(full)] = None
    return sorted({display_name(p) for p in found}, key=lambda p: (p.replace(os.sep, "/").lower(), p))


def display_name(path: str) -> str:
    """One spelling per file: relative to the cwd when under it, else absolute."""
    absolute = os.path.abspath(path)
    cwd = os.getcwd()
    if absolute.startswith(cwd.rstrip(os.sep) + os.sep):
        return os.path.relpath(absolute, cwd)
    return absolute
