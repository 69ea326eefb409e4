"""The index's state and its lowest layer: which module a dotted name is, and which
function, class or alias a qualified name resolves to (through re-exports and inherited
methods). Every other layer of :class:`~.queries.ProjectIndex` asks these questions."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from .facts import (
    Alias,
    CallSite,
    ClassFacts,
    Function,
    Model,
    ModuleFacts,
    Origin,
)

_T = TypeVar("_T")


class IndexLookup:
    """The modules' facts, the caches derived from them (emptied by :meth:`add`), and name
    resolution."""

    def __init__(self, modules: Iterable[ModuleFacts] = (), config_factories: dict | None = None,
                 config_scopes: Iterable[str] = (), assume_expire_on_commit: bool = True) -> None:
        self.modules: dict[str, ModuleFacts] = {}
        self.by_path: dict[str, ModuleFacts] = {}
        self.duplicates: list[tuple[str, str, str]] = []  # (module, one path, another path)
        self.config_factories = dict(config_factories or {})
        self.config_scopes = tuple(config_scopes)
        self.assume_expire_on_commit = assume_expire_on_commit
        self.failures: list = []  # engine.IndexFailure: files left out because reading them failed
        self.scanned = 0  # files read to build it (not those served by the cache)
        self._models: dict[str, Model] | None = None
        self._mapped_memo: dict[str, str | None] = {}
        self._relationship_names: dict[str, set[str]] | None = None
        self._defined: dict[int, str] | None = None
        self._returning: set[str] = set()  # guards _returns_session against cycles
        self._nesting: set[str] = set()  # guards _nested_scope against cycles
        self._memo: dict[tuple, Any] = {}  # project-wide answers (see remember)
        self.generation = 0  # counts add(): what was derived from an older state is stale
        self._models_by_class: dict[int, Model] = {}
        self._models_by_name: dict[str, list[Model]] = {}
        self._callers: dict[str, list[tuple[ModuleFacts, Function, CallSite]]] | None = None
        self._ends: dict[tuple[str, int | str, str | None, bool, bool], frozenset[str]] = {}
        self._relevance: tuple[bytes, ...] | None = None
        self._flushing: set[str] | None = None
        self._names: set[str] | None = None
        self._closed_holders: set[str] | None = None  # the keys of closed holders
        self._instances: dict[int, list[str]] | None = None  # see module_instances
        self._suffixes: dict[str, list[ModuleFacts]] | None = None
        self._clashes: dict[str, list[ModuleFacts]] = {}  # names several files claim
        self._aliases: tuple[dict[str, list[ModuleFacts]], dict[str, list[ModuleFacts]]] | None = None
        for facts in modules:
            self.add(facts)

    def add(self, facts: ModuleFacts) -> None:
        other = self.modules.get(facts.module)
        if other is not None and os.path.abspath(other.path) != os.path.abspath(facts.path) \
                and facts.module not in self._clashes:
            # Two files claim one name (several projects checked at once): the name is
            # ambiguous, and each goes by a name of its own.
            self.duplicates.append((facts.module, other.path, facts.path))
            self._clashes[facts.module] = [other, facts]
            del self.modules[other.module]
            self._rename(other)
            self._rename(facts)
        elif facts.module in self._clashes and other is None:
            self._clashes[facts.module].append(facts)
            self._rename(facts)
        self.modules[facts.module] = facts
        self.by_path[os.path.abspath(facts.path)] = facts
        self._callers = None
        self._memo.clear()
        self.generation += 1
        self._flushing = None
        self._suffixes = None
        self._aliases = None
        self._relevance = None
        self._names = None
        self._closed_holders = None
        self._instances = None
        self._models = None
        self._mapped_memo = {}
        self._relationship_names = None
        self._defined = None

    def add_transient(self, facts: ModuleFacts) -> None:
        """Make a file's facts findable by path only (a worker looking at a file the index did
        not take), leaving every cache of the project as it is."""
        self.by_path[os.path.abspath(facts.path)] = facts

    def module_for_path(self, path: str) -> ModuleFacts | None:
        return self.by_path.get(os.path.abspath(path))

    def ambiguous_imports(self) -> list[tuple[str, list[str]]]:
        """Imports that match several modules of the tree by suffix (several projects with
        the same package names checked at once): they cannot be resolved."""
        self._module("x.x")  # builds the suffix table
        out: dict[str, list[str]] = {}
        for mod in self.modules.values():
            for target in mod.imports.values():
                parts = target.split(".")
                for cut in range(len(parts), 1, -1):
                    name = ".".join(parts[:cut])
                    if name in self.modules:
                        break
                    candidates = self._clashes.get(name) or (self._suffixes or {}).get(name, [])
                    if len(candidates) > 1:
                        out.setdefault(name, sorted(m.path for m in candidates))
                        break
        return sorted(out.items())

    def _module(self, dotted: str) -> ModuleFacts | None:
        """The module named ``dotted``: its own name; else the one module with that alias (a
        name under another import root, see :mod:`.resolve`), a strong one before a weak one;
        else the one module whose name ends with it (a project checked from above its
        import root: ``src.app.db`` for ``app.db``)."""
        if dotted in self.modules:
            return self.modules[dotted]
        if dotted in self._clashes:
            return None
        strong, weak = self._alias_tables()
        for table in (strong, weak):
            found = table.get(dotted, ())
            if len(found) == 1:
                return found[0]
            if found:
                return None  # ambiguous
        if "." not in dotted:
            return None  # `import logging` is the standard library, not `myapp.logging`
        if self._suffixes is None:
            suffixes: dict[str, list[ModuleFacts]] = {}
            for name, mod in self.modules.items():
                parts = name.split(".")
                for i in range(1, len(parts)):
                    suffixes.setdefault(".".join(parts[i:]), []).append(mod)
            self._suffixes = suffixes
        matches = self._suffixes.get(dotted, ())
        return matches[0] if len(matches) == 1 else None

    def _rename(self, facts: ModuleFacts) -> None:
        """Give ``facts`` the first of its other names nobody else holds."""
        for name in facts.other_names:
            if name not in self.modules and name not in self._clashes:
                facts.module = name
                return
        facts.module = f"{facts.module}@{os.path.abspath(facts.path)}"

    def _alias_tables(self) -> tuple[dict[str, list[ModuleFacts]], dict[str, list[ModuleFacts]]]:
        if self._aliases is None:
            strong: dict[str, list[ModuleFacts]] = {}
            weak: dict[str, list[ModuleFacts]] = {}
            stdlib: frozenset[str] = getattr(sys, "stdlib_module_names", frozenset())
            for mod in self.modules.values():
                for name in mod.other_names:
                    if name not in self.modules and name not in self._clashes:
                        strong.setdefault(name, []).append(mod)
                for name in mod.weak_names:
                    if name not in self.modules and name not in self._clashes and name.split(".")[0] not in stdlib:
                        weak.setdefault(name, []).append(mod)
            self._aliases = (strong, weak)
        return self._aliases

    def _split(self, qualified: str) -> Iterator[tuple[ModuleFacts, str]]:
        parts = qualified.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            mod = self._module(".".join(parts[:cut]))
            if mod is not None:
                yield mod, ".".join(parts[cut:])

    def _resolve(self, qualified: str | None, kind: str):
        """What ``qualified`` names in the table ``kind`` of its module, following re-exports:
        asked hundreds of thousands of times in a project's run, of a few thousand names."""
        key = ("resolve", qualified, kind)
        if key not in self._memo:
            self._memo[key] = self._resolve_from(qualified, kind, 0)
        return self._memo[key]

    def _resolve_from(self, qualified: str | None, kind: str, depth: int):
        if not qualified or depth > 8:
            return None
        for mod, local in self._split(qualified):
            table = getattr(mod, kind)
            if local in table:
                return table[local]
            head = local.split(".")[0]
            if head in mod.imports:  # re-exported
                rest = local[len(head):]
                return self._resolve_from(mod.imports[head] + rest, kind, depth + 1)
        return None

    def remember(self, key: tuple, compute: Callable[[], _T]) -> _T:
        """A project-wide answer (one that reads every module), computed once for the index's
        current state: forgotten when a module's facts are added."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def function(self, qualified: str | None) -> Function | None:
        return self._resolve(qualified, "functions")

    def alias(self, qualified: str | None) -> Alias | None:
        return self._resolve(qualified, "aliases")

    def _class(self, qualified: str | None) -> ClassFacts | None:
        return self._resolve(qualified, "classes")

    def callable_named(self, qualified: str, depth: int = 0) -> tuple[Function, str | None] | None:
        """The function ``qualified`` names, with the class it is called on (None for a plain
        function); a method a class inherits is found in its bases."""
        fn = self.function(qualified)
        owner, _, name = qualified.rpartition(".")
        if fn is not None:
            return fn, owner if "." in fn.qualname else None
        cls = self._class(owner) if owner else None
        if cls is None or depth > 8:
            return None
        for base in cls.bases:
            inherited = self.callable_named(f"{base}.{name}", depth + 1)
            if inherited is not None:
                return inherited[0], owner
        return None

    @staticmethod
    def _self_value(module: ModuleFacts, class_qualname: str, attr: str) -> tuple[str, str] | None:
        """What ``self.<attr>`` of a class of ``module`` holds, as extraction recorded it:
        ("type", annotation) for a parameter, ("call", callee) for a call's result."""
        value = module.self_values.get(f"{class_qualname}.{attr}")
        if value is None:
            return None
        kind, _, what = value.partition(":")
        return kind, what


