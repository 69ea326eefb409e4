"""The project index: every module's facts, and the questions the passes ask of them."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import replace

from .. import names
from ..prefilter import minimal_tokens, relevance_of  # noqa: F401  (minimal_tokens re-exported)
from .facts import (
    WITH_VALUE,
    Alias,
    CallSite,
    ClassFacts,
    Factory,
    Function,
    Holder,
    Model,
    ModuleFacts,
    Param,
    Returned,
    Scope,
    SessionDecorator,
    SessionOrigin,
)
from .holders import KWARGS
from .infer import CLASS_ITSELF, Stage


class ProjectIndex:
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
        self._memo: dict[tuple, bool] = {}  # project-wide answers (see sessions_never_expire)
        self.generation = 0  # counts add(): what was derived from an older state is stale
        self._models_by_class: dict[int, Model] = {}
        self._models_by_name: dict[str, list[Model]] = {}
        self._callers: dict[str, list[tuple[ModuleFacts, Function, CallSite]]] | None = None
        self._ends: dict[tuple[str, int | str, str | None, bool], frozenset[str]] = {}
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

    def names(self) -> set[str]:
        """The project's own session-related names: factories, Annotated aliases, FastAPI
        providers, context managers and decorators that handle sessions. A file that mentions
        one of them is indexed too, and is worth parsing for the passes."""
        if self._names is None:
            self._names = self._session_names()
        return self._names

    def _session_names(self) -> set[str]:
        found: set[str] = set()
        for mod in self.modules.values():
            # Only what resolves to a session factory: `factories` also holds every value a call
            # returned (`T = TypeVar("T")`, `logger = get_logger()`) until it is resolved.
            found.update(n.rsplit(".", 1)[-1] for n in mod.factories
                         if self.factory(f"{mod.module}.{n}" if mod.module else n))
            found.update(mod.aliases)
            for fn in mod.functions.values():
                if "." in fn.qualname:
                    continue
                if fn.session_decorator is not None or fn.yields_kind or any(p.depends for p in fn.params):
                    found.add(fn.qualname)
                elif (fn.is_generator or fn.returns_class) and any(
                        self.opens_session(o.factory) is not None for o in fn.opened):
                    found.add(fn.qualname)  # a provider, or a function returning what it loaded
                elif fn.returns_instance_of is not None and not fn.is_generator \
                        and self._class_scope(fn.returns_instance_of):
                    found.add(fn.qualname)  # returns a class-based session scope
            for qualname in mod.classes:  # `with UnitOfWork() as session`
                if "." not in qualname and any(f"{qualname}.{m}" in mod.functions for m in ("__enter__", "__aenter__")) \
                        and self._class_scope(f"{mod.module}.{qualname}" if mod.module else qualname):
                    found.add(qualname)
            # Flask-SQLAlchemy's `db` and declarative bases are short, common words: match
            # them in the shapes that use them.
            for db in mod.flask_dbs:
                found.update({f"{db}.Model", f"{db}.session", f"{db}.relationship"})
            found.update(f"({base})" for base in mod.declarative_bases)
            for fn in mod.functions.values():
                for held in fn.held:  # (files that may close it: indexed, then asked again)
                    if self.opens_session(held.factory) is not None and not self.holder_closed(held.holder):
                        found.update(_holder_tokens(held.holder))
        found.update(n.rsplit(".", 1)[-1] for n in self.config_factories)
        found.update(n.rsplit(".", 1)[-1] for n in self.config_scopes)
        found.update(self._memo_decorator_names())
        return {n for n in found if n}

    def holder_closed(self, holder: Holder) -> bool:
        """Does some indexed code close (or take out) the session kept in ``holder``: read back
        under the same key or attribute name from any holder (``request.state.db`` and
        ``req.state.db``, ``g.db`` and an object's ``self.db.close()``), except a function's own
        ``**kwargs`` dict, which holds what its caller passed by keyword?"""
        if self._closed_holders is None:
            self._closed_holders = {h.key for mod in self.modules.values() for h in mod.closed_holders
                                    if h.owner != KWARGS}
        return holder.key in self._closed_holders

    def _memo_decorator_names(self) -> set[str]:
        """The names of the project's own decorators that say they cache (`@locked_cached`)
        used on indexed functions: the module defining one is indexed too, so that
        :meth:`memoizes` can read its body."""
        roots = {name.split(".")[0] for name in self.modules}
        return {d.rsplit(".", 1)[-1] for mod in self.modules.values() for fn in mod.functions.values()
                for d in fn.decorators if d.split(".")[0] in roots and names.memo_named(d)}

    def relevance(self) -> tuple[bytes, ...]:
        """Bytes that make a file worth parsing: SQLAlchemy's own names and the project's
        session-related names. (A `bytes in` test per token is much faster than one regex
        alternation of them.)"""
        if self._relevance is None:
            self._relevance = relevance_of(self.names())
        return self._relevance

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

    def add_transient(self, facts: ModuleFacts) -> None:
        """Make a file's facts findable by path only (a worker looking at a file the index did
        not take), leaving every cache of the project as it is."""
        self.by_path[os.path.abspath(facts.path)] = facts

    def module_for_path(self, path: str) -> ModuleFacts | None:
        return self.by_path.get(os.path.abspath(path))

    # name resolution --------------------------------------------------------
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

    def _resolve(self, qualified: str | None, kind: str, depth: int = 0):
        if not qualified or depth > 8:
            return None
        for mod, local in self._split(qualified):
            table = getattr(mod, kind)
            if local in table:
                return table[local]
            head = local.split(".")[0]
            if head in mod.imports:  # re-exported
                rest = local[len(head):]
                return self._resolve(mod.imports[head] + rest, kind, depth + 1)
        return None

    def function(self, qualified: str | None) -> Function | None:
        return self._resolve(qualified, "functions")

    def alias(self, qualified: str | None) -> Alias | None:
        return self._resolve(qualified, "aliases")

    def factory(self, qualified: str | None) -> Factory | None:
        if qualified in self.config_factories:
            return self.config_factories[qualified]
        found = self._resolve(qualified, "factories")
        if found is not None and found.via is not None:
            maker = self.function(found.via)
            inner = None if maker is None else maker.returns_factory if found.via_index is None \
                else maker.returns_factories_at.get(found.via_index)
            if inner is None:
                return None
            return Factory(found.name, inner.builder, inner.is_async, inner.expire_on_commit,
                           found.line, inner.scoped, inner.bind, via=found.via, via_index=found.via_index)
        return found

    def expire_on_commit(self, factory: str | None, stated: bool | None = None) -> bool:
        """Does a session opened by calling ``factory`` expire its instances on commit?"""
        if stated is not None:
            return stated
        if factory is not None and (factory.endswith("()") or names.library_session_function(factory) is not None):
            return self.assume_expire_on_commit  # a parameter typed as a factory, a library's: unknown
        if names.session_class(factory) is not None:
            return True  # Session(engine) with no option: SQLAlchemy's default
        found = self.factory(factory)
        if found is not None and found.expire_on_commit is not None:
            return found.expire_on_commit
        if found is None and factory is not None and self._returns_session(factory) is not None:
            # `def session(): return Session(...)`/`return maker()`: that session's setting
            fn = self.function(factory)
            for o in fn.opened if fn is not None else ():
                if o.yielded and o.factory != factory and self.opens_session(o.factory) is not None:
                    return self.expire_on_commit(o.factory, o.expire_on_commit)
        return self.assume_expire_on_commit

    def sessions_never_expire(self, *, async_only: bool) -> bool:
        """Is every session the project makes built with `expire_on_commit=False` (and does it
        make one)? Counted: its session factories (async ones only when ``async_only``) and the
        sessions its functions open and hand out (`return AsyncSession(engine,
        expire_on_commit=False)`, a provider's `yield`), the tests' aside. Then a session whose
        factory cannot be seen (a parameter, `self.session`) comes from one of them, and an
        instance it loaded keeps its columns readable after a commit."""
        key = ("never-expire", async_only)
        if key not in self._memo:
            stated: set[bool | None] = set()
            for mod in self.modules.values():
                for f in mod.factories.values():
                    found = self.factory(f"{mod.module}.{f.name}")
                    if found is not None and (found.is_async or not async_only):
                        stated.add(found.expire_on_commit)
                if names.is_test_module(mod.module):
                    continue
                for fn in mod.functions.values():
                    for o in fn.opened:
                        opens = self.opens_session(o.factory) if o.yielded else None
                        if opens is not None and (opens or not async_only):
                            stated.add(self.expire_on_commit(o.factory, o.expire_on_commit))
            self._memo[key] = stated == {False}
        return self._memo[key]

    def is_session_name(self, fn: Function, name: str) -> bool:
        """Does the local ``name`` of function ``fn`` hold a session: one it opened from a
        factory (or a session class), or a parameter typed as a session?"""
        factory = fn.session_names.get(name)
        if factory is not None and self.opens_session(factory) is not None:
            return True
        return any(p.name == name and self.session_class(p.annotation) is not None for p in fn.params)

    def function_expires(self, fn: Function, name: str) -> bool:
        """Does the session held by local ``name`` of ``fn`` expire on commit?"""
        factory = fn.session_names.get(name)
        stated = next((o.expire_on_commit for o in fn.opened if o.factory == factory
                       and o.expire_on_commit is not None), None)
        return self.expire_on_commit(factory, stated)

    # scopes -------------------------------------------------------------------
    def scope(self, qualified: str | None, begin: bool = False, stated_expire: bool | None = None) -> Scope | None:
        """What ``with <qualified>(...)`` (or ``with <qualified>.begin()``) opens, if it is a
        session scope: a session class, a factory, a project context manager yielding a
        session or a service built around one, or a configured scope."""
        if qualified is None:
            return None
        is_async = self.opens_session(qualified)
        if is_async is not None:
            factory = self.factory(qualified)
            return Scope("begin" if begin else "session", qualified, is_async,
                         self.expire_on_commit(qualified, stated_expire), commits_on_exit=begin,
                         yields="session", factory=factory.name if factory else qualified,
                         closes_on_exit=not self._scoped(qualified))
        if qualified in self.config_scopes:
            return Scope("configured", qualified, None, self.assume_expire_on_commit,
                         commits_on_exit=True, yields="service")
        fn = self.function(qualified)
        if fn is None:
            return self._class_scope(qualified)
        if fn.returns_instance_of is not None and not fn.is_generator:
            # `def transaction(db): ...; return TxContext()`: what the class's enter opens
            return self._class_scope(fn.returns_instance_of)
        if fn.yields_kind is None:
            return None
        if not any(d in names.CONTEXT_MANAGER_DECORATORS for d in fn.decorators):
            return None
        nested = self._nested_scope(qualified, fn)
        if nested is not None:
            return nested
        if not any(self.opens_session(src) is not None or self.session_class(src) is not None
                   for src in fn.yield_sources):
            return None  # it yields something made by a call that is not a session (a temp dir, a timer)
        opened = next((o for o in fn.opened if self.opens_session(o.factory) is not None), None)
        if opened is None:
            # a service built around a session the context manager received (a parameter
            # typed as a session): its factory's settings are unknown.
            return Scope("context-manager", qualified, None, self.assume_expire_on_commit,
                         fn.commits_after_yield or fn.yield_in_begin, fn.yields_kind,
                         rolls_back_on_exit=self._rolls_back_on_exit(fn))
        return Scope("context-manager", qualified, self.opens_session(opened.factory),
                     self.expire_on_commit(opened.factory, opened.expire_on_commit),
                     commits_on_exit=fn.commits_after_yield or fn.yield_in_begin or opened.begin,
                     yields=fn.yields_kind, factory=opened.factory, rolls_back_on_exit=self._rolls_back_on_exit(fn),
                     closes_on_exit=fn.closes_after_yield and fn.yields_kind == "session"
                     and not self._scoped(opened.factory))

    def _nested_scope(self, qualified: str, fn: Function) -> Scope | None:
        """`with tenant_session(t) as session: yield session`: a context manager that yields,
        inside its own with-block, the session another project scope yielded. That scope ends
        when this one's block does, so this one does on exit what it does (and commits if it
        commits after its yield itself)."""
        if len(fn.yield_sources) != 1 or not fn.closes_after_yield or fn.yields_kind != "session" \
                or qualified in self._nesting:
            return None
        source = fn.yield_sources[0]
        if self.opens_session(source) is not None or source not in fn.with_callees:
            return None  # a session opened here: the plain reading below
        self._nesting.add(qualified)
        try:
            inner = self.scope(source)
        finally:
            self._nesting.discard(qualified)
        if inner is None or inner.yields != "session":
            return None
        return replace(inner, kind="context-manager", name=qualified,
                       commits_on_exit=inner.commits_on_exit or fn.commits_after_yield,
                       rolls_back_on_exit=inner.rolls_back_on_exit or self._rolls_back_on_exit(fn))

    def _rolls_back_on_exit(self, fn: Function) -> bool:
        """Does a context manager roll its session back after the yield on every path: itself
        (`finally: session.rollback()`) or through a project function it hands the session to
        there (`finally: reset(session)` where `reset` rolls back)?"""
        return fn.rolls_back_after_yield or any(
            end.on_exit and end.passed is not None and "rollback" in self.session_ends(end.callee, end.passed)
            for end in fn.session_ends)

    def _scoped(self, factory: str) -> bool:
        """Is ``factory`` a scoped registry (its session outlives a `with` block)?"""
        found = self.factory(factory)
        return found is not None and found.scoped

    def _class_scope(self, qualified: str) -> Scope | None:
        """A class whose ``__enter__``/``__aenter__`` returns the session it holds
        (``self.session = SessionLocal()``): ``with Database() as session``. What its
        ``__exit__`` does to that session when the block ends without an error, on every such
        path, is what the scope does on exit: commit, roll back, close."""
        for enter, leave in (("__aenter__", "__aexit__"), ("__enter__", "__exit__")):
            found = self._callable(f"{qualified}.{enter}")
            if found is None or found[0].returns_self_attr is None:
                continue
            attr = found[0].returns_self_attr
            factory = self._self_factory(qualified, attr)
            is_async = self.opens_session(factory)
            if factory is None or is_async is None:
                return None
            exit_found = self._callable(f"{qualified}.{leave}")
            ends = [e for e in (exit_found[0].exit_ends if exit_found is not None else ()) if e.attr == attr]
            done = {e.method for e in ends if e.certain}
            return Scope("class", qualified, is_async, self.expire_on_commit(factory),
                         commits_on_exit="commit" in done, yields="session", factory=factory,
                         rolls_back_on_exit="rollback" in done,
                         closes_on_exit="close" in done and not self._scoped(factory),
                         exit_uncertain=any(not e.certain for e in ends))
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

    def _self_factory(self, class_qualified: str, attr: str, depth: int = 0) -> str | None:
        """What ``self.<attr>`` of that class (or a base) was made by calling: ``call:X``."""
        if depth > 8:
            return None
        for mod, local in self._split(class_qualified):
            value = self._self_value(mod, local, attr)
            if value is not None:
                return value[1] if value[0] == "call" else None
            cls = mod.classes.get(local)
            for base in cls.bases if cls is not None else ():
                found = self._self_factory(base, attr, depth + 1)
                if found is not None:
                    return found
        return None

    def any_scope(self, callees) -> bool:
        """Is one of these with-item callees a session scope? A name the module does not
        define or import (a parameter, a local) may be one: True."""
        for q in callees:
            if q.startswith(WITH_VALUE) or self.scope(q) is not None:
                return True  # a value used as a context manager may be a session
            if "." not in q:
                return True
        return False

    def self_session(self, module: ModuleFacts, class_qualname: str, attr: str, depth: int = 0) -> bool:
        """Does ``self.<attr>`` of that class hold a session?"""
        value = self._self_value(module, class_qualname, attr)
        if value is None or depth > 4:
            return False
        kind, what = value
        if kind == "type":
            return self.session_class(what) is not None
        if what.startswith("self."):  # self.session = self.factory()
            other = self._self_value(module, class_qualname, what[5:])
            if other is None:
                return False
            okind, owhat = other
            return okind == "type" and (names.factory_builder(owhat) is not None or self.factory(owhat) is not None)
        return self.opens_session(what) is not None

    def self_session_settings(self, module: ModuleFacts, class_qualname: str, attr: str) -> tuple[bool | None, bool] | None:
        """(async-ness, expires on commit) of the session ``self.<attr>`` holds, or None when it
        holds none. A session typed on a parameter has its factory's settings unknown."""
        if not self.self_session(module, class_qualname, attr):
            return None
        kind, what = self._self_value(module, class_qualname, attr) or ("", "")
        if kind == "type":
            return self.session_class(what), self.assume_expire_on_commit
        if what.startswith("self."):
            return None, self.assume_expire_on_commit
        return self.opens_session(what), self.expire_on_commit(what)

    def flask_session(self, qualified: str | None) -> bool:
        """``db.session`` of a Flask-SQLAlchemy ``db = SQLAlchemy()``."""
        if not qualified or not qualified.endswith(".session"):
            return False
        return self._is_flask_db(qualified[: -len(".session")])

    def _is_flask_db(self, qualified: str, depth: int = 0) -> bool:
        if depth > 6:
            return False
        for mod, local in self._split(qualified):
            if local in mod.flask_dbs:
                return True
            if local in mod.imports and mod.imports[local] != qualified:
                return self._is_flask_db(mod.imports[local], depth + 1)
        return False

    def decorator(self, qualified: str | None) -> SessionDecorator | None:
        """The session decorator ``qualified``, when what its wrapper passes on really is a
        session (not any object the wrapper built)."""
        fn = self.function(qualified)
        d = fn.session_decorator if fn is not None else None
        if d is None:
            return None
        if self.opens_session(d.factory) is not None:
            return d
        # The wrapper enters a project scope (`with session_scope() as s: return f(s, ...)`):
        # the scope's factory and settings are the decorator's.
        scope = self.scope(d.factory)
        if scope is None or scope.yields != "session" or scope.factory is None:
            return None
        return SessionDecorator(scope.factory, scope.expire_on_commit, d.commits or scope.commits_on_exit,
                                d.position, d.keyword)

    # models -------------------------------------------------------------------
    def _class(self, qualified: str | None) -> ClassFacts | None:
        return self._resolve(qualified, "classes")

    def _mapped(self, qualified: str, depth: int = 0) -> str | None:
        """"model", "base" (a declarative base, or an abstract mapped class) or None."""
        if depth > 12:
            return None
        key = qualified
        if key in self._mapped_memo:
            return self._mapped_memo[key]
        self._mapped_memo[key] = None  # cycles (class A(B), class B(A)) end here
        result = self._mapped_uncached(qualified, depth)
        self._mapped_memo[key] = result
        return result

    def _mapped_uncached(self, qualified: str, depth: int) -> str | None:
        cls = self._class(qualified)
        if cls is None:
            return None
        kind = None
        for base in cls.bases:
            if base in names.DECLARATIVE_BASE_CLASSES:
                kind = kind or "base"
            elif base in names.SQLMODEL:
                if cls.keywords.get("table") == "True":
                    return "model"
            elif self._is_declarative_name(base):
                kind = "model"
            else:
                inner = self._mapped(base, depth + 1)
                if inner is not None:
                    kind = "model" if inner in ("model", "base") else kind
        if kind == "base" and cls.tablename and not cls.abstract:
            return "model"
        if kind == "model" and cls.abstract:
            return "base"
        if kind is None and cls.tablename and not cls.abstract and (
                cls.mapped_by_decorator or self._external_base(qualified)):
            # `@registry.mapped`, or a declarative base from an installed package (a framework's
            # `Model`): `__tablename__` is SQLAlchemy's own word.
            return "model"
        return kind

    def _external_base(self, qualified: str, depth: int = 0) -> bool:
        """Does the class derive, through project classes, from a class defined outside the
        project (other than ``object`` and typing's helpers)?"""
        cls = self._class(qualified)
        if cls is None or depth > 8:
            return False
        for base in cls.bases:
            if base.split(".")[0] in ("typing", "typing_extensions", "abc", "builtins", "object", "enum"):
                continue
            if self._class(base) is None or self._external_base(base, depth + 1):
                return True
        return False

    def _is_declarative_name(self, qualified: str, depth: int = 0) -> bool:
        """``app.db.Base`` where ``Base = declarative_base()``; ``app.db.db.Model`` for
        Flask-SQLAlchemy's ``db = SQLAlchemy()``."""
        if depth > 8:
            return False
        for mod, local in self._split(qualified):
            if local in mod.declarative_bases:
                return True
            head, _, rest = local.partition(".")
            if rest == "Model" and head in mod.flask_dbs:
                return True
            if head in mod.imports and (rest or local != head):
                target = mod.imports[head] + ("." + rest if rest else "")
                return target != qualified and self._is_declarative_name(target, depth + 1)
        return False

    def models(self) -> dict[str, Model]:
        if self._models is None:
            found: dict[str, Model] = {}
            for mod in self.modules.values():
                for qualname in mod.classes:
                    qualified = f"{mod.module}.{qualname}" if mod.module else qualname
                    if self._mapped(qualified) == "model":
                        found[qualified] = self._build_model(qualified)
            by_name = {q.rsplit(".", 1)[-1]: m for q, m in found.items()}
            for mod in self.modules.values():  # backrefs declare relationships on their target
                for cls in mod.classes.values():
                    for target, ref, lazy in cls.backrefs:
                        model = by_name.get(target.rsplit(".", 1)[-1])
                        if model is not None:
                            model.relationships.setdefault(ref, lazy)
            self._models = found
            self._models_by_class = {}
            self._models_by_name = {}
            for q, model in found.items():
                found_cls = self._class(q)
                if found_cls is not None:
                    self._models_by_class[id(found_cls)] = model
                self._models_by_name.setdefault(q.rsplit(".", 1)[-1], []).append(model)
        return self._models

    def _build_model(self, qualified: str) -> Model:
        model = Model(qualified, set(), set(), {}, {})
        chain, seen = [qualified], set()
        while chain:
            current = chain.pop()
            if current in seen:
                continue
            seen.add(current)
            cls = self._class(current)
            if cls is None:
                continue
            for name, reads in cls.properties.items():
                model.properties.setdefault(name, set(reads))
            for name, attr in cls.attributes.items():
                if attr.kind == "relationship":
                    model.relationships.setdefault(name, attr.lazy or "select")
                    model.targets.setdefault(name, attr.target or "")
                    if attr.collection:
                        model.collections.add(name)
                elif attr.kind == "deferred":
                    model.deferred.add(name)
                    if attr.lazy == "raise":
                        model.raising.add(name)
                else:
                    model.columns.add(name)
                if attr.refetched and not self._eager_defaults(qualified):
                    model.refetched.add(name)
            chain.extend(cls.bases)
        return model

    def _eager_defaults(self, qualified: str, depth: int = 0) -> bool:
        """Does the mapper of ``qualified`` (or a base) fetch server-set values on flush?"""
        cls = self._class(qualified)
        if cls is None or depth > 8:
            return False
        return cls.eager_defaults or any(self._eager_defaults(b, depth + 1) for b in cls.bases)

    def model(self, qualified: str | None) -> Model | None:
        if qualified is None:
            return None
        models = self.models()
        if qualified in models:
            return models[qualified]
        cls = self._class(qualified)
        return self._models_by_class.get(id(cls)) if cls is not None else None

    def instance_model(self, qualified: str | None) -> Model | None:
        """What an instance of the project class ``qualified`` maps (``self`` in its methods):
        its model; for an abstract mapped class (`__abstract__ = True` under a declarative
        base) the columns and relationships it and its bases declare, which every concrete
        subclass maps."""
        model = self.model(qualified)
        if model is not None or qualified is None or self._mapped(qualified) != "base":
            return model
        cls = self._class(qualified)
        if cls is None or not cls.abstract:
            return None
        return self._build_model(qualified)

    def model_named(self, name: str) -> Model | None:
        """The one model whose class name is ``name`` (None when unknown or ambiguous)."""
        self.models()
        matches = self._models_by_name.get(name, [])
        return matches[0] if len(matches) == 1 else None

    def relationship_names(self) -> dict[str, set[str]]:
        """attribute name -> lazy strategies it has on any model (for untyped objects)."""
        if self._relationship_names is None:
            out: dict[str, set[str]] = {}
            for model in self.models().values():
                for name, lazy in model.relationships.items():
                    out.setdefault(name, set()).add(lazy)
            self._relationship_names = out
        return self._relationship_names

    def session_class(self, qualified: str | None, depth: int = 0) -> bool | None:
        """Is ``qualified`` a session class (SQLAlchemy's, SQLModel's, or a project alias or
        NewType of one)? Returns its async-ness, or None."""
        kind = names.session_class(qualified)
        if kind is not None or qualified is None or depth > 6:
            return kind
        for mod, local in self._split(qualified):
            if local in mod.session_types:
                return self.session_class(mod.session_types[local], depth + 1)
            head = local.split(".")[0]
            if head in mod.imports and mod.imports[head] != qualified:
                return self.session_class(mod.imports[head] + local[len(head):], depth + 1)
        return None

    def builder(self, qualified: str | None, depth: int = 0) -> str | None:
        """SQLAlchemy's factory builder (``sqlalchemy.orm.sessionmaker``...) that ``qualified``
        names, directly or re-exported by a project module (``from sqlalchemy.orm import
        sessionmaker`` in ``app.db``, imported from there); None for anything else."""
        if qualified is None or depth > 6:
            return None
        if names.factory_builder(qualified) is not None:
            return qualified
        for mod, local in self._split(qualified):
            if local in mod.imports and mod.imports[local] != qualified:
                return self.builder(mod.imports[local], depth + 1)
        return None

    def memoizes(self, qualified: str | None) -> bool:
        """Does the decorator ``qualified`` keep what the decorated function returns for later
        calls? A library cache (``functools.lru_cache``, ``cachetools.cached``...), or a
        project decorator whose name says so (:func:`names.memo_named`) and whose code stores
        values: ``X[k] = v``, ``X.setdefault(k, v)``, ``cache.set(k, v)`` in the decorator, the
        functions nested in it, or the methods of a decorator class."""
        if not qualified:
            return False
        if qualified in names.MEMO_DECORATORS:
            return True
        if not names.memo_named(qualified):
            return False
        for mod, local in self._split(qualified):
            inside = [fn for name, fn in mod.functions.items() if name == local or name.startswith(local + ".")]
            if inside:
                return any(fn.stores or fn.methods & {"set", "setdefault"} for fn in inside)
        return False

    def module_instances(self, qualified: str | None) -> list[str]:
        """The module-level names of the project bound to an instance of the class
        ``qualified``, built when the module is imported (`directory = UserDirectory()`):
        objects that live as long as the process."""
        cls = self._class(qualified)
        if cls is None:
            return []
        if self._instances is None:
            self._instances = {}
            for mod in self.modules.values():
                for name, f in mod.factories.items():
                    built = self._class(f.builder) if f.builder and f.builder[-1:] != ")" else None
                    if built is not None:
                        self._instances.setdefault(id(built), []).append(f"{mod.module}.{name}")
        return self._instances.get(id(cls), [])

    def opens_session(self, qualified: str | None) -> bool | None:
        """Is calling ``qualified`` opening a session? Returns its async-ness, or None."""
        if qualified is None:
            return None
        cls = names.session_class(qualified)
        if cls is None:
            cls = names.library_session_function(qualified)
        if cls is not None:
            return cls
        if qualified.endswith("()"):  # calling a value annotated with a factory type, or built
            # in place (`sessionmaker(bind=engine)()`)
            return names.factory_builder(self.builder(qualified[:-2]))
        factory = self.factory(qualified)
        if factory is not None:
            return bool(factory.is_async)
        return self._returns_session(qualified)

    def _returns_session(self, qualified: str, depth: int = 0) -> bool | None:
        """``def session_factory(): return SessionLocal()``: calling it opens a session."""
        fn = self.function(qualified)
        if fn is None or fn.is_generator or depth > 4 or qualified in self._returning:
            return None
        self._returning.add(qualified)
        try:
            for o in fn.opened:
                if o.yielded and not o.closed_on_return and o.factory != qualified:
                    kind = self.opens_session(o.factory)
                    if kind is not None:
                        return kind
            return None
        finally:
            self._returning.discard(qualified)

    def returns_registry_session(self, qualified: str | None, depth: int = 0) -> bool:
        """Does calling the project function ``qualified`` give a scoped registry's
        thread-local session (``def get_session(): return Scoped()``), which the registry
        owns, rather than a new one?"""
        fn = self.function(qualified)
        if fn is None or fn.is_generator or depth > 4:
            return False
        for o in fn.opened:
            if not o.yielded or o.factory == qualified:
                continue
            found = self.factory(o.factory)
            if found is not None and found.scoped or self.returns_registry_session(o.factory, depth + 1):
                return True
        return False

    def flushes_passed_session(self, qualified: str | None, position: int | None, keyword: str | None) -> str | None:
        """Calling the project function ``qualified`` with a session as the argument at
        ``position`` (or ``keyword``): "commit" or "flush" when it commits or flushes that
        session where a failure reaches the caller still needing a rollback
        (``Function.flushes_params``), and the parameter is typed as a session; else None."""
        fn = self.function(qualified)
        flushes = fn.flushes_params if fn is not None else {}
        if fn is None or not flushes:
            return None
        if keyword is not None:
            name = keyword
        elif position is not None and "." not in fn.qualname and position < len(fn.params):
            name = fn.params[position].name  # (a method's positions are shifted by self)
        else:
            return None
        param = next((p for p in fn.params if p.name == name), None)
        if param is None or param.depends or self.session_class(param.annotation) is None:
            return None
        return flushes.get(name)

    def flushing_function_names(self) -> set[str]:
        """The short names of the project functions that commit or flush a session they are
        given (see :meth:`flushes_passed_session`), and of the methods that commit or flush
        their own ``self.<attr>`` session uncaught (see :meth:`constructed_flushes`): a
        function calling none of them needs no closer look."""
        if self._flushing is None:
            self._flushing = {q.rsplit(".", 1)[-1] for mod in self.modules.values()
                              for q, fn in mod.functions.items() if fn.flushes_params or any(
                                  end.session.startswith("self.") and end.method in ("commit", "flush")
                                  and not end.caught for end in fn.session_ends)}
        return self._flushing

    def param_dependency(self, param: Param) -> tuple[str | None, bool]:
        if param.depends:
            return param.depends, param.use_cache
        alias = self.alias(param.alias) if param.alias else None
        if alias is not None:
            return alias.depends, alias.use_cache
        return None, True

    # what functions return -----------------------------------------------------
    def returned(self, qualified: str | None, receiver: str | None = None, depth: int = 0) -> Returned | None:
        """What calling the project function or method ``qualified`` gives, when it is an ORM
        instance (or a list of them): its return annotation; else its body, a load
        (``session.get(User, id)``, ``select(self.model)`` of a generic repository) or the
        result of another call it returns (``return await self.repo.get(id)``), followed across
        modules. ``receiver`` is the class a method is called on, when it is not the class
        defining it (``UserRepository(BaseRepository[User])``)."""
        if not qualified or depth > 8:
            return None
        found = self._callable(qualified)
        if found is None:
            return None
        fn, owner = found
        receiver = receiver or owner
        if fn.returns_class is not None:  # annotated: the annotation is the answer
            model = self.model(fn.returns_class)
            return Returned(model, Stage(fn.returns_shape), fn) if model and fn.returns_shape else None
        if fn.returns_load is not None:
            expr, stage = fn.returns_load
            model = self._model_expr(expr, receiver)
            if model is not None:
                return Returned(model, Stage(stage), fn)
        for callee in fn.returns_calls:
            target, target_receiver = self._callee_of(callee, receiver)
            if target is not None and target != qualified:
                inner = self.returned(target, target_receiver, depth + 1)
                if inner is not None:
                    return inner
        return None

    def built_and_committed(self, qualified: str | None, passed: int | str) -> Model | None:
        """The model of the instance the project function ``qualified`` builds (``User(...)``)
        and returns, when it commits the session a caller hands it at ``passed`` itself (not in
        a handler, and not through another function): that commit expired what the instance
        was given, so, under a session that expires on commit, its relationships come back
        unloaded."""
        found = self._callable(qualified) if qualified else None
        if found is None:
            return None
        fn = found[0]
        name = _param_at(fn, passed)
        if not name or not any(end.session == name and end.method == "commit" and end.callee is None
                               for end in fn.session_ends):
            return None
        models = [self.model(callee) for callee in fn.returns_calls]
        if len(models) != 1 or models[0] is None or fn.returns_load is not None:
            return None
        return models[0]

    def _callable(self, qualified: str, depth: int = 0) -> tuple[Function, str | None] | None:
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
            inherited = self._callable(f"{base}.{name}", depth + 1)
            if inherited is not None:
                return inherited[0], owner
        return None

    def _model_expr(self, expr: str, receiver: str | None, depth: int = 0) -> Model | None:
        """The model a load names: a class, or ``self.<attr>`` of the receiver's class (a class
        attribute ``model = User``, or the argument of a generic base ``Repo[User]``)."""
        if not expr.startswith("self."):
            return self.model(expr)
        if expr == CLASS_ITSELF:  # `select(cls)`: the class the method is called on
            return self.model(receiver) if receiver else None
        cls = self._class(receiver) if receiver else None
        if cls is None or depth > 8:
            return None
        attr = expr[len("self."):]
        if attr in cls.values:
            return self.model(cls.values[attr])
        for arg in cls.generic_args:
            model = self.model(arg)
            if model is not None:
                return model
        for base in cls.bases:
            model = self._model_expr(expr, base, depth + 1)
            if model is not None:
                return model
        return None

    def _callee_of(self, callee: str, receiver: str | None) -> tuple[str | None, str | None]:
        """(qualified function, the class it is called on) for a returned call as the body
        spells it: ``app.crud.get_user``, ``self.get`` or ``self.repo.get``."""
        if not callee.startswith("self."):
            return callee, None
        if receiver is None:
            return None, None
        parts = callee.split(".")[1:]
        if len(parts) == 1:
            return f"{receiver}.{parts[0]}", receiver
        if len(parts) != 2:
            return None, None
        attr, method = parts
        for mod, local in self._split(receiver):
            value = self._self_value(mod, local, attr)
            if value is None:
                continue
            kind, what = value
            if kind in ("type", "call") and not what.endswith("()") and not what.startswith("self."):
                return f"{what}.{method}", what
        return None, None

    # sessions handed to project functions -------------------------------------
    def session_ends(self, callee: str | None, passed: int | str, receiver: str | None = None,
                     depth: int = 0, deep: bool = False) -> frozenset[str]:
        """What the project function ``callee`` may do to the session a caller hands it:
        "commit" (itself, or through the project functions it hands the session on to),
        "rollback" (itself; with ``deep``, further down too), or nothing known. ``passed`` is
        where the session goes: a position of the call's arguments, a keyword, or
        ``"self.<attr>"`` for a method of the caller's own class using the same ``self``
        session; ``receiver`` is the class a ``self.`` callee is looked up in."""
        if not callee or depth > 8:
            return frozenset()
        target, target_receiver = self._callee_of(callee, receiver)
        if target is None:
            return frozenset()
        followed = _FOLLOWED | {"rollback"} if deep else _FOLLOWED
        key = (target, passed, target_receiver, deep)
        if key in self._ends:
            return self._ends[key]
        self._ends[key] = frozenset()  # a cycle ends nothing more
        found = self._callable(target)
        out: set[str] = set()
        if found is not None:
            fn, owner = found
            name = _param_at(fn, passed) or ""
            for end in fn.session_ends if name else ():
                if end.session == "self." and name.startswith("self."):  # `self.other()`: same self
                    out |= self.session_ends(end.callee, name, target_receiver or owner, depth + 1, deep) & followed
                elif end.session != name:
                    continue
                elif end.method in ("commit", "rollback"):  # a flush ends nothing
                    out.add(end.method)
                elif end.passed is not None:
                    out |= self.session_ends(end.callee, end.passed, target_receiver or owner, depth + 1, deep) & followed
        self._ends[key] = frozenset(out)
        return self._ends[key]

    def constructed_session_ends(self, cls: str | None, passed: int | str, method: str) -> frozenset[str]:
        """What calling ``method`` on an instance of the project class ``cls`` may do to the
        session handed to its constructor at ``passed`` (`Service(db).delete(item)`): its
        `__init__` keeps that parameter as `self.<attr>`, which the method (or the methods it
        calls on self) may commit or roll back, as :meth:`session_ends` says."""
        held = self._init_attrs(cls, passed) if cls else None
        if held is None:
            return frozenset()
        out: frozenset[str] = frozenset()
        for attr in held:
            out |= self.session_ends(f"{cls}.{method}", f"self.{attr}", cls)
        return out

    def built_by(self, callee: str | None, passed: int | str) -> tuple[str, int | str] | None:
        """For a call of the project class or class method ``callee`` with a session at
        ``passed``: the class of the object it builds around that session, and where its
        constructor gets it. ``Repo(db)``, or a class method that hands its parameter on to
        ``cls(...)`` and returns the instance (``Repo.from_session(db)``: ``return cls(session)``,
        annotated ``Self`` or returning that call)."""
        if not callee:
            return None
        if self._class(callee) is not None:
            return None if self.model(callee) is not None else (callee, passed)
        owner, _, _ = callee.rpartition(".")
        found = self._callable(callee) if owner and self._class(owner) is not None else None
        if found is None:
            return None
        fn = found[0]
        if not any(d.rsplit(".", 1)[-1] == "classmethod" for d in fn.decorators):
            return None
        if not ((fn.returns_class or "").rsplit(".", 1)[-1] == "Self" or "cls" in fn.returns_calls):
            return None
        name = _param_at(fn, passed)
        at = next((end.passed for end in fn.session_ends
                   if end.session == name and end.callee == "cls" and end.passed is not None), None)
        return (owner, at) if name and at is not None and self.model(owner) is None else None

    def constructed_flushes(self, cls: str, passed: int | str, method: str) -> str | None:
        """"commit" or "flush" when calling ``method`` on an object of ``cls`` built with a
        session at ``passed`` commits or flushes that session (its own `self.<attr>`, in the
        method itself) where a failure reaches the caller (no handler there catches every
        error); else None."""
        found = self._callable(f"{cls}.{method}")
        attrs = self._init_attrs(cls, passed)
        if found is None or not attrs:
            return None
        held_as = {f"self.{attr}" for attr in attrs}
        done = {end.method for end in found[0].session_ends
                if end.session in held_as and end.method in ("commit", "flush") and not end.caught}
        return "commit" if "commit" in done else "flush" if done else None

    def method_uses_session(self, cls: str, method: str, depth: int = 0) -> bool:
        """Does ``method`` of the project class ``cls`` (or a method of its own it calls on
        ``self``) call a session method that needs a usable transaction (a query, a load, a
        flush, a commit)? Read from the method names it calls: a method of an object built
        around a session, whose other methods use it."""
        found = self._callable(f"{cls}.{method}") if depth <= 4 else None
        if found is None:
            return False
        fn = found[0]
        if fn.methods & _NEEDS_TRANSACTION:
            return True
        return any(self.method_uses_session(cls, end.callee[len("self."):], depth + 1)
                   for end in fn.session_ends
                   if end.session == "self." and end.callee and end.callee.count(".") == 1)

    def builds_ender(self, cls: str | None, passed: int | str) -> bool:
        """Does a method of the project class ``cls`` (its own) commit or roll back the session
        its constructor is handed at ``passed``? (A cheap question before any walk.)"""
        if not cls or not self._init_attrs(cls, passed):
            return False
        return any(self.constructed_session_ends(cls, passed, key[len(local) + 1:])
                   for mod, local in self._split(cls) for key in mod.functions
                   if key.startswith(local + ".") and key.count(".") == local.count(".") + 1)

    def _init_attrs(self, cls: str, passed: int | str, depth: int = 0) -> list[str] | None:
        """The ``self.<attr>`` names the `__init__` of ``cls`` (or of the base it inherits it
        from) stores the argument given at ``passed`` in; None when ``cls`` is no project class."""
        if depth > 8:
            return None
        for mod, local in self._split(cls):
            klass = mod.classes.get(local)
            head = local.split(".")[0]
            if klass is None and head in mod.imports:  # re-exported
                return self._init_attrs(mod.imports[head] + local[len(head):], passed, depth + 1)
            if klass is None:
                continue
            init = mod.functions.get(f"{local}.__init__")
            if init is None:
                for base in klass.bases:
                    found = self._init_attrs(base, passed, depth + 1)
                    if found is not None:
                        return found
                return None
            name = _param_at(init, passed)
            return [key[len(local) + 1:] for key, param in mod.init_params.items()
                    if param == name and key.startswith(local + ".")] if name else []
        return None

    # FastAPI providers --------------------------------------------------------
    def param_reads(self, qualified: str | None, passed: int | str) -> list[str]:
        """The attributes the project function ``qualified`` reads of the argument passed at
        ``passed`` (a position or a keyword), as its body reads them directly."""
        found = self._callable(qualified) if qualified else None
        if found is None:
            return []
        name = _param_at(found[0], passed)
        return found[0].param_reads.get(name, []) if name else []

    def made_dependency(self, qualified: str | None) -> str | None:
        """``pkg.require()`` (a dependency that is the result of calling a dependency factory)
        as the function the factory returns, ``pkg.require.dependency``, when the index knows
        it; any other name as it is."""
        if not qualified or not qualified.endswith("()"):
            return qualified
        factory = self.function(qualified[:-2])
        if factory is None or factory.returns_function is None:
            return qualified
        return f"{qualified[:-2]}.{factory.returns_function}"

    def session_provider(self, qualified: str | None, depth: int = 0) -> str | None:
        """The canonical session provider when ``qualified`` is a dependency that provides a
        session (yields or returns one), following providers that pass their own injected
        session through. None when it does not provide a session."""
        qualified = self.made_dependency(qualified)
        fn = self.function(qualified)
        if fn is None or depth > 8:
            return None
        if fn.yields_param is not None:
            for p in fn.params:
                if p.name == fn.yields_param:
                    dep, cache = self.param_dependency(p)
                    if dep and cache:
                        inner = self.session_provider(dep, depth + 1)
                        if inner is not None:
                            return inner
        if any(o.yielded and self.opens_session(o.factory) is not None for o in fn.opened):
            return self.canonical(qualified)
        if self.session_class(fn.returns) is not None and (fn.opened or fn.is_generator):
            return self.canonical(qualified)
        return None

    def canonical(self, qualified: str | None) -> str | None:
        """Where the function ``qualified`` is defined (``app.db.get_db`` for a re-export
        ``app.deps.get_db``), so that two spellings of one provider compare equal."""
        fn = self.function(qualified)
        if fn is None:
            return qualified
        if self._defined is None:
            self._defined = {id(f): f"{m.module}.{q}" if m.module else q
                             for m in self.modules.values() for q, f in m.functions.items()}
        return self._defined.get(id(fn), qualified)

    def value_sessions(self, qualified: str | None, depth: int = 0) -> list[SessionOrigin] | None:
        """The sessions the value of dependency ``qualified`` may belong to.

        None when the provider is not in the project (nothing can be said)."""
        qualified = self.made_dependency(qualified)
        fn = self.function(qualified)
        if fn is None or depth > 8:
            return None
        found: list[SessionOrigin] = []
        for p in fn.params:
            dep, cache = self.param_dependency(p)
            if not dep:
                continue
            provider = self.session_provider(dep)
            if provider is not None:
                found.append(SessionOrigin(provider, open=True, use_cache=cache))
                continue
            inner = self.value_sessions(dep, depth + 1)
            if inner:
                found.extend(inner)
        for opened in fn.opened:
            if self.opens_session(opened.factory) is None:
                continue
            found.append(SessionOrigin(None, open=not opened.closed_on_return, opener=self.canonical(qualified)))
        if fn.detaches:  # it expunges what it hands over: a detached object re-attaches on add()
            found = [SessionOrigin(o.provider, False, o.use_cache, o.opener) for o in found]
        return found

    # call sites ---------------------------------------------------------------
    def callers(self, qualified: str) -> list[tuple[ModuleFacts, Function, CallSite]]:
        """Call sites of the project function ``qualified``, across modules."""
        if self._callers is None:
            table: dict[str, list] = {}
            for mod in self.modules.values():
                for fn in mod.functions.values():
                    for call in fn.calls:
                        table.setdefault(call.callee.rsplit(".", 1)[-1], []).append((mod, fn, call))
            self._callers = table
        target = self.function(qualified)
        if target is None:
            return []
        out = []
        resolved: dict[str, bool] = {}
        for row in self._callers.get(qualified.rsplit(".", 1)[-1], ()):
            callee = row[2].callee
            if callee not in resolved:
                resolved[callee] = callee == qualified or self.function(callee) is target
            if resolved[callee]:
                out.append(row)
        return out

    def receiver_call_sites(self, qualified: str) -> list[tuple[ModuleFacts, Function, CallSite]]:
        """Calls `<local>.<name>(...)` that may call the method ``qualified`` through an object
        the caller holds in a local name (`service = Service()`; `service.name(...)`): the
        candidates, for a caller's body to confirm what the local holds."""
        target = self.function(qualified)
        if target is None or "." not in qualified:
            return []
        self.callers(qualified)  # builds the table
        name = qualified.rsplit(".", 1)[-1]
        return [row for row in (self._callers or {}).get(name, ()) if held_local(row[0], row[2]) is not None
                and self.function(row[2].callee) is None]

    def call_sites(self, qualified: str) -> list[tuple[ModuleFacts, Function, CallSite]]:
        """Call sites of the project function ``qualified``: :meth:`callers`, and the calls
        `self.<name>(...)` of methods of its own class (or of a class inheriting it)."""
        out = list(self.callers(qualified))
        target = self.function(qualified)
        if target is None or self._callers is None:
            return out
        for mod, fn, site in self._callers.get(qualified.rsplit(".", 1)[-1], ()):
            if not site.callee.startswith("self.") or "." not in fn.qualname:
                continue
            found = self._callable(f"{mod.module}.{fn.qualname.rsplit('.', 1)[0]}.{site.callee[5:]}")
            if found is not None and found[0] is target:
                out.append((mod, fn, site))
        return out


