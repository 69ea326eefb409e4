"""The answer of a re-run with nothing changed, given before the command line is loaded.

A run of ``sqla-fix check`` leaves a record of itself: the exact bytes it wrote to stdout and
stderr (in the order written), its exit status, and what they depend on: the command line,
the current directory, the version and code of sqla-fix, the interpreter, the environment
variables and terminal facts the output reads, and the stamp (size, modification and
status-change times, inode) of every path the run's answer came from: every file of the
project, the directories walked to list them, the configuration and ignore files that decide
the listing and the settings (see :mod:`.filelist`), git's own files, a ``--config`` file, and
sqla-fix's own modules. A later run of the same command replays the record when every one of
those is as recorded; on any difference or doubt it goes the normal way (and records anew).

Only ``check`` is recorded, never with ``--no-cache``, stdin (``-``) or ``--output-file``
(which writes a file), and a run is not recorded when it reported a file it could not analyse
(a syntax error, a time limit: as in the results cache), when the stamps cannot vouch for what
was read (a path changed while the run was under way), or when part of the project was listed
without a stamped tree (a root no project marker gave). A path changed within
:data:`RACY_NS` before the run, when a coarse clock could hide a second change, is recorded
with its content digest (a directory: its names) as well, compared on replay.

This module imports nothing of sqla-fix's but its version: a replay costs the interpreter's
start-up, reading one record and a stat per path. Records are data only (JSON of plain
values, checked for shape), in the project's ``.sqla-fix-cache/`` (the nearest one above the
current directory), one file per command line and directory, the last :data:`KEEP` kept.
"""

from __future__ import annotations

import io
import os
import sys
import time
from contextlib import contextmanager

from . import __version__

TYPE_CHECKING = False  # typing itself costs more than a replay's own code
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import Any

MAGIC = b"sqla-fix replay 1\n"
CACHE_DIR = ".sqla-fix-cache"  # as cache.CACHE_DIR (not imported: that module costs more than a replay)
RACY_NS = 2_000_000_000  # as cache.RACY_NS
KEEP = 16  # records kept per cache directory (one per command line and directory)
# Environment variables the output can depend on (the listing goes through git, the report's
# encoding through the locale, colour through the terminal's settings).
ENV_NAMES = frozenset({"HOME", "XDG_CONFIG_HOME", "PATH", "LANG", "LANGUAGE", "TERM", "COLUMNS", "LINES",
                       "NO_COLOR", "FORCE_COLOR", "CLICOLOR", "CLICOLOR_FORCE", "TZ"})
ENV_PREFIXES = ("SQLA_FIX", "GIT_", "PYTHON", "LC_")
STDOUT, STDERR = b"1", b"2"
MISSING = "-"  # the stamp of a path that does not exist


def eligible(argv: list[str]) -> bool:
    """A command line whose output a record may stand for: ``check``, using the cache,
    writing nothing but to stdout and stderr, reading no stdin. Unsure spellings (short
    options bunched together, an ``-o`` anywhere) count as not eligible."""
    if argv[:1] != ["check"]:
        return False
    for arg in argv[1:]:
        if arg in ("-", "--no-cache", "--help") or arg.startswith("--output-file"):
            return False
        if arg.startswith("-") and not arg.startswith("--") and ("o" in arg or "h" in arg):
            return False
    return True


# The record is a few netstrings (``<length>:<bytes>,``) after MAGIC: the run's key, its exit
# status, the stamps, then the output's chunks (stream, bytes) in the order written. Not JSON:
# the json module imports `re`, which costs a third of a replay.


def _net(data: bytes) -> bytes:
    return b"%d:%s," % (len(data), data)


def _nets(data: bytes, pos: int = 0) -> list[bytes]:
    out = []
    while pos < len(data):
        colon = data.index(b":", pos)
        digits = data[pos:colon]
        if not digits.isdigit():
            raise ValueError("not a record")
        end = colon + 1 + int(digits)
        if data[end:end + 1] != b",":
            raise ValueError("not a record")
        out.append(data[colon + 1:end])
        pos = end + 1
    return out


def _text(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")


def _key(argv: list[str]) -> bytes:
    """Everything but the files that the output depends on, as bytes."""
    env = sorted((k, v) for k, v in os.environ.items() if k in ENV_NAMES or k.startswith(ENV_PREFIXES))
    streams = [f"{s.isatty()} {s.encoding} {s.errors}" for s in (sys.stdout, sys.stderr)]
    fields = [
        b"".join(_net(_text(a)) for a in argv),
        _text(os.getcwd()),
        _text(__version__),
        _text(sys.executable),
        _text(sys.version),
        b"".join(_net(_text(k)) + _net(_text(v)) for k, v in env),
        b"".join(_net(_text(s)) for s in streams),
    ]
    return b"".join(_net(f) for f in fields)


def _record_file(argv: list[str]) -> str | None:
    """Where the record of ``argv`` run in the current directory lives: the nearest cache
    directory at or above it (None: there is none), a file named by a hash of both."""
    cwd = here = os.getcwd()
    while True:
        folder = os.path.join(here, CACHE_DIR)
        if os.path.isdir(folder):
            name = 0xCBF29CE484222325  # FNV-1a, 64 bits: a name, not a check (the key is compared whole)
            for byte in _text("\0".join([cwd, *argv])):
                name = ((name ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
            return os.path.join(folder, f"run-{name:016x}")
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


# --------------------------------------------------------------------------- replaying


def answer(argv: list[str]) -> int | None:
    """Write the recorded output of ``argv`` and return its exit status, if a record of this
    very run with nothing changed exists; else None, having written nothing."""
    try:
        file = _record_file(argv)
        if file is None:
            return None
        with open(file, "rb") as fh:
            data = fh.read()
        if not data.startswith(MAGIC):
            return None
        key, code, stamps, *chunks = _nets(data, len(MAGIC))
        if key != _key(argv) or not code.isdigit() or len(chunks) % 2 or not _unchanged(stamps):
            return None
    except Exception:  # missing, unreadable, foreign, corrupt: the normal way
        return None
    for i in range(0, len(chunks), 2):
        out = sys.stdout if chunks[i] == STDOUT else sys.stderr
        out.buffer.write(chunks[i + 1])
        out.flush()
    return int(code)


def _stamp(path: str) -> str:
    try:
        return _stamp_of(os.stat(path))
    except OSError:
        return MISSING


def _stamp_of(st: os.stat_result) -> str:
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino}"


def _unchanged(stamps: bytes) -> bool:
    """Every path is as recorded (a racy one: its content too). ``stamps``: path, stamp and
    content (empty unless racy) of each, NUL-separated."""
    fields = stamps.decode("utf-8", "surrogateescape").split("\0")
    if len(fields) % 3:
        return False
    racy = []
    for i in range(0, len(fields), 3):
        path = fields[i]
        if _stamp(path) != fields[i + 1]:
            return False
        if fields[i + 2]:
            racy.append((path, fields[i + 2]))
    return all(_content(path) == content for path, content in racy)


def _content(path: str) -> str:
    """What identifies a path's content: a file's digest, a directory's names."""
    try:
        if os.path.isdir(path):
            return "d:" + "/".join(sorted(os.listdir(path)))
        import hashlib

        with open(path, "rb") as fh:
            return "f:" + hashlib.blake2b(fh.read(), digest_size=16).hexdigest()
    except OSError:
        return "?"


# --------------------------------------------------------------------------- recording


class _Tee(io.BufferedIOBase):
    """A binary stream that writes through to ``target`` and notes what it wrote."""

    def __init__(self, target: Any, stream: bytes, log: list[tuple[bytes, bytes]]) -> None:
        super().__init__()
        self.target, self.stream, self.log = target, stream, log

    def write(self, data: Any) -> int:
        data = bytes(data)
        self.log.append((self.stream, data))
        return self.target.write(data)

    def flush(self) -> None:
        self.target.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.target.isatty()

    def fileno(self) -> int:
        return self.target.fileno()


class Recording:
    """What a run declares about itself while it is recorded."""

    def __init__(self) -> None:
        self.start_ns = time.time_ns()
        self.log: list[tuple[bytes, bytes]] = []
        self.paths: set[str] = set()
        self.doubt = False
        self.real_stderr: Any = None


_current: Recording | None = None


def depend(paths: Iterable[str]) -> None:
    """The output of the run being recorded depends on these paths (files or directories;
    existing or not) being as they are now."""
    if _current is not None:
        cwd = os.getcwd()
        _current.paths.update(os.path.normpath(os.path.join(cwd, p)) for p in paths)


def doubt() -> None:
    """The output of the run being recorded depends on something no stamp vouches for: it
    is not recorded."""
    if _current is not None:
        _current.doubt = True


def real_stderr() -> Any:
    """stderr as it is without the recording (for what is shown but is not output: a
    progress bar)."""
    return _current.real_stderr if _current is not None and _current.real_stderr is not None else sys.stderr


def _wrap(stream: Any, number: bytes, log: list[tuple[bytes, bytes]]) -> Any:
    return io.TextIOWrapper(_Tee(stream.buffer, number, log), encoding=stream.encoding, errors=stream.errors,
                            line_buffering=stream.line_buffering, write_through=True)


@contextmanager
def recording(argv: list[str]) -> Iterator[None]:
    """Run the body (the normal path of ``argv``) and leave a record of it, if it can be
    trusted to stand for a later run."""
    global _current
    key = _key(argv)
    rec = _current = Recording()
    saved = sys.stdout, sys.stderr
    code: Any = 0
    try:
        if all(hasattr(s, "buffer") for s in saved):
            rec.real_stderr = sys.stderr
            sys.stdout, sys.stderr = _wrap(saved[0], STDOUT, rec.log), _wrap(saved[1], STDERR, rec.log)
        else:
            rec.doubt = True
        try:
            yield
        except SystemExit as exc:
            code = exc.code
            raise
    finally:
        for s in (sys.stdout, sys.stderr):
            s.flush()
        sys.stdout, sys.stderr = saved
        _current = None
        if type(code) is int and code in (0, 1) and not rec.doubt and rec.paths:
            _store(argv, key, rec, code)


def _code_paths() -> list[str]:
    """sqla-fix's own modules and folders, and the packages that compute its output."""
    here = os.path.dirname(os.path.abspath(__file__))
    out = []
    for folder, dirs, names in os.walk(here):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        out.append(folder)
        out.extend(os.path.join(folder, n) for n in names if n.endswith(".py"))
    import importlib.util

    for name in ("click", "libcst"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            out.append(spec.origin)
    return out


def _store(argv: list[str], key: bytes, rec: Recording, code: int) -> None:
    try:
        file = _record_file(argv)
        if file is None:
            return
        fields = []
        for path in sorted(rec.paths.union(_code_paths())):
            if "\0" in path:
                return
            try:
                st = os.stat(path)
            except OSError:
                fields += [path, MISSING, ""]
                continue
            if st.st_ctime_ns >= rec.start_ns - 10_000_000:  # changed while the run read it (a coarse clock's tick allowed)
                return
            content = _content(path) if max(st.st_mtime_ns, st.st_ctime_ns) >= rec.start_ns - RACY_NS else ""
            fields += [path, _stamp_of(st), content]
        parts = [key, b"%d" % code, _text("\0".join(fields))]
        for stream, data in rec.log:
            if data:
                parts += [stream, data]
        from . import writer

        writer.replace_file(file, MAGIC + b"".join(_net(p) for p in parts))
        _prune(os.path.dirname(file))
    except Exception:  # a record only ever saves time
        pass


def _prune(folder: str) -> None:
    runs = [os.path.join(folder, n) for n in os.listdir(folder) if n.startswith("run-")]
    if len(runs) > KEEP:
        runs.sort(key=lambda p: os.stat(p).st_mtime_ns)
        for path in runs[:-KEEP]:
            os.unlink(path)
