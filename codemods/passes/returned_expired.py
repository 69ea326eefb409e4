"""SQF005, one more way out: an `async def` commits an async session it did not open (a
parameter, ``self.session``, a provider's) and returns an instance that commit expired.

The session stays open, so the instance is not detached; but its columns are expired, and the
caller's first read of one reloads it implicitly, which an ``AsyncSession`` cannot do
(MissingGreenlet). Only instances proven attached to that session at the commit count: loaded
through it, or handed to its ``add()``/``refresh()`` before the commit (both attach it, or
raise)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..lazy import lazy
from .flow import BindingKind, Event, EventKind, SessionRef, binding_of, reachable_only_through

if TYPE_CHECKING:
    import libcst as cst

    from .base import FileContext
else:
    cst = lazy("libcst")

# calls on the session that attach the instance they are given (or raise)
_ATTACHING = ("add", "refresh")


@dataclass(frozen=True)
class ReturnedExpired:
    """``return X`` after ``S.commit()`` expired X, with nothing in between reloading it."""

    name: str
    commit: Event
    ret: Event


def returned_expired(ctx: FileContext, evs: list[Event], ref: SessionRef) -> Iterator[ReturnedExpired]:
    """The instances an async function returns after the last commit of ``ref`` (a session it
    was handed, still open after the function) expired them."""
    S = ref.name
    if not ref.expire_on_commit or ref.block is not None or ref.decorated:
        return
    for ret in evs:
        if ret.kind != EventKind.ESCAPE or ret.name is None or not _is_return(ret):
            continue
        X = ret.name
        before = evs[:ret.index]
        commit = next((e for e in reversed(before) if e.kind == EventKind.CALL and e.owner == S), None)
        if commit is None or commit.name != "commit" or not reachable_only_through(ret, commit):
            continue  # the session's last call before the return is not a commit
        if any(_touches(e, X, S) for e in evs[commit.index + 1:ret.index]):
            continue  # rebound, handed on or changed after the commit: maybe reloaded
        if _attached(ctx, before[:commit.index], X, ref, commit):
            yield ReturnedExpired(X, commit, ret)


def _is_return(ev: Event) -> bool:
    return isinstance(ev.node, cst.Return)


def _touches(e: Event, X: str, S: str) -> bool:
    """Might ``e`` reload X or take it out of the session's reach: X rebound, X or the session
    handed to a call, X read, changed or called, another call on the session (a query may
    refresh it, a rollback or close changes what the claim says)."""
    if e.kind == EventKind.ASSIGN and e.name == X:
        return True
    if e.kind == EventKind.USE and e.name in (X, S):
        return True
    if e.kind in (EventKind.METHOD, EventKind.WRITE, EventKind.READ) and e.owner == X:
        return True  # a read here is SQF010's (it raises first)
    return e.kind == EventKind.CALL and (e.owner == S or e.owner == X)


def _attached(ctx: FileContext, before: list[Event], X: str, ref: SessionRef, commit: Event) -> bool:
    """Is X in the session at ``commit``: bound by a load through it, or handed to its
    ``add``/``refresh`` after X's last binding, on every path to the commit?"""
    S = ref.name
    last_bind = next((e for e in reversed(before) if e.kind == EventKind.ASSIGN and e.name == X), None)
    if last_bind is not None and reachable_only_through(commit, last_bind):
        binding = binding_of(ctx, last_bind.value, {S: ref})
        if binding.kind == BindingKind.LOADED:
            return True
    start = last_bind.index if last_bind is not None else -1
    return any(e.kind == EventKind.CALL and e.owner == S and e.name in _ATTACHING and e.args[:1] == (X,)
               and e.index > start and reachable_only_through(commit, e) for e in before)