def held_local(mod: ModuleFacts, site: CallSite) -> str | None:
    """The local name of `<local>.<method>(...)` in a function of ``mod`` (the index qualifies
    an unknown name with its module: `app.jobs.service.run`), or None for another call."""
    prefix = f"{mod.module}." if mod.module else ""
    rest = site.callee[len(prefix):] if site.callee.startswith(prefix) else ""
    local, dot, _ = rest.partition(".")
    return local if dot and rest.count(".") == 1 and local not in ("self", "cls") else None


# What a session end further down the calls means for the caller: a commit is the success
# path of every function on the way; a rollback in a function the callee calls is an error path
# the callee itself may well handle (it checks a result, it catches), so only its own counts.
_FOLLOWED = frozenset({"commit"})
# Session methods that need a transaction the session can use (after a failed flush they
# raise PendingRollbackError).
_NEEDS_TRANSACTION = frozenset(names.LOAD_METHODS | {"commit", "flush", "refresh"})


def _holder_tokens(holder: Holder) -> tuple[str, ...]:
    """What a file that may read ``holder`` back mentions, under any holder's name as
    :meth:`ProjectIndex.holder_closed` matches: its key; a short key (a common word, ``db``)
    as an attribute or quoted (``req.db``, ``g.pop("db")``)."""
    if len(holder.key) >= 4:
        return (holder.key,)
    return (f".{holder.key}", f'"{holder.key}"', f"'{holder.key}'")


def _param_at(fn: Function, passed: int | str) -> str | None:
    """The parameter of ``fn`` a session passed at ``passed`` binds (``self``/``cls`` skipped
    for a method), or ``passed`` itself when it names a ``self.<attr>``."""
    if isinstance(passed, str):
        if passed.startswith("self."):
            return passed
        return passed if any(p.name == passed for p in fn.params) else None
    names_ = [p.name for p in fn.params]
    if "." in fn.qualname and names_ and names_[0] in ("self", "cls"):
        names_ = names_[1:]
    return names_[passed] if 0 <= passed < len(names_) else None
