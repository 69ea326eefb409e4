"""Call sites of project functions across modules."""

from __future__ import annotations

from .facts import (
    CallSite,
    Function,
    ModuleFacts,
)
from .lookup import IndexLookup


class CallerQueries(IndexLookup):
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

    def binds_self(self, site: CallSite) -> bool:
        """Does the call ``site`` of a method (one of :meth:`call_sites` or
        :meth:`receiver_call_sites`) fill its first parameter with the object it is called
        on? `self.save(db, x)` and `repo.save(db, x)` (a local holding an instance) do; a call
        that names the method by its qualified name (`Repo.save(repo, db, x)`) does not: see
        :func:`lookup.positional_params`."""
        return self.function(site.callee) is None

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
            found = self.callable_named(f"{mod.module}.{fn.qualname.rsplit('.', 1)[0]}.{site.callee[5:]}")
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
