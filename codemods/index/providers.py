"""FastAPI dependencies: which providers give a session, which sessions a dependency's value
may belong to, and what a function reads of an argument."""

from __future__ import annotations

from .facts import (
    Param,
    SessionOrigin,
)
from .lookup import param_at
from .sessions import SessionQueries


class ProviderQueries(SessionQueries):
    def param_dependency(self, param: Param) -> tuple[str | None, bool]:
        if param.depends:
            return param.depends, param.use_cache
        alias = self.alias(param.alias) if param.alias else None
        if alias is not None:
            return alias.depends, alias.use_cache
        return None, True

    def middleware_sessions(self, key: str) -> list[tuple[str, list[str]]]:
        """The middlewares that hand their handlers a session they open under ``key`` (see
        :mod:`.middlewares`): each `__call__`'s qualified name, and what it does with the
        session after the handler returns ("commit" too for a `begin()` block, which commits
        on exit)."""
        def compute() -> dict[str, list[tuple[str, list[str]]]]:
            out: dict[str, list[tuple[str, list[str]]]] = {}
            for mod in self.modules.values():
                for fn in mod.functions.values():
                    for inj in fn.injects:
                        opened = next((o for o in fn.opened if o.name == inj.name), None)
                        if opened is None or self.opens_session(opened.factory) is None:
                            continue
                        after = sorted({*inj.after, "commit"}) if opened.begin else inj.after
                        out.setdefault(inj.key, []).append((f"{mod.module}.{fn.qualname}", after))
            return out

        return self.remember(("middleware-sessions",), compute).get(key, [])

    def param_reads(self, qualified: str | None, passed: int | str) -> list[str]:
        """The attributes the project function ``qualified`` reads of the argument passed at
        ``passed`` (a position or a keyword), as its body reads them directly."""
        found = self.callable_named(qualified) if qualified else None
        if found is None:
            return []
        name = param_at(found[0], passed, bound=False)
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
            self._defined = {id(f): m.own(q)
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
