"""Per-file caches, so that repeated runs (an editor checking one file on every save) do not
re-read and re-parse the whole project.

They live in ``<project root>/.sqla-fix-cache/``, which holds its own ``.gitignore`` (so git
never sees it, as ruff does with ``.ruff_cache``). A cache file is data only: JSON of plain
values, decoded against the type hints of the cached records (see ``codec``), so a planted or
corrupted file can at worst be ignored, never run code. An entry is used only while its file
is unchanged: same size, modification and status-change times and inode (and, for a file
changed within :data:`RACY_NS` of the moment the entry was stored, when the coarse clock of
the file system could hide a rewrite, the same content digest), and only by the very version
of the code that wrote it. Any problem reading or writing a cache is ignored: a cache only ever
saves time.

To cache something new per file: ``FileCache(root, "name", RecordType, schema)``, then
``get(path)`` / ``put(path, record)`` / ``save()``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from . import __version__, codec, index, writer

CACHE_DIR = ".sqla-fix-cache"
FORMAT = 1  # the layout of a cache file; the schema covers what the records mean
RACY_NS = 2_000_000_000

T = TypeVar("T")


def source_schema(*modules) -> str:
    """The version, and a digest of the modules that define and compute the cached records
    (every module of a package): any change to them (a new field, a fixed bug) invalidates
    every entry."""
    h = hashlib.blake2b(digest_size=8)
    for module in modules:
        files = [module.__file__]
        if os.path.basename(module.__file__) == "__init__.py":
            folder = os.path.dirname(module.__file__)
            files = [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.endswith(".py")]
        for path in files:
            try:
                with open(path, "rb") as fh:
                    h.update(fh.read())
            except OSError:
                pass
    return f"{__version__}/{h.hexdigest()}"


@dataclass(frozen=True)
class Stamp:
    """What identifies one version of a file without reading it."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int


def stamp(path: str) -> Stamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return Stamp(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _digest(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.blake2b(fh.read(), digest_size=16).hexdigest()
    except OSError:
        return None


@dataclass
class _Entry:
    stamp: Stamp
    digest: str | None  # set for an entry stored while its file was racy
    stored_ns: int
    value: Any  # the record's plain JSON form, decoded on first use


class FileCache(Generic[T]):
    """Records of type ``kind`` keyed by file, each valid while its file is unchanged."""

    def __init__(self, root: str, name: str, kind: type[T], schema: str) -> None:
        self.dir = os.path.join(root, CACHE_DIR)
        self.file = os.path.join(self.dir, f"{name}.json")
        self.kind = kind
        self.schema = schema
        self.entries: dict[str, _Entry] = {}
        self.changed = False
        self._load()

    def _load(self) -> None:
        try:
            with open(self.file, "rb") as fh:
                data = json.load(fh)
            if data.get("format") != FORMAT or data.get("schema") != self.schema:
                return
            for path, raw in data["entries"].items():
                entry = codec.decode(_Entry, raw)
                if isinstance(path, str):
                    self.entries[path] = entry
        except Exception:  # missing, truncated, foreign, corrupt: start empty
            self.entries = {}

    def get(self, path: str) -> T | None:
        """The record stored for ``path`` if the file is unchanged since, else None."""
        absolute = os.path.abspath(path)
        entry = self.entries.get(absolute)
        if entry is None:
            return None
        current = stamp(path)
        if current != entry.stamp:
            return None
        if entry.digest is not None and _digest(path) != entry.digest:
            return None
        try:
            return codec.decode(self.kind, entry.value)
        except (codec.DecodeError, TypeError):
            del self.entries[absolute]
            self.changed = True
            return None

    def put(self, path: str, value: T) -> None:
        current = stamp(path)
        if current is None:
            return
        absolute = os.path.abspath(path)
        old = self.entries.get(absolute)
        now = time.time_ns()
        racy = now - max(current.mtime_ns, current.ctime_ns) < RACY_NS
        if old is not None and old.stamp == current and old.digest is None and not racy:
            return  # unchanged, and stored when it could be trusted by its stamp alone
        self.entries[absolute] = _Entry(current, _digest(path) if racy else None, now, codec.encode(value))
        self.changed = True

    def save(self) -> None:
        if not self.changed:
            return
        try:
            os.makedirs(self.dir, exist_ok=True)
            ignore = os.path.join(self.dir, ".gitignore")
            if not os.path.exists(ignore):
                with open(ignore, "w") as fh:
                    fh.write("# created by sqla-fix\n*\n")
            data = {"format": FORMAT, "schema": self.schema,
                    "entries": {p: codec.encode(e) for p, e in self.entries.items()}}
            writer.replace_file(self.file, json.dumps(data, separators=(",", ":")).encode())
        except Exception:
            pass


SCHEMA = source_schema(index)


def facts_cache(root: str) -> FileCache[index.ModuleFacts]:
    """The project index's facts per file."""
    return FileCache(root, "index", index.ModuleFacts, SCHEMA)
