"""The files this process parsed last, by path and text.

A file is parsed by libcst for its own check and, often, again as another file's caller (does
a caller hand this file an instance its session expired?). Either parse serves the other when
the text is the same: a libcst parse is the largest cost of a check, and in a project's run
many files with session code are both.
"""

from __future__ import annotations

import os
from collections.abc import Callable
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
    """``cst.parse_module(text)``, or the tree kept for ``path`` parsed from the same text
    (libcst's trees are immutable: one serves every reader)."""
    return _KEPT.get((os.path.abspath(path), text), lambda: cst.parse_module(text))
