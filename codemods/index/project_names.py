"""The project's own session-related names, and the bytes that make a file worth parsing
for them (the prefilter's tokens)."""

from __future__ import annotations

import builtins

from .. import names
from ..prefilter import relevance_of
from .facts import (
    Holder,
)
from .holders import KWARGS
from .scopes import ScopeQueries

_BUILTINS = frozenset(dir(builtins))


class NameQueries(ScopeQueries):
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
                         if self.factory(mod.own(n)))
            found.update(mod.aliases)
            for fn in mod.functions.values():
                if "." in fn.qualname:
                    continue
                if fn.session_decorator is not None or any(p.depends for p in fn.params) \
                        or fn.yields_kind == "service" or self._yields_session(mod, fn):
                    found.add(fn.qualname)
                elif (fn.is_generator or fn.returns_class) and any(
                        self.opens_session(o.factory) is not None for o in fn.opened):
                    found.add(fn.qualname)  # a provider, or a function returning what it loaded
                elif fn.returns_instance_of is not None and not fn.is_generator \
                        and self._class_scope(fn.returns_instance_of):
                    found.add(fn.qualname)  # returns a class-based session scope
            for qualname in mod.classes:  # `with UnitOfWork() as session`
                if "." not in qualname and any(f"{qualname}.{m}" in mod.functions for m in ("__enter__", "__aenter__")) \
                        and self._class_scope(mod.own(qualname)):
                    found.add(qualname)
            found.update(self._callable_scopes(mod))
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

    @staticmethod
    def _yields_session(mod, fn) -> bool:
        """Does ``fn`` yield what may be a session? A name bound to a call's result is a
        candidate until the index resolves the call, except a call of a builtin the module does
        not redefine (``batch = tuple(islice(it, n)); yield batch``), which never makes one."""
        prefix = f"{mod.module}." if mod.module else ""

        def builtin(src: str) -> bool:
            local = src[len(prefix):]
            return src.startswith(prefix) and local in _BUILTINS and local not in mod.functions \
                and local not in mod.classes and local not in mod.factories

        return fn.yields_kind == "session" and not (fn.yield_sources and all(map(builtin, fn.yield_sources)))

    def add_moved(self, facts) -> None:
        """Add ``facts``, which differ from the module's known facts only in their ``line``
        fields (an edit that moved code: a line added above). A new state of the index, but
        the project's session-related names read no line: they stay as they were."""
        kept = self._names, self._relevance
        self.add(facts)
        self._names, self._relevance = kept

    def _callable_scopes(self, mod) -> set[str]:
        """Classes of ``mod`` whose instances are called to open a session scope (a
        ``@contextmanager`` ``__call__``), and the module's other names for them (``maker =
        Maker``)."""
        prefix = f"{mod.module}." if mod.module else ""
        found = {qualname for qualname in mod.classes
                 if "." not in qualname and f"{qualname}.__call__" in mod.functions
                 and self.scope(f"{prefix}{qualname}.__call__") is not None}
        return found | {name for name, target in mod.session_types.items() if target in {prefix + c for c in found}}

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

    def relevance(self) -> tuple[bytes, ...]:
        """Bytes that make a file worth parsing: SQLAlchemy's own names and the project's
        session-related names. (A `bytes in` test per token is much faster than one regex
        alternation of them.)"""
        if self._relevance is None:
            self._relevance = relevance_of(self.names())
        return self._relevance


def _holder_tokens(holder: Holder) -> tuple[str, ...]:
    """What a file that may read ``holder`` back mentions, under any holder's name as
    :meth:`ProjectIndex.holder_closed` matches: its key; a short key (a common word, ``db``)
    as an attribute or quoted (``req.db``, ``g.pop("db")``)."""
    if len(holder.key) >= 4:
        return (holder.key,)
    return (f".{holder.key}", f'"{holder.key}"', f"'{holder.key}'")
