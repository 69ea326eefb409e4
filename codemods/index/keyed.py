"""What a project function returns under a constant key of the dict it returns.

``prep = await self._prepare(chat_id)`` where every ``return`` of ``_prepare`` is a dict
literal, ``{"chat": chat, "messages": messages}``, and ``chat`` holds a load
(``(await db.execute(select(Chat)...)).scalar_one_or_none()``): ``prep["chat"]`` is that
load's instance (``Function.returns_keys``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .facts import Returned
from .infer import Stage

if TYPE_CHECKING:
    from .queries import ProjectIndex


def returned_under(index: ProjectIndex, qualified: str | None, key: str, receiver: str | None = None) -> Returned | None:
    """What ``qualified(...)[key]`` is, when it is an ORM instance (or a list of them) that a
    query of that function loaded. ``receiver``: the class a method is called on."""
    found = index.callable_named(qualified) if qualified else None
    if found is None:
        return None
    fn, owner = found
    entry = fn.returns_keys.get(key)
    if entry is None:
        return None
    model = index.model_of_expr(entry[0], receiver or owner)
    return Returned(model, Stage(entry[1]), fn) if model is not None else None
