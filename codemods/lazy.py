"""Modules imported on first use.

libcst takes most of a second to import, and `sqla-fix --version`, `rules` and `explain` never
need it: the passes' metadata (code, name, explanation, examples) sits in the same modules as
their code. Those modules name libcst through a :func:`lazy` module, so importing them costs
nothing until a pass really touches a syntax tree::

    if TYPE_CHECKING:
        import libcst as cst
    else:
        cst = lazy("libcst")
"""

from __future__ import annotations

import importlib
from types import ModuleType


class LazyModule(ModuleType):
    """Stands for the module ``name``: the first attribute read imports it. With ``snapshot``
    its namespace is copied in, so later reads are plain attribute look-ups (for libcst, read
    in hot loops); without, every read goes to the module (so that what tests patch on it is
    seen)."""

    def __init__(self, name: str, snapshot: bool = True) -> None:
        super().__init__(name)
        self.__dict__["_snapshot"] = snapshot

    def __getattr__(self, attr: str):
        module = importlib.import_module(self.__name__)
        if self.__dict__.get("_snapshot"):
            self.__dict__.update(module.__dict__)
        return getattr(module, attr)


def lazy(name: str, snapshot: bool = True) -> ModuleType:
    return LazyModule(name, snapshot)
