"""SQF010's parameters as the function's callers fill them: an untyped parameter every project
call site hands a session it opened is that session; a parameter every call site hands a list
loaded through the session it passes alongside is a collection of that session's instances."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy
from .expiry_state import Tracked
from .flow import SessionRef

if TYPE_CHECKING:
    from .. import index as index_mod
    from ..index import CallSite, Function, ModuleFacts, lookup
    from .base import FileContext
else:
    index_mod = lazy("codemods.index")
    lookup = lazy("codemods.index.lookup")


def call_sites_of(ctx: FileContext, qualname: str) -> list[tuple[ModuleFacts, Function, CallSite]]:
    mod = ctx.facts
    if mod is None or ctx.index is None:
        return []
    qualified = mod.own(qualname)
    return ctx.cached(("call-sites", qualified), lambda: ctx.index.call_sites(qualified))


def caller_sessions(ctx: FileContext, qualname: str) -> dict[str, SessionRef]:
    """Untyped parameters that every project call site (there is at least one) fills with an
    async session it opened itself: that session, expiring on commit when every one does."""
    fn = ctx.function_facts(qualname)
    sites = call_sites_of(ctx, qualname) if fn is not None else []
    out: dict[str, SessionRef] = {}
    if not sites:
        return out
    index = ctx.index
    for p in fn.params:  # type: ignore[union-attr]
        if p.annotation is not None or p.depends is not None or p.name in ("self", "cls"):
            continue
        expires: list[bool] = []
        for _mod, caller, site in sites:
            origin, name = lookup.argument_for(fn, site, p.name, bound=index.binds_self(site))  # type: ignore[arg-type]
            opened = next((o for o in caller.opened if o.name == name), None) if origin is not None else None
            if origin is None or origin.kind != "session" or opened is None \
                    or index.opens_session(opened.factory) is not True:
                break
            expires.append(index.expire_on_commit(opened.factory, opened.expire_on_commit))
        else:
            out[p.name] = SessionRef(p.name, True, all(expires))
    return out


def caller_collections(ctx: FileContext, qualname: str, S: str) -> dict[str, Tracked]:
    """Parameters that every project call site fills with a list of instances of one model,
    loaded (by a project function) through the session it passes as ``S``."""
    fn = ctx.function_facts(qualname)
    sites = call_sites_of(ctx, qualname) if fn is not None else []
    out: dict[str, Tracked] = {}
    if not sites:
        return out
    index = ctx.index
    for p in fn.params:  # type: ignore[union-attr]
        if p.name in ("self", "cls", S):
            continue
        found: Tracked | None = None
        for _mod, _caller, site in sites:
            bound = index.binds_self(site)
            origin, _ = lookup.argument_for(fn, site, p.name, bound=bound)  # type: ignore[arg-type]
            _, session_name = lookup.argument_for(fn, site, S, bound=bound)  # type: ignore[arg-type]
            returned = index.returned(origin.callee) if origin is not None and origin.kind == "loaded" \
                and origin.via == session_name and session_name else None
            if returned is None or returned.shape is not index_mod.Stage.LIST \
                    or found is not None and found.model.qualified != returned.model.qualified:
                found = None
                break
            eager = frozenset(returned.function.eager)  # loaded eagerly by every caller's load
            found = Tracked(returned.model, None, False, new_in_tx=False,
                            eager=eager & found.eager if found is not None else eager)
        if found is not None:
            out[p.name] = found
    return out
