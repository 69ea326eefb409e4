"""The files this process parsed last, by path and text.

A file is parsed by libcst for its own check and, often, again as another file's caller (does
a caller hand this file an instance its session expired?). Either parse serves the other when
the text is the same: a libcst parse is the largest cost of a check, and in a project's run
many files with session code are both.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .kept import Kept
from .lazy import lazy

if TYPE_CHECKING:
    import libcst as cst
else:
    cst = lazy("libcst")

# The engine and the callers' walks of one worker use a file within a few dozen files of each
# other (both go through the project in path order). A tree and its parents take about 50 bytes
# of memory per character of source (9 MB for a 190 kB module), so what is kept is bounded by
# the size of the files too: a project of large modules would otherwise keep gigabytes.
SIZE = 64
BUDGET = 8 << 20  # characters of source kept parsed, per store


def by_size(size: Callable[[Any], int]) -> Kept:
    """A store of ``SIZE`` parsed files and at most ``BUDGET`` characters of source, weighing
    each by the size ``size(key)`` gives."""
    return Kept(SIZE, BUDGET, size)


_KEPT: Kept[tuple[str, str], cst.Module] = by_size(lambda key: len(key[1]))


def parse(path: str, text: str) -> cst.Module:
    """:func:`parse_text`, or the tree kept for ``path`` parsed from the same text (libcst's
    trees are immutable: one serves every reader)."""
    return _KEPT.get((os.path.abspath(path), text), lambda: parse_text(text))


def parse_text(text: str) -> cst.Module:
    """``cst.parse_module(text)`` without libcst's check of each node as it is built.

    libcst checks every node its constructor is given (``CSTNode.__post_init__`` calls
    ``_validate``): that a name is not empty, that parentheses balance, that whitespace is
    whitespace. That is for trees built by hand; a parser builds valid trees, and the checks
    took an eighth of a parse (libcst's own source notes they could be skipped when parsing).
    A node built outside a parse, as a fix builds its code, is checked as before; so is a
    fix's result, which :func:`engine.parses_like` parses the usual way."""
    with _unchecked():
        return cst.parse_module(text)


def rebuildable(module: cst.Module) -> bool:
    """Does every node of ``module`` pass libcst's checks? A fix rebuilds the nodes around
    it, and each rebuilt node is checked: libcst's parser accepts a few spellings its own
    checks reject (`b if b else(lambda: 1)`, no space before the parenthesis), and a fix
    there would fail half-way. Asked only of a file with a fix to make; the walk reads every
    node's fields, layout included (``node.children`` runs a visit of each node, several
    times slower)."""
    from .passes.base import field_values  # (libcst is loaded: the module was parsed)

    stack: list[cst.CSTNode] = [module]
    try:
        while stack:
            node = stack.pop()
            node._validate()
            for value in field_values(type(node))(node)[2:]:
                kind = type(value)
                if kind is tuple or kind is list:
                    stack.extend(item for item in value if _is_node(type(item)))
                elif _is_node(kind):
                    stack.append(value)
    except Exception:  # CSTValidationError, or what a check raises in its stead
        return False
    return True


_IS_NODE: dict[type, bool] = {}


def _is_node(kind: type) -> bool:
    known = _IS_NODE.get(kind)
    if known is None:
        known = _IS_NODE[kind] = issubclass(kind, cst.CSTNode)
    return known


_PARSING = threading.local()  # per thread: a fix built in another thread keeps its checks


def _post_init(node: cst.CSTNode) -> None:
    if not getattr(_PARSING, "depth", 0):
        node._validate()


@contextmanager
def _unchecked() -> Iterator[None]:
    base = cst.CSTNode
    if base.__dict__.get("__post_init__") is not _post_init:
        if "__post_init__" not in base.__dict__ or not hasattr(base, "_validate"):
            yield  # a libcst whose nodes are made differently: parse as it does
            return
        base.__post_init__ = _post_init  # type: ignore[method-assign,assignment]  # checks as libcst's own does, unless a parse is under way
    _PARSING.depth = getattr(_PARSING, "depth", 0) + 1
    try:
        yield
    finally:
        _PARSING.depth -= 1