def is_classmethod(fn: Function) -> bool:
    """Is ``fn`` decorated ``@classmethod``?"""
    return any(d.rsplit(".", 1)[-1] == "classmethod" for d in fn.decorators)


def positional_params(fn: Function, *, bound: bool) -> list[str]:
    """The parameters of ``fn`` that a call's positional arguments fill, in order.

    A method's first parameter (``self``/``cls``) is filled by the object it is called on
    when the call binds it (``bound``: ``obj.method(a)``, ``self.method(a)``, any call of a
    classmethod), and is then skipped. A call that names the function by its qualified name
    (``Repo.save(repo, db, obj)``, ``Base.save(self, db, obj)`` in a subclass: the way a
    function is found from a call's dotted name, since a name that holds an instance resolves
    to no function) binds nothing: its first argument is ``self``. Every caller says which
    (``bound``), as it alone knows how it found ``fn``."""
    names_ = [p.name for p in fn.params]
    if "." in fn.qualname and names_ and names_[0] in ("self", "cls") and (bound or is_classmethod(fn)):
        return names_[1:]
    return names_


def param_at(fn: Function, passed: int | str, *, bound: bool) -> str | None:
    """The parameter of ``fn`` a session passed at ``passed`` binds (``bound`` as for
    :func:`positional_params`), or ``passed`` itself when it names a ``self.<attr>``."""
    if isinstance(passed, str):
        if passed.startswith("self."):
            return passed
        return passed if any(p.name == passed for p in fn.params) else None
    names_ = positional_params(fn, bound=bound)
    return names_[passed] if 0 <= passed < len(names_) else None


def argument_for(fn: Function, site: CallSite, param: str, *, bound: bool) -> tuple[Origin | None, str | None]:
    """What the call ``site`` of ``fn`` hands its parameter ``param``: the argument's origin
    and its dotted name at the call (None when it is no plain name), or (None, None) when the
    call passes nothing for it. ``bound`` as for :func:`positional_params`."""
    if param in site.kwargs:
        return site.kwargs[param], site.kwarg_names.get(param)
    names_ = positional_params(fn, bound=bound)
    if param not in names_:
        return None, None
    at = names_.index(param)
    if at < len(site.args):
        return site.args[at], site.arg_names[at] if at < len(site.arg_names) else None
    return None, None
