"""What SQF010's walk knows of the instances of one session: each one it tracks, and each
commit, rollback or flush that expired them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .flow import Event

if TYPE_CHECKING:
    from ..index import Model


@dataclass
class Tracked:
    """An instance attached to the session as the walk goes, or a collection of such instances
    loaded together (a list, a dict built from one): its elements share its expiry."""

    model: Model
    binding: Event | None
    optional: bool
    new_in_tx: bool  # added in the current transaction: a rollback makes it transient
    expiry: Expiry | None = None
    loaded: set[str] = field(default_factory=set)  # attributes set since the expiry
    dirty: set[str] = field(default_factory=set)  # set since the last flush: the next flush updates its row
    only: frozenset[str] | None = None  # what the expiry expired, when not every attribute
    # the expiry (with its loaded and only) that one in an except handler replaced: reads after
    # the `try` follow it when the handler leaves
    shadowed: tuple[Expiry, set[str], frozenset[str] | None] | None = None
    eager: frozenset[str] = frozenset()  # relationships its load loaded with it (an expiry expires them too)
    # deleted through the session (so it was persistent): a commit detaches it without expiring
    # it (the commit, once seen), and a rollback of the transaction that deleted it restores it
    # expired
    deleted: bool = False
    deleted_commit: Event | None = None

    def element(self, binding: Event, optional: bool = False) -> Tracked:
        """An instance taken out of this collection at ``binding``: expired as the collection is."""
        return Tracked(self.model, binding, optional, new_in_tx=False, expiry=self.expiry,
                       only=self.only, shadowed=self.shadowed, eager=self.eager)


@dataclass
class Expiry:
    event: Event  # the commit/rollback call, or the end of `async with session.begin():`
    kind: str  # "commit", "rollback", "begin", "flush"
    via: str | None = None  # the project function that commits or rolls back the session handed to it
    through: dict[str, str] = field(default_factory=dict)  # object -> the project function that read it
    refetch: bool = False  # it expired only the columns the database sets when it updates the row
    reads: dict[str, list[Event]] = field(default_factory=dict)  # object -> its expired reads
    objects: dict[str, Tracked] = field(default_factory=dict)
    expires_all: bool = False  # it expired every attribute of every instance it found
    # an expiry in a loop that the loop's next round reads through: the loop and its variable
    carried: tuple[object, str] | None = None
    # an expiry in a project caller, before it handed the instance in
    caller: Handed | None = None


@dataclass(frozen=True)
class RoundOf:
    """A loop of the first caller whose round hands in its element: in the round before,
    something expired every instance of its session (the element loaded before the loop)."""

    loop: str  # `for sub in subs` (line 12)
    session: str  # the caller's session


@dataclass(frozen=True)
class Handed:
    """How an expired instance came into a function: the calls that handed it in (nearest
    first, each "`name()` (path:line)") and what expired it in the first of them (in a round
    before, when the first of them hands it in from a loop)."""

    hops: tuple[str, ...]
    cause: str  # `db.rollback()`, `helper(...)`
    round: RoundOf | None = None

    def describe(self, X: str) -> str:
        later = f" (handed on from {', from '.join(self.hops[1:])})" if len(self.hops) > 1 else ""
        if self.round is None:
            return f"{self.hops[0]} calls this with `{X}`{later} after {self.cause} expired it"
        S = self.round.session
        return (f"{self.hops[0]} calls this with `{X}`{later} at the start of a round of the loop {self.round.loop}: "
                f"in the round before, {self.cause} expired every instance `{S}` holds, and `{X}` is the next "
                f"element of a collection loaded before the loop")


def cause_of(expiry: Expiry, S: str, line: int) -> str:
    """What expired the instances, as a finding names it: `S.commit()` (line N), or the
    project function handed the session, which may commit or roll it back."""
    if expiry.via is not None:
        done = {"commit": "may commit", "rollback": "may roll back"}[expiry.kind]
        return f"`{expiry.via}(...)` (line {line}), which {done} `{S}`,"
    cause = {"commit": f"`{S}.commit()`", "rollback": f"`{S}.rollback()`", "flush": f"`{S}.flush()`",
             "begin": f"the end of `async with {S}.begin():`"}[expiry.kind]
    return f"{cause} (line {line})"
