"""Where async code keeps related instances without a plain assignment: the syntax the
loaded-relationship walk (:mod:`.loaded_relationships`) follows besides ``x = ...`` and
``for x in ...``.

- ``await X.awaitable_attrs.rel`` (``AsyncAttrs``): the instances of ``X.rel``, loaded by that
  await; the awaitable may be kept in a name first and awaited later.
- ``a, b = await asyncio.gather(x, y)``: ``a`` is what awaiting ``x`` gives, ``b`` what awaiting
  ``y`` gives, in order.
- ``[i.to_dict() for i in items]``: the comprehension's variable holds one element of
  ``items`` while its reads run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy
from . import match as m

if TYPE_CHECKING:
    import libcst as cst
else:
    cst = lazy("libcst")


def awaitable_attr(value: cst.BaseExpression | None) -> tuple[str, str, bool] | None:
    """``X.awaitable_attrs.rel`` (awaited or not): ``X``, ``rel`` and whether it is awaited
    here. A conditional expression counts for the branch that is one (the other gives
    something else, read on another path)."""
    awaited = isinstance(value, cst.Await)
    node = value.expression if isinstance(value, cst.Await) else value
    if isinstance(node, cst.IfExp):
        return awaitable_attr(node.body) or awaitable_attr(node.orelse)
    if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Attribute) \
            and node.value.attr.value == "awaitable_attrs" and isinstance(node.value.value, cst.Name):
        return node.value.value.value, node.attr.value, awaited
    return None


def gathered(statement: cst.CSTNode, call: cst.CSTNode) -> list[tuple[str, str]] | None:
    """``a, b = await asyncio.gather(x, y)`` where ``call`` is that gather: the pairs of the
    name bound and the name of the awaitable it gets (``("a", "x")``); None for any other
    shape (a starred argument or target, a count that does not match, an argument that is no
    plain name)."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    assign = statement.body[0]
    if not isinstance(assign, cst.Assign) or len(assign.targets) != 1 \
            or not isinstance(assign.value, cst.Await) or assign.value.expression is not call:
        return None
    target = assign.targets[0].target
    if not isinstance(call, cst.Call) or not isinstance(target, (cst.Tuple, cst.List)) \
            or len(target.elements) != len(call.args):
        return None
    out = []
    for el, arg in zip(target.elements, call.args):
        if not isinstance(el.value, cst.Name) or arg.star or arg.keyword is not None \
                or not isinstance(arg.value, cst.Name):
            return None
        out.append((el.value.value, arg.value.value))
    return out


def is_gather(ev_owner: str | None, ev_name: str | None) -> bool:
    return ev_name == "gather" and ev_owner in ("asyncio", "anyio")


def gather_targets(fn: cst.FunctionDef) -> set[int]:
    """The ids of the tuple targets of ``... = await asyncio.gather(...)`` in ``fn``: names
    bound there are followed (see :func:`gathered`), not unsure."""
    out: set[int] = set()
    for assign in m.findall(fn.body, m.Assign()):
        value = assign.value  # type: ignore[attr-defined]
        if len(assign.targets) == 1 and isinstance(value, cst.Await) and isinstance(value.expression, cst.Call) \
                and isinstance(value.expression.func, cst.Attribute) \
                and is_gather(_name(value.expression.func.value), value.expression.func.attr.value):
            out.add(id(assign.targets[0].target))  # type: ignore[attr-defined]
    return out


def _name(node: cst.BaseExpression) -> str | None:
    return node.value if isinstance(node, cst.Name) else None


def comprehension_reads(fn: cst.FunctionDef) -> dict[int, cst.CompFor]:
    """``X.attr`` nodes (by id) inside a comprehension of one ``for X in ...`` clause, where
    ``X`` is its variable, with that clause (its ``iter`` is what ``X`` runs over)."""
    out: dict[int, cst.CompFor] = {}
    kinds = (m.ListComp(), m.SetComp(), m.GeneratorExp(), m.DictComp())
    for kind in kinds:
        for comp in m.findall(fn.body, kind):
            clause = comp.for_in  # type: ignore[attr-defined]
            if clause.inner_for_in is not None or not isinstance(clause.target, cst.Name):
                continue
            name = clause.target.value
            parts = [comp.key, comp.value] if isinstance(comp, cst.DictComp) else [comp.elt]  # type: ignore[attr-defined]
            parts += [c.test for c in clause.ifs]
            for part in parts:
                for attr in m.findall(part, m.Attribute(value=m.Name(name))):
                    out.setdefault(id(attr), clause)
    return out
