"""A cache of the project index's per-file facts, so that repeated runs (an editor checking
one file on every save) do not re-read and re-parse the whole project.

It lives in ``<project root>/.sqla-fix-cache/``, which holds its own ``.gitignore`` (so git
never sees it, as ruff does with ``.ruff_cache``). An entry is used only while the file's
size, modification time and inode are unchanged and the cache was written by this very
version of the index (a digest of its source). Any problem reading or writing it is ignored:
the cache only ever saves time.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile

from . import __version__, index

CACHE_DIR = ".sqla-fix-cache"


def _schema() -> str:
    """The version, and a digest of the index package that extracts the cached facts: any
    change to what the index extracts (a new field, a fixed bug) invalidates every entry."""
    digest = hashlib.blake2b(digest_size=8)
    folder = os.path.dirname(index.__file__)
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            try:
                with open(os.path.join(folder, name), "rb") as fh:
                    digest.update(fh.read())
            except OSError:
                pass
    return f"{__version__}/{digest.hexdigest()}"


SCHEMA = _schema()


def _key(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class FactsCache:
    def __init__(self, root: str) -> None:
        self.dir = os.path.join(root, CACHE_DIR)
        self.file = os.path.join(self.dir, "index.pickle")
        self.entries: dict[str, tuple[tuple[int, int, int], object]] = {}
        self.changed = False
        try:
            with open(self.file, "rb") as fh:
                data = pickle.load(fh)
            if isinstance(data, dict) and data.get("schema") == SCHEMA:
                self.entries = data["entries"]
        except Exception:
            self.entries = {}

    def get(self, path: str):
        """The cached facts of ``path`` if the file is unchanged, else None."""
        entry = self.entries.get(os.path.abspath(path))
        if entry is None:
            return None
        key, facts = entry
        if key != _key(path):
            return None
        facts.path = path  # the spelling of this run
        return facts

    def put(self, path: str, facts) -> None:
        key = _key(path)
        if key is None:
            return
        absolute = os.path.abspath(path)
        old = self.entries.get(absolute)
        if old is None or old[0] != key:
            self.changed = True
        self.entries[absolute] = (key, facts)

    def save(self) -> None:
        if not self.changed:
            return
        try:
            os.makedirs(self.dir, exist_ok=True)
            ignore = os.path.join(self.dir, ".gitignore")
            if not os.path.exists(ignore):
                with open(ignore, "w") as fh:
                    fh.write("# created by sqla-fix\n*\n")
            fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".index.", suffix=".tmp")
            with os.fdopen(fd, "wb") as out:
                pickle.dump({"schema": SCHEMA, "entries": self.entries}, out, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.file)
        except Exception:
            pass
