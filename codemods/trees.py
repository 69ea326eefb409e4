"""The files this process parsed last, by path and text.

A file is parsed by libcst for its own check and, often, again as another file's caller (does
a caller hand this file an instance its session expired?). Either parse serves the other when
the text is the same: a libcst parse is the largest cost of a check, and in a project's run
many files with session code are both.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .kept import Kept
from .lazy import lazy

if TYPE_CHECKING:
    import libcst as cst
else:
    cst = lazy("libcst")

# A few MB of nodes each; the engine and the callers' walks of one worker use a file within a
# few dozen files of each other (both go through the project in path order).
_KEPT: Kept[tuple[str, str], cst.Module] = Kept(64)


def parse(path: str, text: str) -> cst.Module:
    """``cst.parse_module(text)``, or the tree kept for ``path`` parsed from the same text
    (libcst's trees are immutable: one serves every reader)."""
    return _KEPT.get((os.path.abspath(path), text), lambda: cst.parse_module(text))
