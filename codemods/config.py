"""``[tool.sqla-fix]`` in the nearest ``pyproject.toml``; the command line wins."""

from __future__ import annotations

import glob
import os
import sys
from dataclasses import dataclass, field, replace

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from .index import Factory

KEYS = {
    "select", "ignore", "exclude", "extend-exclude", "session-factories", "session-scopes",
    "assume-expire-on-commit", "unsafe-fixes", "src",
}


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
    src: tuple[str, ...] = ()  # import roots, relative to root (ruff's `src`)

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


def _src(value, root: str) -> tuple[str, ...]:
    """``src``: import roots relative to the project root; a glob (``libs/*``) names each
    directory it matches."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError("[tool.sqla-fix] src must be a list of directories")
    out: list[str] = []
    for entry in value:
        if any(ch in entry for ch in "*?["):
            matches = sorted(glob.glob(os.path.join(root, entry)))
            out.extend(os.path.relpath(m, root) for m in matches if os.path.isdir(m))
        else:
            out.append(os.path.normpath(entry))
    return tuple(out)


def load(start: str = ".") -> Config:
    path = find_pyproject(start)
    if path is None:
        return Config(root=default_root(start))
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
        src=_src(section.get("src", []), os.path.dirname(path)),
    )


def default_root(start: str) -> str:
    """The project root when there is no pyproject.toml: the git work tree holding ``start``;
    else the current directory when ``start`` is under it (so `check app/x.py` and `check .`
    name modules alike); else ``start``'s own directory."""
    here = os.path.abspath(start if os.path.isdir(start) else os.path.dirname(start) or ".")
    git = _git_root(here)
    if git is not None:
        return git
    cwd = os.getcwd()
    if here == cwd or here.startswith(cwd.rstrip(os.sep) + os.sep):
        return cwd
    return here


def _git_root(path: str) -> str | None:
    here = os.path.abspath(path)
    while True:
        if os.path.exists(os.path.join(here, ".git")):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent
