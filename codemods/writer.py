"""Writing fixed files without losing a byte, and the git dirty-tree guard."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Iterable

from .source import SourceFile, digest


class WriteError(Exception):
    pass


class ChangedOnDisk(WriteError):
    pass


def write_atomic(source: SourceFile, new_text: str) -> None:
    """Replace ``source.path`` with ``new_text`` encoded as the original was.

    The file is skipped (ChangedOnDisk) if its bytes differ from what was read. The new
    content goes to a temporary file in the same directory, is flushed to disk, gets the
    original permission bits, and is renamed over the original, so a reader sees either the
    old file or the new one, never half of it. A symlink is followed: its target is written.
    """
    path = os.path.realpath(source.path)
    try:
        with open(path, "rb") as fh:
            current = fh.read()
            st = os.fstat(fh.fileno())
    except OSError as exc:
        raise WriteError(f"cannot read back: {exc.strerror or exc}") from None
    if digest(current) != source.digest:
        raise ChangedOnDisk("changed on disk since it was read; skipped")
    try:
        data = source.encode(new_text)
    except UnicodeEncodeError as exc:
        raise WriteError(f"the fix cannot be encoded as {source.encoding}: {exc.reason}") from None
    replace_file(path, data, mode=source.mode if source.mode is not None else st.st_mode & 0o7777,
                 owner=(st.st_uid, st.st_gid), durable=True)


# Temporary files are named ``.<name>.<pid>.<random>.sqla-fix.tmp`` beside the file they will
# replace: a run killed before its rename leaves one behind, which a later run writing in the
# same directory recognises (the process that made it is gone) and removes.
TEMP_SUFFIX = ".sqla-fix.tmp"
_LEFTOVER = re.compile(r"\..*\.(\d+)\.[^./]+" + re.escape(TEMP_SUFFIX) + r"\Z")
_swept: set[str] = set()


def replace_file(path: str, data: bytes, mode: int | None = None, owner: tuple[int, int] | None = None,
                 durable: bool = False) -> None:
    """Replace ``path`` with ``data`` through a temporary file in the same directory and a
    rename, so a reader sees either the old file or the new one, never half of it."""
    directory = os.path.dirname(path) or "."
    remove_leftovers(directory)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.{os.getpid()}.", suffix=TEMP_SUFFIX,
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            if durable:
                os.fsync(out.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        if owner is not None:
            try:
                os.chown(tmp, *owner)
            except OSError:
                pass  # not permitted: keep our own ownership
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def remove_leftovers(directory: str) -> list[str]:
    """Remove the temporary files that killed sqla-fix runs left in ``directory`` (once per
    directory and run). Returns their names."""
    key = os.path.abspath(directory)
    if key in _swept:
        return []
    _swept.add(key)
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    for name in names:
        match = _LEFTOVER.match(name)
        if match and not _alive(int(match.group(1))):
            try:
                os.unlink(os.path.join(directory, name))
                removed.append(name)
            except OSError:
                pass
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


# --------------------------------------------------------------------------- git


def _git(args: list[str], cwd: str) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None


def git_toplevel(directory: str) -> str | None:
    proc = _git(["rev-parse", "--show-toplevel"], directory)
    if proc is None or proc.returncode != 0:
        return None
    return proc.stdout.decode("utf-8", "surrogateescape").strip() or None


def dirty_files(paths: Iterable[str]) -> list[str]:
    """Of ``paths``, those with uncommitted changes (modified, staged or untracked) in a git
    work tree. Files outside any work tree are never dirty."""
    by_top: dict[str, list[str]] = defaultdict(list)
    tops: dict[str, str | None] = {}
    for path in paths:
        directory = os.path.dirname(os.path.abspath(path))
        if directory not in tops:
            tops[directory] = git_toplevel(directory)
        top = tops[directory]
        if top is not None:
            by_top[top].append(path)
    dirty: list[str] = []
    for top, files in by_top.items():
        rels = {os.path.relpath(os.path.realpath(p), os.path.realpath(top)): p for p in files}
        proc = _git(["status", "--porcelain", "-z", "--untracked-files=all", "--", *rels], top)
        if proc is None or proc.returncode != 0:
            dirty.extend(files)  # cannot tell: be safe
            continue
        entries = proc.stdout.decode("utf-8", "surrogateescape").split("\0")
        changed = {e[3:] for e in entries if len(e) > 3}
        dirty.extend(p for rel, p in rels.items() if rel.replace(os.sep, "/") in changed)
    return sorted(dirty)
