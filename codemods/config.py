"""Configuration, found as ruff finds its own.

Each file gets the settings of the nearest ``.sqla-fix.toml``, ``sqla-fix.toml`` or
``pyproject.toml`` with a ``[tool.sqla-fix]`` table, looking upwards from its directory (in
that order within one directory); ``--config PATH`` names one file for every file instead.
Globs (``exclude``, ``per-file-ignores``) are gitignore-style and relative to the directory
of the file that states them (the current directory for the command line and ``--config``).
The project root, which names modules for the index, is the nearest directory holding a
``pyproject.toml`` or a sqla-fix configuration file, else the git work tree, else the
current directory. The command line wins over the files.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

if TYPE_CHECKING:
    import pathspec

    from .index import Factory

CONFIG_FILES = (".sqla-fix.toml", "sqla-fix.toml", "pyproject.toml")
CODE_KEYS = {"select", "extend-select", "ignore"}
LIST_KEYS = {"exclude", "extend-exclude", "session-scopes", "src"}
BOOL_KEYS = {"assume-expire-on-commit", "unsafe-fixes"}
KEYS = CODE_KEYS | LIST_KEYS | BOOL_KEYS | {"session-factories", "per-file-ignores", "file-timeout"}
DEFAULT_FILE_TIMEOUT = 60.0  # seconds one file may take (index and analysis each)


class ConfigError(Exception):
    """A configuration file cannot be used: unreadable, bad TOML, unknown key, wrong type."""


@lru_cache(maxsize=256)
def _spec(patterns: tuple[str, ...]) -> pathspec.PathSpec:
    import pathspec  # on first use: the commands that match no glob never load it

    return pathspec.GitIgnoreSpec.from_lines(patterns)


@dataclass(frozen=True)
class Globs:
    """Gitignore-style patterns relative to the directory ``base``."""

    base: str
    patterns: tuple[str, ...]

    def match(self, path: str, is_dir: bool = False) -> bool:
        if not self.patterns:
            return False
        rel = below(os.path.abspath(path), self.base)
        if rel is None:
            return False
        rel = rel.replace(os.sep, "/")
        return _spec(self.patterns).match_file(rel + "/" if is_dir else rel)


def below(absolute: str, base: str) -> str | None:
    """``absolute`` relative to the directory ``base`` (both absolute and normalised, as
    os.path.abspath gives them), or None when it is not under ``base``. What os.path.relpath
    gives there, without its work (called for every file of a project)."""
    if absolute == base:
        return "."
    prefix = base.rstrip(os.sep) + os.sep
    return absolute[len(prefix):] if absolute.startswith(prefix) else None


@dataclass(frozen=True)
class FileIgnore:
    """One ``per-file-ignores`` entry: codes off in the files ``glob`` matches (or, with a
    leading ``!``, in the files it does not match)."""

    glob: Globs
    codes: tuple[str, ...]
    negated: bool = False

    def applies(self, path: str) -> bool:
        return self.glob.match(path) != self.negated


@dataclass(frozen=True)
class Config:
    root: str = "."
    select: tuple[str, ...] = ()  # empty: every pass
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    exclude: tuple[Globs, ...] = ()
    per_file_ignores: tuple[FileIgnore, ...] = ()
    session_factories: dict[str, Factory] = field(default_factory=dict)
    session_scopes: tuple[str, ...] = ()
    assume_expire_on_commit: bool = True
    unsafe_fixes: bool = False
    source: str | None = None  # the file these settings come from
    src: tuple[str, ...] = ()  # import roots, relative to root (ruff's `src`)
    file_timeout: float = DEFAULT_FILE_TIMEOUT
    # The root was found from a project marker (pyproject.toml, setup.py, .git, ...). When not,
    # the index reads only the paths given and their packages (see project_scope).
    marked: bool = True

    def enabled(self, code: str) -> bool:
        """ruff-style: a code is on when a selector is a prefix of it and no longer ignore
        selector is a prefix of it."""
        selectors = (self.select or ("",)) + self.extend_select
        best_select = max((len(s) for s in selectors if code.startswith(s)), default=-1)
        if best_select < 0:
            return False
        best_ignore = max((len(s) for s in self.ignore if code.startswith(s)), default=-1)
        return best_ignore < best_select

    def ignored_in(self, path: str, code: str) -> bool:
        """``per-file-ignores`` turns ``code`` off in ``path``."""
        return any(entry.applies(path) and any(code.startswith(c) for c in entry.codes)
                   for entry in self.per_file_ignores)

    def excludes(self, path: str, is_dir: bool = False) -> bool:
        return any(globs.match(path, is_dir) for globs in self.exclude)

    def with_overrides(self, **kw) -> Config:
        return replace(self, **{k: v for k, v in kw.items() if v is not None})


# --------------------------------------------------------------------------- values


def known_codes(values: Iterable[str], where: str) -> tuple[str, ...]:
    """Rule selectors, upper-cased: a code, a prefix of codes, or ``ALL`` (kept as "")."""
    out = []
    for value in values:
        code = value.strip().upper()
        if not code:
            continue
        from .passes import BY_CODE  # only when there is a code to check: loading the passes takes a while

        if code != "ALL" and not any(known.startswith(code) for known in BY_CODE):
            raise ConfigError(f"{where}: unknown rule code {code!r} (see `sqla-fix rules`)")
        out.append("" if code == "ALL" else code)
    return tuple(out)


def _strings(value, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of strings")
    return value


def _factories(value, where: str) -> dict[str, Factory]:
    """``session-factories`` is a list of qualified names, or a table of name -> options
    (``expire-on-commit``, ``async``)."""
    if value == [] or value == {}:  # none (the default): the index is not even imported
        return {}
    from .index import Factory  # the index is loaded by the commands that read a project

    out: dict[str, Factory] = {}
    if isinstance(value, list):
        value = {name: {} for name in _strings(value, where)}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a list or a table")
    for name, opts in value.items():
        if not isinstance(opts, dict):
            raise ConfigError(f"{where}.{name} must be a table")
        unknown = set(opts) - {"expire-on-commit", "async"}
        if unknown:
            raise ConfigError(f"{where}.{name}: unknown option {sorted(unknown)[0]!r}")
        for key, option in opts.items():
            if not isinstance(option, bool):
                raise ConfigError(f"{where}.{name}.{key} must be true or false")
        out[name] = Factory(
            name=name, builder="config", is_async=opts.get("async"),
            expire_on_commit=opts.get("expire-on-commit"), line=0,
        )
    return out


def _src(entries, base: str, root: str) -> tuple[str, ...]:
    """``src``: import roots, written relative to the settings file; a glob (``libs/*``) names
    each directory it matches. Kept relative to the project root."""
    out: list[str] = []
    for entry in entries:
        full = os.path.join(base, entry)
        matches = sorted(m for m in glob.glob(full) if os.path.isdir(m)) if any(c in entry for c in "*?[") else [full]
        out.extend(os.path.relpath(m, root) for m in matches)
    return tuple(out)


def _per_file_ignores(value, base: str, where: str) -> tuple[FileIgnore, ...]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table of glob = [codes]")
    out = []
    for pattern, codes in value.items():
        item = f"{where}.{pattern!r}"
        negated = pattern.startswith("!")
        glob = Globs(base, (pattern[1:] if negated else pattern,))
        out.append(FileIgnore(glob, known_codes(_strings(codes, item), item), negated))
    return tuple(out)


def from_table(settings: Settings, root: str) -> Config:
    """A Config from a settings table, for the project at ``root``."""
    section, where, base = settings.table, settings.where, settings.base
    unknown = set(section) - KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    for key in BOOL_KEYS & set(section):
        if not isinstance(section[key], bool):
            raise ConfigError(f"{where}: {key} must be true or false")
    lists = {key: _strings(section[key], f"{where}: {key}") for key in LIST_KEYS | CODE_KEYS if key in section}
    codes = {key: known_codes(lists.get(key, ()), f"{where}: {key}") for key in CODE_KEYS}
    patterns = tuple(lists.get("exclude", ())) + tuple(lists.get("extend-exclude", ()))
    return Config(
        root=root,
        select=codes["select"],
        extend_select=codes["extend-select"],
        ignore=codes["ignore"],
        exclude=(Globs(base, patterns),) if patterns else (),
        per_file_ignores=_per_file_ignores(section.get("per-file-ignores", {}), base, f"{where}: per-file-ignores"),
        session_factories=_factories(section.get("session-factories", []), f"{where}: session-factories"),
        session_scopes=tuple(lists.get("session-scopes", ())),
        assume_expire_on_commit=section.get("assume-expire-on-commit", True),
        unsafe_fixes=section.get("unsafe-fixes", False),
        source=settings.path,
        src=_src(lists.get("src", ()), base, root),
        file_timeout=timeout(section.get("file-timeout", DEFAULT_FILE_TIMEOUT), f"{where}: file-timeout"),
    )


def timeout(value, where: str) -> float:
    """A time limit in seconds: a positive number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{where} must be a positive number of seconds")
    return float(value)


# --------------------------------------------------------------------------- files


_TOML: dict[tuple[str, int, int, bytes | None], dict | None] = {}


def _read_toml(path: str, mention: bytes | None = None) -> dict | None:
    """A TOML file's data, read again only when its size or modification time changed. With
    ``mention``: None, unparsed, when the file's bytes do not contain it (a pyproject.toml that
    never names sqla-fix holds no settings of ours, whatever else it holds: a template's
    `{{ placeholders }}` are not TOML, and that is not our concern)."""
    try:
        st = os.stat(path)
        key = (os.path.abspath(path), st.st_mtime_ns, st.st_size, mention)
        if key not in _TOML:
            with open(path, "rb") as fh:
                raw = fh.read()
            _TOML[key] = None if mention is not None and mention not in raw else tomllib.loads(raw.decode("utf-8"))
        return _TOML[key]
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


class Settings(NamedTuple):
    table: dict  # the keys as written
    where: str  # how messages name the table
    path: str  # the file
    base: str  # the directory its globs are relative to


def settings_table(path: str, base: str | None = None) -> Settings | None:
    """The sqla-fix settings a file holds, or None (a pyproject.toml without
    ``[tool.sqla-fix]``). Globs are relative to ``base``, by default the file's directory."""
    base = base if base is not None else os.path.dirname(os.path.abspath(path))
    if os.path.basename(path) != "pyproject.toml":
        return Settings(_read_toml(path) or {}, path, path, base)
    data = _read_toml(path, mention=b"sqla-fix")
    section = None if data is None else data.get("tool", {}).get("sqla-fix")
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [tool.sqla-fix] must be a table")
    return Settings(section, f"{path} [tool.sqla-fix]", path, base)


def _settings_in(directory: str) -> str | None:
    for name in CONFIG_FILES:
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and settings_table(candidate) is not None:
            return candidate
    return None


def _marks_root(directory: str) -> bool:
    return any(os.path.isfile(os.path.join(directory, name)) for name in CONFIG_FILES)


def _directory(start: str) -> str:
    here = os.path.abspath(start)
    return here if os.path.isdir(here) else os.path.dirname(here)


# What an upward search found from each directory it passed (see _upwards).
Memo = dict[str, "str | None"]


def _upwards(start: str, test: Callable[[str], object], memo: Memo | None = None) -> str | None:
    """The nearest directory from ``start`` upwards that passes ``test``. With ``memo`` (one
    per search and run), a directory a former search passed is not tested again: a walk over
    a project asks once per directory, not once per directory and level."""
    here = _directory(start)
    passed = []
    while True:
        if memo is not None and here in memo:
            found = memo[here]
            break
        passed.append(here)
        if test(here):
            found = here
            break
        parent = os.path.dirname(here)
        if parent == here:
            found = None
            break
        here = parent
    if memo is not None:
        memo.update(dict.fromkeys(passed, found))
    return found


def find_settings(start: str, memo: Memo | None = None) -> str | None:
    """The configuration file that applies to ``start`` (a file or a directory), if any."""
    directory = _upwards(start, _settings_in, memo)
    return _settings_in(directory) if directory is not None else None


def project_root(start: str, memos: tuple[Memo, Memo] | None = None) -> tuple[str, bool]:
    """The project root for ``start``, and whether a project marker gave it. ``memos``: one
    for the configuration files, one for the other markers (see _upwards)."""
    found = _upwards(start, _marks_root, memos[0] if memos else None)
    return (found, True) if found is not None else default_root(start, memos[1] if memos else None)


class Resolver:
    """The Config of each file or directory, cached per directory.

    ``config_file`` (``--config``) replaces discovery of settings; ``adjust`` applies the
    command line's overrides to every Config made."""

    def __init__(self, config_file: str | None = None, adjust: Callable[[Config], Config] | None = None) -> None:
        self._adjust = adjust or (lambda c: c)
        self._fixed: Settings | None = None
        if config_file is not None:
            if not os.path.isfile(config_file):
                raise ConfigError(f"{config_file}: no such configuration file")
            self._fixed = (settings_table(config_file, os.getcwd())
                           or Settings({}, config_file, config_file, os.getcwd()))
        self._by_dir: dict[str, Config] = {}
        self._made: dict[tuple[str, str | None], Config] = {}
        self._searched: tuple[Memo, Memo, Memo] = ({}, {}, {})  # settings, roots, other markers
        self._roots: dict[str, str] = {}  # directory -> its project root (see root())

    def for_path(self, path: str, is_dir: bool | None = None) -> Config:
        """``is_dir``: whether ``path`` is a directory, when the caller knows (a walk over a
        project does; it saves a stat per file)."""
        if is_dir is None:
            directory = _directory(path)
        else:
            absolute = os.path.abspath(path)
            directory = absolute if is_dir else os.path.dirname(absolute)
        config = self._by_dir.get(directory)
        if config is None:
            config = self._by_dir[directory] = self._make(directory)
        return config

    def root(self, path: str, is_dir: bool) -> str:
        """``for_path(path, is_dir).root``, without reading any configuration file."""
        absolute = os.path.abspath(path)
        directory = absolute if is_dir else os.path.dirname(absolute)
        root = self._roots.get(directory)
        if root is None:
            config = self._by_dir.get(directory)
            root = self._roots[directory] = (config.root if config is not None
                                             else project_root(directory, self._searched[1:])[0])
        return root

    def _make(self, directory: str) -> Config:
        root, marked = project_root(directory, self._searched[1:])
        settings = self._fixed
        if settings is None:
            source = find_settings(directory, self._searched[0])
            settings = settings_table(source) if source is not None else None
        key = (root, settings.path if settings is not None else None)
        if key not in self._made:
            config = Config(root=root)
            if settings is not None:
                config = from_table(settings, root)
            self._made[key] = self._adjust(replace(config, marked=marked))
        return self._made[key]


def load(start: str = ".") -> Config:
    """The Config for ``start`` (a file or a directory), with no command-line overrides."""
    return Resolver().for_path(start)


# Files and directories that mark a project's root besides the configuration files.
MARKERS = ("setup.py", "setup.cfg", ".git", ".hg", ".svn")


def default_root(start: str, memo: Memo | None = None) -> tuple[str, bool]:
    """The project root when there is no configuration file, and whether a marker gave it: the
    nearest directory holding ``start`` with a project marker (a git work tree, setup.py,
    ...); else the directory above ``start``'s outermost package (or ``start``'s own
    directory). Never the current directory merely because ``start`` is under it: from a home
    directory or from ``/`` that would make the whole tree the project."""
    here = _directory(start)
    marked = _upwards(here, lambda d: any(os.path.exists(os.path.join(d, m)) for m in MARKERS), memo)
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
