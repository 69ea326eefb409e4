"""For SQF006, sync code: a lazy relationship of an object read after the `with` block that
got it closed its session, when a project function built the object, committed the session it
was given and returned it.

`with GetDB() as db: user = crud.create_user(db, data)` and, after the block, `user.proxies`:
under a session that expires on commit, the commit expired every relationship the object was
built with (a `refresh()` reloads columns only), the block's end closed the session, and the
first read of the relationship raises DetachedInstanceError. A relationship read in the block
after the binding is loaded (the read loads it). Objects the block loads through its session
are SQF003's (it reports their relationships read after the block too).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..lazy import lazy
from .flow import Bound, Event, EventKind, call_argument, lazy_relationships_read, with_end, with_scopes
from .helpers import dotted

if TYPE_CHECKING:
    import libcst as cst

    from ..index import Scope
    from .base import FileContext
else:
    cst = lazy("libcst")


@dataclass(frozen=True)
class ClosedRead:
    """A read, after the block, of a lazy relationship the block left unloaded."""

    event: Event
    name: str  # the object's local name
    relationship: str
    model: str  # its class name
    block_line: int  # the `with` statement's line
    built: str  # the project function that built and committed it, as called
    session: str  # the block's session, as named there


def closed_scope_reads(ctx: FileContext, evs: list[Event]) -> Iterator[ClosedRead]:
    """The reads, in a sync function, of lazy relationships of objects bound in a `with` block
    whose session the block closes, after that block."""
    for w in evs:
        if w.kind != EventKind.WITH or w.node.asynchronous:  # type: ignore[attr-defined]
            continue
        end = with_end(evs, w.node)
        region = evs[w.index + 1: end]
        for name, scope in with_scopes(ctx, w.node):  # type: ignore[arg-type]
            if scope.yields != "session" or not scope.closes_on_exit:
                continue
            for ev in region:
                if ev.kind != EventKind.ASSIGN or ev.name is None:
                    continue
                bound, built = _bound(ctx, ev, name, scope)
                if bound is None or built is None:
                    continue
                found = _read_after(evs, region, ev, ev.name, bound, end)
                if found is not None:
                    yield ClosedRead(found[0], ev.name, found[1], bound.model.name,
                                     ctx.position(w.node).start.line, built, name)


def _bound(ctx: FileContext, ev: Event, N: str, scope: Scope) -> tuple[Bound | None, str | None]:
    """What ``ev`` binds through the session ``N`` when a project function built it, committed
    (expiring it) and returned it: the instance, and that function as called."""
    value = ev.value
    if not isinstance(value, cst.Call) or not scope.expire_on_commit:
        return None, None
    callee = dotted(value.func)
    arg = next((a for a in value.args if isinstance(a.value, cst.Name) and a.value.value == N), None)
    if callee is None or arg is None:
        return None, None
    probe = Event(EventKind.USE, arg.value, ev.path, name=N, value=value)
    where = call_argument(probe)
    model = ctx.index.built_and_committed(ctx.qualify(callee), where[1]) if where is not None else None
    return (Bound(ev, model, False), callee) if model is not None else (None, None)


def _read_after(evs: list[Event], region: list[Event], ev: Event, X: str, bound: Bound,
                end: int) -> tuple[Event, str] | None:
    """The first read of an unloaded lazy relationship of ``X`` after the block (index
    ``end``), while ``X`` still names what ``ev`` bound."""
    loaded: set[str] = set()
    for r in region:
        if r.index <= ev.index:
            continue
        if r.kind == EventKind.ASSIGN and r.name == X:
            return None  # bound again in the block
        if r.kind == EventKind.READ and r.owner == X:
            loaded.update(lazy_relationships_read(bound.model, r.name or "", bound.eager) or [r.name or ""])
        if r.kind in (EventKind.USE, EventKind.NESTED) and r.name == X:
            return None  # handed to other code in the block, which may load what it needs
    for r in evs[end + 1:]:
        if r.kind == EventKind.ASSIGN and r.name == X:
            return None
        if r.kind == EventKind.READ and r.owner == X:
            rels = [rel for rel in lazy_relationships_read(bound.model, r.name or "", bound.eager) if rel not in loaded]
            if rels:
                return r, rels[0]
    return None
