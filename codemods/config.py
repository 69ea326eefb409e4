"""``[tool.sqla-fix]`` in the nearest ``pyproject.toml``; the command line wins."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from .index import Factory

KEYS = {
    "select", "ignore", "exclude", "extend-exclude", "session-factories", "session-scopes",
    "assume-expire-on-commit", "unsafe-fixes", "file-timeout",
}
DEFAULT_FILE_TIMEOUT = 60.0  # seconds one file may take (index and analysis each)


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class Config:
    root: str = "."
    select: tuple[str, ...] = ()  # empty: every pass
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    session_factories: dict[str, Factory] = field(default_factory=dict)
    session_scopes: tuple[str, ...] = ()
    assume_expire_on_commit: bool = True
    unsafe_fixes: bool = False
    file_timeout: float = DEFAULT_FILE_TIMEOUT
    # The root was found from a project marker (pyproject.toml, setup.py, .git, ...). When not,
    # the index reads only the paths given and their packages (see project_scope).
    marked: bool = True

    def enabled(self, code: str) -> bool:
        """ruff-style: a code is on when a selector is a prefix of it and no longer ignore
        selector is a prefix of it."""
        best_select = max((len(s) for s in self.select if code.startswith(s)), default=-1)
        if not self.select:
            best_select = 0
        if best_select < 0:
            return False
        best_ignore = max((len(s) for s in self.ignore if code.startswith(s)), default=-1)
        return best_ignore < best_select

    def with_overrides(self, **kw) -> Config:
        return replace(self, **{k: v for k, v in kw.items() if v is not None})


def find_pyproject(start: str) -> str | None:
    here = os.path.abspath(start)
    if os.path.isfile(here):
        here = os.path.dirname(here)
    while True:
        candidate = os.path.join(here, "pyproject.toml")
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def _codes(value, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"[tool.sqla-fix] {key} must be a list of strings")
    return tuple(v.strip().upper() for v in value if v.strip())


def _factories(value) -> dict[str, Factory]:
    """``session-factories`` is a list of qualified names, or a table of name -> options
    (``expire-on-commit``, ``async``)."""
    out: dict[str, Factory] = {}
    if isinstance(value, list):
        value = {name: {} for name in value}
    if not isinstance(value, dict):
        raise ConfigError("[tool.sqla-fix] session-factories must be a list or a table")
    for name, opts in value.items():
        if not isinstance(opts, dict):
            raise ConfigError(f"[tool.sqla-fix] session-factories.{name} must be a table")
        unknown = set(opts) - {"expire-on-commit", "async"}
        if unknown:
            raise ConfigError(f"[tool.sqla-fix] session-factories.{name}: unknown option {sorted(unknown)[0]!r}")
        out[name] = Factory(
            name=name, builder="config", is_async=opts.get("async"),
            expire_on_commit=opts.get("expire-on-commit"), line=0,
        )
    return out


def load(start: str = ".") -> Config:
    path = find_pyproject(start)
    if path is None:
        root, marked = default_root(start)
        return Config(root=root, marked=marked)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    section = data.get("tool", {}).get("sqla-fix", {})
    unknown = set(section) - KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown key in [tool.sqla-fix]: {sorted(unknown)[0]}")
    exclude = tuple(section.get("exclude", ())) + tuple(section.get("extend-exclude", ()))
    return Config(
        root=os.path.dirname(path),
        select=_codes(section.get("select", []), "select"),
        ignore=_codes(section.get("ignore", []), "ignore"),
        exclude=exclude,
        session_factories=_factories(section.get("session-factories", [])),
        session_scopes=tuple(section.get("session-scopes", ())),
        assume_expire_on_commit=bool(section.get("assume-expire-on-commit", True)),
        unsafe_fixes=bool(section.get("unsafe-fixes", False)),
        file_timeout=timeout(section.get("file-timeout", DEFAULT_FILE_TIMEOUT), f"{path}: [tool.sqla-fix] file-timeout"),
    )


def timeout(value, where: str) -> float:
    """A time limit in seconds: a positive number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{where} must be a positive number of seconds")
    return float(value)


# Files and directories that mark a project's root (pyproject.toml is looked for first, as the
# configuration lives there).
MARKERS = ("setup.py", "setup.cfg", ".git", ".hg", ".svn")


def default_root(start: str) -> tuple[str, bool]:
    """The project root when there is no pyproject.toml, and whether a marker gave it: the
    nearest directory holding ``start`` with a project marker (a git work tree, setup.py,
    ...); else the directory above ``start``'s outermost package (or ``start``'s own
    directory). Never the current directory merely because ``start`` is under it: from a home
    directory or from ``/`` that would make the whole tree the project."""
    here = os.path.abspath(start if os.path.isdir(start) else os.path.dirname(start) or ".")
    marked = _marked_root(here)
    if marked is not None:
        return marked, True
    top = top_package(here)
    return (os.path.dirname(top) if top else here), False


def top_package(directory: str) -> str | None:
    """The outermost package holding ``directory`` (walking up while ``__init__.py`` exists),
    or None when ``directory`` is not a package."""
    here = os.path.abspath(directory)
    top = None
    while os.path.isfile(os.path.join(here, "__init__.py")):
        top = here
        parent = os.path.dirname(here)
        if parent == here:
            break
        here = parent
    return top


def project_scope(paths: Iterable[str], config: Config) -> list[str]:
    """What the index reads: the whole project when its root was found from a marker; else
    only the paths given, each file widened to its outermost package."""
    if config.marked:
        return [config.root]
    out: dict[str, None] = {}
    for path in paths:
        directory = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
        top = top_package(directory)
        out[top or path] = None
    return list(out)


def _marked_root(path: str) -> str | None:
    here = os.path.abspath(path)
    while True:
        if any(os.path.exists(os.path.join(here, m)) for m in MARKERS):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent
