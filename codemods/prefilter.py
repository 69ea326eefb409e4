"""The byte scans that decide whether a file is read at all, without the index's code.

The index reads a file whose bytes hold one of :data:`INDEX_TRIGGERS` (or a session-related
name it has found); the passes look at a file whose bytes hold one of :func:`relevance_of` the
index's names. Both are plain byte searches, kept here so that a run which reads no file (a
re-run, an editor's file with no session code) never imports the index.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import Config
    from .passes import Pass

INDEX_TRIGGERS = (b"sqlalchemy", b"sqlmodel", b"Depends", b"flask_sqlalchemy")
# The databases an engine URL names (``index.aborts``): a settings module that only builds the
# URL is read by the index too (and not, for that, by the passes)
DATABASE_TRIGGERS = (b"postgres", b"sqlite", b"mysql", b"mariadb", b"oracle", b"mssql", b"cockroachdb", b"duckdb")


def minimal_tokens(tokens: Iterable[str]) -> tuple[bytes, ...]:
    """The tokens, less those that contain a shorter one (the shorter already matches)."""
    kept = sorted({t for t in tokens if t}, key=len)
    out: list[str] = []
    for t in kept:
        if not any(o in t for o in out):
            out.append(t)
    return tuple(t.encode() for t in out)


def relevance_of(names: Iterable[str]) -> tuple[bytes, ...]:
    """:meth:`ProjectIndex.relevance` for an index with these session-related names."""
    return minimal_tokens({"session", "Session"} | {t.decode() for t in INDEX_TRIGGERS} | set(names))


# What every index's relevance matches, whatever the project's names: a file that mentions one
# needs no look at them (working them out reads every module's facts, again after each change
# of the index in an editor's server).
ALWAYS_RELEVANT = relevance_of(())


def relevant(raw: bytes, index) -> bool:
    """Do ``raw``'s bytes hold one of ``index.relevance()``? The tokens of every project are
    looked for first, the project's own names only when none is there."""
    return any(t in raw for t in ALWAYS_RELEVANT) or any(t in raw for t in index.relevance())


def selected_passes(config: Config) -> list[Pass]:
    from .passes import ALL_PASSES  # their metadata; libcst is loaded only when one runs

    return [p() for p in ALL_PASSES if config.enabled(p.code)]


def wants_parse(raw: bytes, passes: Sequence[Pass], index=None) -> bool:
    """The prefilter: a byte scan, no parse. A file is parsed only if it contains a trigger of
    a selected pass *and* mentions something session-related (SQLAlchemy itself, or a factory,
    provider or alias name the project index found)."""
    if not any(t in raw for p in passes for t in p.triggers):
        return False
    return index is None or relevant(raw, index)
