"""Session scopes: what ``with <callee>(...)`` opens (a session class, a factory, a
project context manager or class-based one, a configured scope) and what it does on exit;
and session decorators."""

from __future__ import annotations

from dataclasses import replace

from .. import names
from ..names import WITH_VALUE
from .facts import (
    Function,
    Scope,
    SessionDecorator,
)
from .handoff import HandoffQueries


class ScopeQueries(HandoffQueries):
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
            return self._class_scope(qualified) or self._instance_call_scope(qualified)
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
            end.on_exit and end.passed is not None and "rollback" in self.session_ends(end.callee, end.passed,
                                                                                 binds_self=end.binds_self)
            for end in fn.session_ends)

    def _class_scope(self, qualified: str) -> Scope | None:
        """A class whose ``__enter__``/``__aenter__`` returns the session it holds
        (``self.session = SessionLocal()``): ``with Database() as session``. What its
        ``__exit__`` does to that session when the block ends without an error, on every such
        path, is what the scope does on exit: commit, roll back, close."""
        for enter, leave in (("__aenter__", "__aexit__"), ("__enter__", "__exit__")):
            found = self.callable_named(f"{qualified}.{enter}")
            if found is None or found[0].returns_self_attr is None:
                continue
            attr = found[0].returns_self_attr
            factory = self._self_factory(qualified, attr)
            is_async = self.opens_session(factory)
            if factory is None or is_async is None:
                return None
            exit_found = self.callable_named(f"{qualified}.{leave}")
            ends = [e for e in (exit_found[0].exit_ends if exit_found is not None else ()) if e.attr == attr]
            done = {e.method for e in ends if e.certain}
            return Scope("class", qualified, is_async, self.expire_on_commit(factory),
                         commits_on_exit="commit" in done, yields="session", factory=factory,
                         rolls_back_on_exit="rollback" in done,
                         closes_on_exit="close" in done and not self._scoped(factory),
                         exit_uncertain=any(not e.certain for e in ends))
        return None

    def _instance_call_scope(self, qualified: str) -> Scope | None:
        """``with self.db_factory() as s`` (``qualified`` is ``<module>.<Class>.db_factory``),
        where the class keeps an instance of a project class there (``self.db_factory =
        Maker()``, or a parameter typed ``Maker``) whose ``__call__`` is a session scope: that
        scope."""
        for mod, local in self._split(qualified):
            owner, _, attr = local.rpartition(".")
            value = self._self_value(mod, owner, attr) if owner else None
            if value is None:
                continue
            cls = self.class_named(value[1])
            if cls is None or self.function(f"{cls}.__call__") is None:
                return None
            return self.scope(f"{cls}.__call__")
        return None

    def class_named(self, qualified: str | None, depth: int = 0) -> str | None:
        """The project class ``qualified`` names, followed through imports and module-level
        aliases (``maker = Maker``), or None when it names no class of the project."""
        if not qualified or depth > 8:
            return None
        if self._class(qualified) is not None:
            return qualified
        for mod, local in self._split(qualified):
            if local in mod.session_types:  # `maker = Maker`: recorded as a candidate name
                return self.class_named(mod.session_types[local], depth + 1)
        return None

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
