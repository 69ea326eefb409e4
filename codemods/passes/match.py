"""The part of ``libcst.matchers`` the passes use, without importing it.

``libcst.matchers`` defines a matcher class for every node type (hundreds of dataclasses):
importing it costs a quarter of a second, in every process that analyses a file (an editor's
check, each worker). The passes only ever ask two things: does a node match a pattern
(:func:`matches`), and which nodes under a root do, in the order a libcst visit meets them
(:func:`findall`). The patterns are spelled as with libcst (``m.Call(func=m.Attribute(attr=
m.Name("options")))``, ``m.Await() | m.Yield()``, ``[m.ZeroOrMore(), m.Element(value=X),
m.ZeroOrMore()]``, ``m.DoNotCare()``) and mean what they mean there: a node matches when its
type has the pattern's name and every field the pattern names matches (a string or a bool
by equality, a node pattern, one of several, a sequence element by element). Tests compare
both on every fixture and sample.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..lazy import lazy
from .base import layout_types, visit_order_children

if TYPE_CHECKING:
    import libcst as cst
else:
    cst = lazy("libcst")


class Pattern:
    """A node of the type named ``kind`` whose fields match ``fields``."""

    __slots__ = ("kind", "fields")

    def __init__(self, kind: str, fields: dict[str, Any]) -> None:
        self.kind, self.fields = kind, fields

    def __or__(self, other: Pattern | OneOf) -> OneOf:
        return OneOf(self, other)

    def __repr__(self) -> str:
        return f"{self.kind}({', '.join(f'{k}={v!r}' for k, v in self.fields.items())})"


class OneOf:
    """Any of the patterns (``a | b``)."""

    __slots__ = ("options",)

    options: tuple[Pattern, ...]

    def __init__(self, *options: Pattern | OneOf) -> None:
        flat: list[Pattern] = []
        for option in options:
            flat.extend(option.options if isinstance(option, OneOf) else (option,))
        self.options = tuple(flat)

    def __or__(self, other: Pattern | OneOf) -> OneOf:
        return OneOf(self, other)


class _ZeroOrMore:
    """In a sequence pattern: any number of elements."""


class _DoNotCare:
    """Any value at all (None included)."""


def ZeroOrMore() -> _ZeroOrMore:  # noqa: N802 (spelled as libcst's)
    return _ZERO_OR_MORE


def DoNotCare() -> _DoNotCare:  # noqa: N802 (spelled as libcst's)
    return _DO_NOT_CARE


_ZERO_OR_MORE, _DO_NOT_CARE = _ZeroOrMore(), _DoNotCare()


def __getattr__(kind: str) -> Any:
    """``m.Call``, ``m.Name``...: the pattern of that node type. A positional argument stands
    for the type's first field (``m.Name("self")``: its ``value``)."""
    if not kind[:1].isupper():
        raise AttributeError(kind)
    node_type = getattr(cst, kind)  # an unknown name fails here, as in libcst

    def pattern(*args: Any, **fields: Any) -> Pattern:
        if args:
            import dataclasses

            names = [f.name for f in dataclasses.fields(node_type)]
            fields = {**dict(zip(names, args)), **fields}
        return Pattern(kind, fields)
    return pattern


def matches(node: Any, pattern: Pattern | OneOf) -> bool:
    if isinstance(pattern, OneOf):
        return any(matches(node, option) for option in pattern.options)
    if type(node).__name__ != pattern.kind:
        return False
    return all(_value_matches(getattr(node, name), want) for name, want in pattern.fields.items())


def _value_matches(value: Any, want: Any) -> bool:
    if want is _DO_NOT_CARE:
        return True
    if isinstance(want, (Pattern, OneOf)):
        return isinstance(value, cst.CSTNode) and matches(value, want)
    if want is None:
        return value is None
    if isinstance(want, bool):
        return value is want
    if isinstance(want, str):
        return value == want
    if isinstance(want, (list, tuple)):
        return isinstance(value, Sequence) and not isinstance(value, str) and _sequence_matches(list(value), list(want))
    raise TypeError(f"no such pattern: {want!r}")


def _sequence_matches(values: list, wants: list) -> bool:
    if not wants:
        return not values
    head, rest = wants[0], wants[1:]
    if head is _ZERO_OR_MORE:
        return any(_sequence_matches(values[i:], rest) for i in range(len(values) + 1))
    return bool(values) and _value_matches(values[0], head) and _sequence_matches(values[1:], rest)


def findall(root: Any, pattern: Pattern | OneOf) -> list[Any]:
    """``root`` and the nodes below it that match, in the order a libcst visit meets them.
    A pattern of layout (``m.Comma()``) is refused: the walk passes layout by."""
    kinds = {o.kind for o in pattern.options} if isinstance(pattern, OneOf) else {pattern.kind}
    if any(map(_layout_kind, kinds)):
        raise ValueError(f"findall does not look at layout: {pattern!r}")
    return [node for node in walk(root) if type(node).__name__ in kinds and matches(node, pattern)]  # a new list


@functools.cache
def _layout_kind(kind: str) -> bool:
    return issubclass(getattr(cst, kind), layout_types())


def walk(root: Any) -> list[Any]:
    """``root`` and every node below it, in the order a libcst visit enters them, layout aside
    (see :func:`~.base.is_layout`: no pattern here is of layout) (not to be
    changed: the last few walks are kept, as the passes search one function's body for several
    patterns and a tree never changes; each with its root, so that the id of a root gone is not
    taken for another's; :func:`forget` lets them go)."""
    kept = _WALKS.get(id(root))
    if kept is not None and kept[0] is root:
        return kept[1]
    out = []
    stack = [root]
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(reversed(visit_order_children(node)))
    if len(_WALKS) >= KEEP_WALKS:
        del _WALKS[next(iter(_WALKS))]
    _WALKS[id(root)] = (root, out)
    return out


KEEP_WALKS = 32
_WALKS: dict[int, tuple[Any, list[Any]]] = {}


def forget() -> None:
    """Let the trees of the walks kept go (a file's analysis is over)."""
    _WALKS.clear()
