"""The callers' walks that hand nothing, kept between runs of one file from an editor.

SQF010 follows an instance a project caller expired into the function it hands it to (see
:mod:`.passes.expiry_handoff`): to know, it parses the caller's file and walks the caller. Most
callers hand nothing expired, and an editor checks the same file again and again while its
callers do not change. ``.sqla-fix-cache/handoffs.json`` keeps, for the state of the index and
the configuration of the last run (:func:`.results.key`), each caller walk that found no
hand-off, with the content digest of every file the walk read (the caller's, and those of its
own callers when it followed them). A later run of that state takes "nothing handed" from it
while each of those files still has that content, and parses nothing; any other walk is made
as before. A walk that found a hand-off is not kept (its answer holds syntax trees).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from . import cache, codec

SCHEMA = cache.code_schema()


@dataclass
class Walked:
    """A caller's walk that handed nothing: the files it read, by content digest."""

    files: dict[str, str]


def _name(path: str, qualname: str, depth: int) -> str:
    return f"{os.path.abspath(path)}\0{qualname}\0{depth}"


class Store:
    """The walks kept for one state of the index (``key``), in ``root``'s cache."""

    def __init__(self, root: str, key: str) -> None:
        self.file = os.path.join(root, cache.CACHE_DIR, "handoffs.json")
        self.key = key
        data = cache.read_json(self.file, SCHEMA)
        walks = data.get("walks") if data.get("key") == key else None
        self.walks: dict[str, Any] = walks if isinstance(walks, dict) else {}
        self.changed = False

    def nothing_handed(self, path: str, qualname: str, depth: int) -> dict[str, str] | None:
        """The files the walk of ``qualname`` in ``path`` read (by content digest), if it
        handed nothing and each of them is as it was; else None."""
        plain = self.walks.get(_name(path, qualname, depth))
        if plain is None:
            return None
        try:
            walked = codec.decode(Walked, plain)
        except (codec.DecodeError, TypeError):
            return None
        same = walked.files and all(cache.file_digest(p) == d for p, d in walked.files.items())
        return walked.files if same else None

    def keep(self, path: str, qualname: str, depth: int, files: dict[str, str]) -> None:
        """Keep "nothing handed" for the walk that read ``files`` (path: digest of the bytes
        it parsed)."""
        if files:
            self.walks[_name(path, qualname, depth)] = codec.encode(Walked({os.path.abspath(p): d for p, d in files.items()}))
            self.changed = True

    def save(self) -> None:
        if self.changed:
            cache.write_json(self.file, SCHEMA, {"key": self.key, "walks": self.walks})
            self.changed = False


# The store of the run in progress, and the index it was made for: a walk made with any other
# index (a test's, the server's) neither reads nor fills it.
_ACTIVE: tuple[Store, object] | None = None


@contextmanager
def kept(store: Store, index: object):
    """Use and fill ``store`` for the walks made with ``index`` while in the block; saved at
    its end."""
    global _ACTIVE
    previous, _ACTIVE = _ACTIVE, (store, index)
    try:
        yield store
    finally:
        _ACTIVE = previous
        store.save()


def active(index: object) -> Store | None:
    """The store for walks made with ``index``, if a run keeps one."""
    return _ACTIVE[0] if _ACTIVE is not None and _ACTIVE[1] is index else None
