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
``get(path)`` / ``put(path, record)`` / ``save()``. A record computed from bytes read earlier
is stored with the stamp taken *before* that read (``put(path, record, seen=...)``), so a
file rewritten meanwhile is never taken for the version that was analysed. ``meta`` holds a
few plain values about the whole cache (decoded by whoever reads them).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import __version__, codec
from .lazy import lazy

if TYPE_CHECKING:
    from . import writer
else:  # loaded to write a cache file, not to read one
    writer = lazy("codemods.writer", snapshot=False)

CACHE_DIR = ".sqla-fix-cache"
FORMAT = 1  # the layout of a cache file; the schema covers what the records mean
RACY_NS = 2_000_000_000

T = TypeVar("T")


def source_schema(package: str) -> str:
    """The version, and a digest of the modules of the package ``package`` (a sub-package of
    sqla-fix, named without importing it), which define and compute the cached records: any
    change to them (a new field, a fixed bug) invalidates every entry."""
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), package)
    return _schema_of([os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.endswith(".py")])


@functools.cache
def code_schema() -> str:
    """The version, and a digest of every module of sqla-fix: what a cached result was
    computed by."""
    here = os.path.dirname(os.path.abspath(__file__))
    files: list[str] = []
    for folder, dirs, names in sorted(os.walk(here)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        files.extend(os.path.join(folder, n) for n in sorted(names) if n.endswith(".py"))
    return _schema_of(files)


def modules_schema(*names: str) -> str:
    """The version, and a digest of the named modules of sqla-fix (``"config.py"``)."""
    here = os.path.dirname(os.path.abspath(__file__))
    return _schema_of([os.path.join(here, n) for n in names])


def _schema_of(files: list[str]) -> str:
    h = hashlib.blake2b(digest_size=8)
    for path in files:
        try:
            with open(path, "rb") as fh:
                h.update(fh.read())
        except OSError:
            pass
    return f"{__version__}/{h.hexdigest()}"


def absolute(path: str, cwd: str) -> str:
    """``os.path.abspath(path)`` with the current directory given: a loop over the files of a
    project asks the system for it once, not once per file."""
    return os.path.normpath(path if os.path.isabs(path) else os.path.join(cwd, path))


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


def content_digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def file_digest(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return content_digest(fh.read())
    except OSError:
        return None


@dataclass(frozen=True)
class Seen:
    """A file as it was read: its stamp taken before reading, and the digest of the bytes."""

    stamp: Stamp
    digest: str


def read_seen(path: str) -> tuple[bytes, Seen] | None:
    """The bytes of ``path`` and how they were seen (None: unreadable)."""
    before = stamp(path)
    if before is None:
        return None
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    return raw, Seen(before, content_digest(raw))


@dataclass
class _Entry:
    stamp: Stamp
    digest: str | None  # set for an entry stored while its file was racy
    stored_ns: int
    value: Any  # the record's plain JSON form, decoded on first use


def _entry(raw: Any) -> _Entry:
    """An entry as stored (codec.decode would do, at several times the cost: a cache holds an
    entry per file of the project and is read on every run)."""
    stamp_ = raw["stamp"]
    values = (stamp_["size"], stamp_["mtime_ns"], stamp_["ctime_ns"], stamp_["inode"], raw["stored_ns"])
    if len(raw) != 4 or len(stamp_) != 4 or any(type(v) is not int for v in values):
        raise codec.DecodeError("not a cache entry")
    digest = raw["digest"]
    if digest is not None and type(digest) is not str:
        raise codec.DecodeError("not a cache entry")
    return _Entry(Stamp(*values[:4]), digest, values[4], raw["value"])


class FileCache(Generic[T]):
    """Records of type ``kind`` keyed by file, each valid while its file is unchanged."""

    def __init__(self, root: str, name: str, kind: type[T], schema: str) -> None:
        self.dir = os.path.join(root, CACHE_DIR)
        self.file = os.path.join(self.dir, f"{name}.json")
        self.kind = kind
        self.schema = schema
        self.entries: dict[str, _Entry] = {}
        self.meta: dict[str, Any] = {}
        self.changed = False
        self._load()

    def _load(self) -> None:
        data = read_json(self.file, self.schema)
        try:
            for path, raw in data["entries"].items():
                self.entries[path] = _entry(raw)
            meta = data.get("meta", {})
            self.meta = meta if isinstance(meta, dict) else {}
        except Exception:  # missing, truncated, foreign, corrupt: start empty
            self.entries, self.meta = {}, {}

    def raw(self, path: str, absolute: str | None = None) -> Any:
        """The plain JSON form of the record stored for ``path`` (``absolute``: its absolute
        form, when the caller has it) if the file is unchanged since, else None (for callers
        that decode only what they use)."""
        entry = self.entries.get(absolute or os.path.abspath(path))
        if entry is None:
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        was = entry.stamp  # compared field by field: this runs once per file of the project
        if (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) != (was.size, was.mtime_ns, was.ctime_ns, was.inode):
            return None
        if entry.digest is not None and file_digest(path) != entry.digest:
            return None
        return entry.value

    def peek(self, path: str) -> T | None:
        """The record stored for ``path``, whether or not the file changed since (for a
        caller that checks the content itself)."""
        entry = self.entries.get(os.path.abspath(path))
        try:
            return codec.decode(self.kind, entry.value) if entry is not None else None
        except (codec.DecodeError, TypeError):
            return None

    def get(self, path: str) -> T | None:
        """The record stored for ``path`` if the file is unchanged since, else None."""
        value = self.raw(path)
        if value is None:
            return None
        try:
            return codec.decode(self.kind, value)
        except (codec.DecodeError, TypeError):
            self.forget(path)
            return None

    def forget(self, path: str) -> None:
        if self.entries.pop(os.path.abspath(path), None) is not None:
            self.changed = True

    def keep_only(self, paths) -> None:
        """Drop the entries of every file but ``paths`` (files deleted since, say)."""
        cwd = os.getcwd()
        wanted = {absolute(p, cwd) for p in paths}
        for path in [p for p in self.entries if p not in wanted]:
            del self.entries[path]
            self.changed = True

    def put(self, path: str, value: T, seen: Seen | None = None) -> None:
        """Store ``value`` for the current version of ``path`` or, with ``seen``, for the
        version that was read then (if the file changed since, the entry never matches)."""
        current = seen.stamp if seen is not None else stamp(path)
        if current is None:
            return
        absolute = os.path.abspath(path)
        old = self.entries.get(absolute)
        now = time.time_ns()
        racy = now - max(current.mtime_ns, current.ctime_ns) < RACY_NS
        plain = codec.encode(value)
        if old is not None and old.stamp == current and old.digest is None and not racy and old.value == plain:
            return  # unchanged, and stored when it could be trusted by its stamp alone
        digest = (seen.digest if seen is not None else file_digest(path)) if racy else None
        self.entries[absolute] = _Entry(current, digest, now, plain)
        self.changed = True

    def set_meta(self, key: str, value: Any) -> None:
        plain = codec.encode(value)
        if self.meta.get(key) != plain:
            self.meta[key] = plain
            self.changed = True

    def save(self) -> None:
        if self.changed:
            write_json(self.file, self.schema, {"meta": self.meta,
                                                "entries": {p: codec.encode(e) for p, e in self.entries.items()}})


def read_json(file: str, schema: str) -> dict:
    """The object a cache file holds, if it was written in this format with ``schema``;
    else (missing, truncated, foreign, corrupt) an empty one."""
    try:
        with open(file, "rb") as fh:
            data = json.load(fh)
        if data.get("format") == FORMAT and data.get("schema") == schema:
            return data
    except Exception:
        pass
    return {}


def make_dir(folder: str) -> None:
    """The cache directory, with its .gitignore (OSError when it cannot be made)."""
    os.makedirs(folder, exist_ok=True)
    ignore = os.path.join(folder, ".gitignore")
    if not os.path.exists(ignore):
        with open(ignore, "w") as fh:
            fh.write("# created by sqla-fix\n*\n")


def write_json(file: str, schema: str, payload: dict) -> None:
    """Write a cache file atomically (its directory made, with its .gitignore); a failure is
    ignored: a cache only ever saves time."""
    try:
        make_dir(os.path.dirname(file))
        data = {"format": FORMAT, "schema": schema, **payload}
        writer.replace_file(file, json.dumps(data, separators=(",", ":")).encode())
    except Exception:
        pass


class Blobs:
    """Plain JSON values stored by their digest, in one file read only when first asked
    (``.sqla-fix-cache/<name>.json``)."""

    def __init__(self, root: str, name: str, schema: str) -> None:
        self.file = os.path.join(root, CACHE_DIR, f"{name}.json")
        self.schema = schema
        self._values: dict[str, Any] | None = None

    def _all(self) -> dict[str, Any]:
        if self._values is None:
            values = read_json(self.file, self.schema).get("values")
            self._values = values if isinstance(values, dict) else {}
        return self._values

    def get(self, digest: str) -> Any:
        return self._all().get(digest)

    def replace(self, values: dict[str, Any]) -> None:
        """Store exactly ``values`` ({digest: value}), unless that is what is stored."""
        if self._values is not None and self._values == values:
            return
        self._values = dict(values)
        write_json(self.file, self.schema, {"values": self._values})


SCHEMA = source_schema("index")

