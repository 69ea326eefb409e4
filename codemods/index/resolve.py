"""Module names: which dotted names a file can be imported as.

Python finds a module through the import roots on ``sys.path``. A project does not say which
those are, so every name a file can plausibly be imported under is kept, each with the root
it comes from, strongest first:

- a root configured with ``src = [...]`` in ``[tool.sqla-fix]`` (as ruff has it);
- the package root: the directory above the outermost package (``__init__.py``) holding the
  file. ``libs/billing-svc/billing/db.py`` is ``billing.db`` when ``billing/`` is a package,
  whatever the directories above it are called;
- a distribution root: a directory with ``pyproject.toml``, ``setup.py`` or ``setup.cfg``
  between the file and the project root (monorepos), and its ``src/`` directory;
- the project root, as is (``src.db`` for ``src/db.py``, a namespace package imported from the
  repository root) and, for a first directory ``src``/``lib`` that is not a package, without it;
- the file's own directory, for scripts that import their neighbours (``from db import X``
  next to ``db.py``). This one is *weak*: used only when no stronger name matches.

The first name is the module's own (relative imports are resolved from it); the others are
aliases. :class:`ModuleName` records the root each came from, for ``sqla-fix index``.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from functools import lru_cache


class RootKind(str, enum.Enum):
    CONFIGURED = "src setting"
    PACKAGE = "package root"
    DISTRIBUTION = "distribution root"
    PROJECT = "project root"
    SCRIPT = "script directory"

    @property
    def weak(self) -> bool:
        return self is RootKind.SCRIPT


@dataclass(frozen=True)
class ModuleName:
    name: str
    root: str  # the import root directory, relative to the project root ("." for itself)
    kind: RootKind


DIST_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg")


@lru_cache(maxsize=8192)
def _is_package(directory: str) -> bool:
    return os.path.isfile(os.path.join(directory, "__init__.py"))


@lru_cache(maxsize=8192)
def _is_distribution(directory: str) -> bool:
    return any(os.path.isfile(os.path.join(directory, m)) for m in DIST_MARKERS)


def _dotted(parts: list[str]) -> str | None:
    """The dotted name of these path parts, or None when one cannot be an identifier."""
    if not parts:
        return None
    parts = list(parts)
    if parts[-1].endswith(".py"):
        parts[-1] = parts[-1][:-3]
    elif parts[-1].endswith(".pyi"):
        parts[-1] = parts[-1][:-4]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if not parts or not all(p.isidentifier() for p in parts):
        return None
    return ".".join(parts)


def module_names(path: str, root: str, src: tuple[str, ...] = ()) -> tuple[ModuleName, ...]:
    """Every name ``path`` can be imported as, strongest first (see the module docstring)."""
    full = os.path.abspath(path)
    top = os.path.abspath(root)
    parts = os.path.relpath(full, top).replace(os.sep, "/").split("/")
    out: list[ModuleName] = []
    seen: set[str] = set()

    def add(root_dir: str, kind: RootKind) -> None:
        rel = os.path.relpath(full, root_dir).replace(os.sep, "/").split("/")
        if rel[0] == "..":
            return
        name = _dotted(rel)
        if name is None or name in seen:
            return
        seen.add(name)
        shown = os.path.relpath(root_dir, top).replace(os.sep, "/")
        out.append(ModuleName(name, shown, kind))

    for entry in src:
        add(os.path.join(top, entry), RootKind.CONFIGURED)
    directory = os.path.dirname(full)
    package_root = directory
    while _is_package(package_root) and os.path.dirname(package_root) != package_root:
        package_root = os.path.dirname(package_root)
    if package_root != directory:
        add(package_root, RootKind.PACKAGE)
    if parts[0] != "..":
        here = package_root
        while len(here) > len(top) and here.startswith(top):
            if _is_distribution(here):
                add(here, RootKind.DISTRIBUTION)
            if os.path.basename(here) == "src" and _is_distribution(os.path.dirname(here)):
                add(here, RootKind.DISTRIBUTION)
            here = os.path.dirname(here)
        if len(parts) > 1 and parts[0] in ("src", "lib") and not _is_package(os.path.join(top, parts[0])):
            add(os.path.join(top, parts[0]), RootKind.PROJECT)
        add(top, RootKind.PROJECT)
    add(directory, RootKind.SCRIPT)
    if not out:  # outside the project, or no identifier path: the file's own stem
        stem = os.path.splitext(os.path.basename(full))[0]
        out.append(ModuleName(stem, ".", RootKind.SCRIPT))
    return tuple(out)


def module_name_for(path: str, root: str, src: tuple[str, ...] = ()) -> str:
    """The module's own name: the strongest of :func:`module_names`."""
    return module_names(path, root, src)[0].name
