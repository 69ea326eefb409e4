"""The files a directory holds, as the last run listed them, while its tree is unchanged.

Listing a project (``git ls-files``, then every file's and directory's excludes, each by its
own configuration) costs more than everything else a re-run or an editor's check does. What
the listing depends on can be checked without it: the tree's directories (a file added,
removed or renamed changes the modification time of its directory), the files that say what
is ignored or excluded (``.gitignore`` and the configuration files in the tree and above it,
git's index, its ``info/exclude`` and its configuration) and the project markers above it.
:func:`tree_state` is a digest of those stamps, taken with one walk of the directories (no
file is read); the listing kept in ``.sqla-fix-cache/files.json`` serves while the digest and
the run's own settings (``key``: the command line's excludes, ``--config``) are those it was
made with. A digest taken while a stamp was too recent to be trusted (a coarse clock could
hide a change made in the same tick) is not kept.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable

from . import cache, replay
from .config import CONFIG_FILES, MARKERS

# Files whose content (not only their presence) decides what is listed or excluded.
WATCHED = frozenset({".gitignore", *CONFIG_FILES})
# Above the top directory: the configuration files and markers that decide its settings and
# its project root.
ABOVE = (*CONFIG_FILES, *MARKERS, ".gitignore")
SCHEMA = cache.modules_schema("discovery.py", "filelist.py", "config.py")


def tree_state(top: str, skipped: Callable[[str, str], bool]) -> tuple[str, bool]:
    """A digest of what a listing of the directory ``top`` depends on, and whether it can be
    trusted (no stamp too recent). ``skipped(name, full)``: directories never listed (a
    virtualenv, build output), not walked."""
    h = hashlib.blake2b(digest_size=16)
    newest = 0
    noted: list[str] = []

    def note(path: str) -> None:
        nonlocal newest
        noted.append(path)
        try:
            st = os.stat(path)
        except OSError:
            h.update(f"{path}\0-\n".encode("utf-8", "surrogateescape"))
            return
        h.update(f"{path}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}\0{st.st_size}\n"
                 .encode("utf-8", "surrogateescape"))
        newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)

    stack = [top]
    while stack:
        here = stack.pop()
        note(here)
        try:
            with os.scandir(here) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.name in WATCHED:
                note(entry.path)
            elif entry.is_dir(follow_symlinks=False) and not skipped(entry.name, entry.path):
                stack.append(entry.path)
    here = top
    while True:  # the settings and the project root come from above too
        parent = os.path.dirname(here)
        if parent == here:
            break
        for name in ABOVE:
            note(os.path.join(parent, name))
        here = parent
    for path in _git_files(top):
        note(path)
    replay.depend(noted)  # what a listing depends on, a run's output does too
    return h.hexdigest(), time.time_ns() - newest >= cache.RACY_NS


def _git_files(top: str) -> list[str]:
    """git's own files that decide what ``git ls-files`` lists: the index, ``info/exclude``,
    the repository's configuration and the user's (a global excludes file)."""
    out = []
    home = os.path.expanduser("~")
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    out += [os.path.join(home, ".gitconfig"), os.path.join(xdg, "git", "config"), os.path.join(xdg, "git", "ignore")]
    here = top
    while True:
        dot = os.path.join(here, ".git")
        if os.path.exists(dot):
            gitdir = dot
            if os.path.isfile(dot):  # a worktree or a submodule: "gitdir: <path>"
                try:
                    with open(dot, encoding="utf-8") as fh:
                        text = fh.read().strip()
                except OSError:
                    text = ""
                gitdir = os.path.join(here, text[len("gitdir:"):].strip()) if text.startswith("gitdir:") else dot
            out += [os.path.join(gitdir, name) for name in ("index", "config", os.path.join("info", "exclude"), "commondir")]
            common = os.path.join(gitdir, "..", "..")  # a worktree's shared repository
            out += [os.path.join(common, "config"), os.path.join(common, "info", "exclude")]
            return out
        parent = os.path.dirname(here)
        if parent == here:
            return out
        here = parent


class Listings:
    """The listings kept under one project root (``.sqla-fix-cache/files.json``), by top
    directory."""

    def __init__(self, root: str, key: str) -> None:
        self.file = os.path.join(root, cache.CACHE_DIR, "files.json")
        self.key = key
        data = cache.read_json(self.file, SCHEMA)
        tops = data.get("tops") if data.get("key") == key else None
        self.tops: dict = tops if isinstance(tops, dict) else {}
        if not data:  # made now, not after the tree's state is taken: it would change the root's
            try:
                cache.make_dir(os.path.dirname(self.file))
            except OSError:
                pass

    def get(self, top: str, state: str) -> list[str] | None:
        entry = self.tops.get(top)
        if not isinstance(entry, dict) or entry.get("state") != state:
            return None
        files = entry.get("files")
        if not isinstance(files, list) or not all(type(f) is str for f in files):
            return None
        return files

    def put(self, top: str, state: str, files: list[str]) -> None:
        self.tops[top] = {"state": state, "files": files}
        cache.write_json(self.file, SCHEMA, {"key": self.key, "tops": self.tops})
