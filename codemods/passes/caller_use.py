"""After a call: does a caller go on using the session it handed a function?

A function that swallows a failed commit of a session it was given leaves that session needing
a rollback; whether that bites depends on its callers. When the callers are all known (a
module-level function only this module calls), each one's body says: a use of the same session
after the call, the call inside a loop that comes round with the same session, or a caller that
got the session from elsewhere and whose own holder goes on with it (a caller of its own, a
FastAPI provider or a scope that commits on exit). A handler no project code calls, whose
session parameter a middleware hands in through the handler's data (aiogram's shape, see
:mod:`..index.middlewares`), has that middleware for its caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..lazy import lazy
from .expiry_paths import may_follow
from .flow import EventKind, Held, SessionRef, events, function_named, held, sessions
from .helpers import function_facts, param_facts, with_binds, with_item_callee
from .loaded_callers import argument_name, calls_in_module

if TYPE_CHECKING:
    import libcst as cst

    from .base import FileContext
    from .flow import Event
else:
    cst = lazy("libcst")

_DEPTH = 2  # callers of callers followed
# Session methods that end a failed transaction, and those that do not need a usable one.
RESETS = {"rollback", "close", "invalidate", "reset"}
NEUTRAL = {"add", "add_all", "delete", "expunge", "expunge_all", "expire", "expire_all", "in_transaction",
           "is_modified", "begin_nested"}


@dataclass(frozen=True)
class GoesOn:
    """A caller that goes on using the session: ``where`` names it (`caller()` (path:line)),
    None when no project caller is known or one cannot be read (code outside the project may
    go on with it)."""

    where: str | None


def caller_goes_on(ctx: FileContext, qualname: str, S: str, depth: int = 0) -> GoesOn | None:
    """For the session parameter ``S`` of the function ``qualname``: the first caller that
    goes on using the session it passed after the call, or None when every caller is known
    and none does. The callers are known only for a module-level function that no other
    module imports and that this module only calls (see :mod:`.loaded_callers`)."""
    mod = ctx.facts
    node = function_named(ctx, qualname)
    if mod is None or node is None or "." in qualname or depth > _DEPTH:
        return GoesOn(None)
    qualified = mod.own(qualname)
    calls = calls_in_module(ctx, qualname, qualified)
    if not calls and node.asynchronous is not None and not ctx.index.call_sites(qualified) \
            and any(p.name.value == S for p in (*node.params.params, *node.params.kwonly_params)) \
            and _registered_handler(ctx, node):
        middlewares = ctx.index.middleware_sessions(S)
        if middlewares:  # a handler the framework calls through them, with their session
            going = next((m for m, after in middlewares if after), None)
            if going is None:
                return None  # each ends the session when the handler returns
            # named when it hands the session to this function; further up, the handler is
            return GoesOn(None if depth else f"`{going.rsplit('.', 2)[-2]}`, the middleware that hands it in,")
    if node.decorators or not calls:
        return GoesOn(None)
    params = [p.name.value for p in node.params.params]
    for caller_qualname, caller, call, _table in calls:
        name = argument_name(call, params, S)
        if name is None:
            return GoesOn(None)  # an expression we cannot follow
        use = _uses_after(ctx, caller, caller_qualname, name, call, depth)
        if use is not None:
            line = ctx.position(call).start.line
            return GoesOn(use.where or f"`{caller_qualname.rsplit('.', 1)[-1]}()` (line {line})")
    return None


def _registered_handler(ctx: FileContext, node: cst.FunctionDef) -> bool:
    """Is ``node`` registered as a handler, the way a bot's router takes one: decorated by a
    call on an object (`@router.message(...)`, `@dp.callback_query(F.data == "buy")`), or
    handed, and only handed, to a `register()` call (`router.message.register(start)`)? Code
    that hands it elsewhere (a scheduler's `add_job(cleanup, kwargs=...)`) passes its own
    arguments."""
    from .loaded_callers import references

    if node.decorators:
        return all(isinstance(d.decorator, cst.Call) and isinstance(d.decorator.func, cst.Attribute)
                   for d in node.decorators)
    handed = [r for r in references(ctx).get(node.name.value, ()) if not r.defines]
    return bool(handed) and all(isinstance(r.parent, cst.Arg) and isinstance(call := ctx.parent(r.parent), cst.Call)
                                and isinstance(call.func, cst.Attribute) and call.func.attr.value == "register"
                                for r in handed)


def _uses_after(ctx: FileContext, fn: cst.FunctionDef, qualname: str, name: str, call: cst.Call,
                depth: int) -> GoesOn | None:
    evs = events(fn, ctx)
    at = next((e for e in evs if e.kind == EventKind.USE and e.name == name and e.value is call), None)
    if at is None:
        return GoesOn(None)  # not a use the walk knows: assume the worst
    for ev in evs[at.index + 1:]:
        if _uses(ev, name) and may_follow(at, ev):
            return GoesOn(None)
    if _loop_reusing(evs, at.path, name) is not None:
        return GoesOn(None)  # the loop's next round calls again with the same session
    refs = sessions(ctx, fn, qualname, evs)
    holder = held(ctx, qualname, name, refs)
    if holder is Held.CALLER and "." not in name:
        return caller_goes_on(ctx, qualname, name, depth + 1)
    ref = refs.get(name)
    if holder is Held.PROVIDER:
        return GoesOn(None) if provider_commits(ctx, qualname, name, ref) else None
    if holder is Held.HERE:
        return GoesOn(None) if ref is not None and commits_after_yield(ctx, ref) else None
    return GoesOn(None)  # a registry's session, or one we cannot place: other code may use it


def provider_commits(ctx: FileContext, qualname: str, S: str, ref: SessionRef | None) -> bool:
    """Does the FastAPI provider of the parameter ``S`` commit after its yield, or the session
    decorator's wrapper after the call? (One that only closes the session ends the failed
    transaction quietly.)"""
    if ref is not None and ref.decorated:
        return ref.commits_on_exit
    param = param_facts(function_facts(ctx, qualname), S)
    dep = ctx.index.param_dependency(param)[0] if param is not None else None
    provider = ctx.index.function(ctx.index.session_provider(dep)) if dep else None
    return provider is not None and provider.commits_after_yield


def commits_after_yield(ctx: FileContext, ref: SessionRef) -> bool:
    """Is the session's scope a context manager that calls `commit()` after its yield? (A
    `begin()` block ends a failed transaction quietly; an explicit commit raises.)"""
    if ref.block is None or not ref.commits_on_exit:
        return False
    for item in ref.block.items:
        callee = with_item_callee(item)
        fn = ctx.index.function(ctx.qualify(callee)) if callee else None
        if fn is not None and fn.commits_after_yield and with_binds(item, dotted_target=True) == ref.name:
            return True
    return False


def _uses(ev: Event, name: str) -> bool:
    """A use of the session ``name`` that needs its transaction: one of its methods (not an
    end nor a neutral one), or the session handed to another call."""
    if ev.kind == EventKind.CALL and ev.owner == name:
        return ev.name not in RESETS and ev.name not in NEUTRAL
    return ev.kind == EventKind.USE and ev.name == name


def _loop_reusing(evs: list[Event], path: tuple[cst.CSTNode, ...], name: str) -> cst.CSTNode | None:
    """The innermost loop of ``path`` (an event's) that comes round to it with the same
    session ``name``: none that binds the name again in its body (`name = maker()`, `with
    maker() as name:`)."""
    for loop in reversed(path):
        if isinstance(loop, (cst.For, cst.While)):
            return None if bound_in(evs, name, loop) else loop
    return None


def bound_in(evs: list[Event], name: str, block: cst.CSTNode) -> bool:
    """Does ``block`` bind ``name`` (an assignment, or a with-item's `as name`)?"""
    for e in evs:
        if not any(n is block for n in e.path):
            continue
        if e.kind == EventKind.ASSIGN and e.name == name:
            return True
        if e.kind == EventKind.WITH and any(with_binds(item) == name
                                             for item in e.node.items):  # type: ignore[attr-defined]
            return True
    return False
