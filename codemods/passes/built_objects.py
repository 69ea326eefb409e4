"""Objects a function builds around a session it holds: `repo = UserRepository(session)`, or
a class method that does it (`repo = UserRepository.from_session(session)`). Their methods act
on that session (through the `self.<attr>` their constructor keeps it in), so for SQF009 a
method that flushes it is a flush of the session, and a method that queries it is a use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..lazy import lazy
from .flow import EventKind, call_argument
from .helpers import dotted, with_binds

if TYPE_CHECKING:
    import libcst as cst

    from .base import FileContext
    from .flow import Event
else:
    cst = lazy("libcst")


@dataclass(frozen=True)
class Built:
    """An object of a project class built around a session."""

    session: str  # the session's name in the function
    cls: str  # the class, qualified
    passed: int | str  # where its constructor gets the session


def built_around(ctx: FileContext, evs: list[Event]) -> dict[str, Built]:
    """Local name -> the object it holds, for names bound once in the function to an object
    built around a session (a name bound twice is left out: which object a call reaches is
    not followed)."""
    bound: dict[str, int] = {}
    values: dict[int, str] = {}
    for ev in evs:
        if ev.kind == EventKind.ASSIGN and ev.name:
            bound[ev.name] = bound.get(ev.name, 0) + 1
            value = ev.value.expression if isinstance(ev.value, cst.Await) else ev.value
            if isinstance(value, cst.Call):
                values[id(value)] = ev.name
    out: dict[str, Built] = {}
    for ev in evs:
        if ev.kind != EventKind.USE or not ev.name or not isinstance(ev.value, cst.Call):
            continue
        name = values.get(id(ev.value))
        where = call_argument(ev)
        callee = dotted(ev.value.func)
        if name is None or bound[name] != 1 or where is None or callee is None or callee.startswith("self."):
            continue
        made = ctx.index.built_by(ctx.qualify(callee), where[1])
        if made is not None:
            out[name] = Built(ev.name, made[0], made[1])
    return out


def users_of(built: dict[str, Built], session: str) -> dict[str, Built]:
    """The objects of ``built`` around ``session``."""
    return {name: b for name, b in built.items() if b.session == session}


def uses_through(ctx: FileContext, ev: Event, users: dict[str, Built]) -> bool:
    """Is ``ev`` a call of a method of one of ``users`` that queries or flushes its session?"""
    made = users.get(ev.owner or "") if ev.kind == EventKind.CALL else None
    return made is not None and ctx.index.method_uses_session(made.cls, ev.name or "")


def savepoints(evs: list[Event], S: str) -> set[str]:
    """Names bound to a savepoint of ``S`` (`nested = await S.begin_nested()`, or `async with
    S.begin_nested() as nested:`): rolling one back makes the session usable again."""
    out = set()
    for ev in evs:
        if ev.kind == EventKind.ASSIGN and ev.name and _begins_savepoint(ev.value, S):
            out.add(ev.name)
        elif ev.kind == EventKind.WITH:
            for item in ev.node.items:  # type: ignore[attr-defined]
                bound = with_binds(item)
                if bound is not None and _begins_savepoint(item.item, S):
                    out.add(bound)
    return out


def _begins_savepoint(value: cst.BaseExpression | None, S: str) -> bool:
    value = value.expression if isinstance(value, cst.Await) else value
    return isinstance(value, cst.Call) and dotted(value.func) == f"{S}.begin_nested"
