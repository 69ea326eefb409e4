"""Sessions and their factories: what opens a session (a session class, a factory, a
function returning one), whether it is async, whether it expires on commit, and which
names and ``self.<attr>`` hold one."""

from __future__ import annotations

from .. import names
from .facts import (
    Factory,
    Function,
    ModuleFacts,
)
from .lookup import IndexLookup


class SessionQueries(IndexLookup):
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
        make one)? Counted: its session factories (async ones only when ``async_only``), those its
        functions build and hand out (`return async_sessionmaker(engine, expire_on_commit=False)`,
        `app.state.maker = async_sessionmaker(engine)`; one a function only uses, as a
        migration's `sessionmaker(bind=op.get_bind())`, makes sessions the rules see), and the
        sessions its functions open and hand out (`return AsyncSession(engine,
        expire_on_commit=False)`, a provider's `yield`), the tests' aside. Then a session whose
        factory cannot be seen (a parameter, `self.session`) comes from one of them, and an
        instance it loaded keeps its columns readable after a commit."""
        def compute() -> bool:
            stated: set[bool | None] = set()
            for mod in self.modules.values():
                for f in mod.factories.values():
                    found = self.factory(f"{mod.module}.{f.name}")
                    if found is not None and (found.is_async or not async_only):
                        stated.add(found.expire_on_commit)
                if names.is_test_module(mod.module):
                    continue
                for fn in mod.functions.values():
                    # `return async_sessionmaker(...)`, `app.state.maker = sessionmaker(...)`
                    stated.update(expire is not False for is_async, expire in fn.built_factories
                                  if is_async or not async_only)
                    for o in fn.opened:
                        opens = self.opens_session(o.factory) if o.yielded else None
                        if opens is not None and (opens or not async_only):
                            stated.add(self.expire_on_commit(o.factory, o.expire_on_commit))
            return stated == {False}

        return self.remember(("never-expire", async_only), compute)

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

    def kept_factory(self, qualified: str) -> str | None:
        """``Class.attr``, called on an instance, as the factory it stands for: a factory the
        class keeps as ``self.attr``, or a property whose body returns such a factory
        (``return self.__session``). None for anything else (a plain method returns what it
        returns only when called: ``obj.method()()`` is not written that way)."""
        if self.factory(qualified) is not None:
            return qualified
        found = self.callable_named(qualified)
        if found is None or found[0].returns_self_attr is None or not any(
                names.is_property_decorator(d) for d in found[0].decorators):
            return None
        owner = found[1] or qualified.rpartition(".")[0]
        kept = f"{owner}.{found[0].returns_self_attr}"
        return kept if self.factory(kept) is not None else None

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
        """Does calling the project function ``qualified`` give a session a registry owns
        rather than a new one of the caller's: a scoped registry's thread-local session
        (``def get_session(): return Scoped()``), or one the function keeps in a module- or
        class-level container as it hands it out (``_opened.add(session); return session``),
        for code that closes them all later?"""
        fn = self.function(qualified)
        if fn is None or fn.is_generator or depth > 4:
            return False
        if fn.registers:
            return True  # the session it hands out is one it keeps
        for o in fn.opened:
            if not o.yielded or o.factory == qualified:
                continue
            found = self.factory(o.factory)
            if found is not None and found.scoped or self.returns_registry_session(o.factory, depth + 1):
                return True
        return False

    def _scoped(self, factory: str) -> bool:
        """Is ``factory`` a scoped registry (its session outlives a `with` block)?"""
        found = self.factory(factory)
        return found is not None and found.scoped

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
