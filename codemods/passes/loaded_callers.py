"""SQF006's parameters as the function's callers fill them: a parameter that every project
caller passes an object whose loaded relationships that caller knows (it loaded it with a
project function's query, or reached it through a relationship of such an object) holds, in
the function, what all of them loaded.

The callers are those of this module: direct calls ``f(db, obj)`` and calls through a
module-level table of functions (``HANDLERS[action](db, obj)``, ``HANDLERS.get(action)``,
or a local name bound to one of them), which call each function in the table. Any other use
of the function's name (handed on as a callback, imported by another module) leaves what
its parameters hold unknown, and so does a caller that does not know what it passes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, NamedTuple

from ..lazy import lazy
from . import match as m
from .base import children
from .flow import events, qualname_of
from .loaded_relationships import Given, Holding, held_at

if TYPE_CHECKING:
    import libcst as cst

    from .base import FileContext
else:
    cst = lazy("libcst")


def caller_holdings(ctx: FileContext, qualname: str, fn: cst.FunctionDef) -> dict[str, Holding]:
    """Parameters of the async function ``qualname`` (module level) that every caller fills
    with an object whose loaded relationships it knows: what all of them loaded."""
    mod, facts = ctx.facts, ctx.function_facts(qualname)
    if fn.asynchronous is None or mod is None or facts is None or "." in qualname or not facts.param_reads \
            or fn.decorators:  # a decorator may register it: called by code not in the project
        return {}
    calls = calls_in_module(ctx, qualname, mod.own(qualname))
    if not calls:
        return {}
    out: dict[str, Holding] = {}
    for param in facts.param_reads:
        given: list[Given] = []
        for caller, caller_fn, call, table in calls:
            arg = argument_name(call, [p.name for p in facts.params], param)
            h = held_at(ctx, caller_fn, events(caller_fn, ctx), call, arg) if arg is not None else None
            if h is None or h.many or h.built or h.given_by \
                    or given and given[0].holding.model.qualified != h.model.qualified:
                break
            given.append(Given(caller, ctx.position(call).start.line, h, table))
        else:
            first = given[0].holding
            loaded = frozenset.intersection(*(g.holding.loaded for g in given))
            out[param] = replace(first, loaded=loaded, via=None, path="", given_by=tuple(given), tree=None, options=(),
                                 detached=any(g.holding.detached for g in given))
    return out


def calls_in_module(ctx: FileContext, name: str, qualified: str) -> list[tuple[str, cst.FunctionDef, cst.Call, bool]]:
    """Every call of the module-level function ``name`` in this module, with the function
    making it and whether it goes through a table; empty when the name has another use."""
    mod = ctx.facts
    index = ctx.index
    tables = {t for t, members in mod.function_tables.items() if qualified in members}
    if {f"{mod.module}.{n}" for n in (name, *tables)} & imported_elsewhere(ctx):
        return []  # used elsewhere: callers this module does not see
    refs = references(ctx)
    out: list[tuple[str, cst.FunctionDef, cst.Call, bool]] = []
    sites = {(caller.qualname, site.line) for _m, caller, site in index.call_sites(qualified)
             if _m.path == mod.path and site.table in tables}
    for node, parent, function in refs.get(name, ()):
        if isinstance(parent, cst.FunctionDef) and parent.name is node:
            continue
        if isinstance(parent, (cst.DictElement, cst.Element)) and _in_table(ctx, parent, tables):
            continue
        enclosing = _enclosing(ctx, function)
        if not (isinstance(parent, cst.Call) and parent.func is node) or enclosing is None:
            return []
        out.append((*enclosing, parent, False))
    for table in tables:
        for node, parent, function in refs.get(table, ()):
            if isinstance(parent, cst.AssignTarget) or isinstance(parent, cst.ComparisonTarget):
                continue  # its definition; `action in TABLE`
            enclosing = _enclosing(ctx, function)
            if enclosing is None or not (isinstance(parent, cst.Subscript) and parent.value is node
                                         or isinstance(parent, cst.Attribute) and parent.attr.value == "get"):
                return []
            picked = [c for c in _calls_at(enclosing[1], sites, enclosing[0], ctx)]
            if not picked:
                return []
            out.extend((enclosing[0], enclosing[1], c, True) for c in picked)
    return list({id(c[2]): c for c in out}.values())


def imported_elsewhere(ctx: FileContext) -> set[str]:
    """What the project's other modules import."""
    def compute() -> set[str]:
        mod = ctx.facts
        return {q for other in ctx.index.modules.values() if other.path != mod.path for q in other.imports.values()}

    return ctx.cached("imported-elsewhere", compute)


def _calls_at(fn: cst.FunctionDef, sites: set[tuple[str, int]], qualname: str, ctx: FileContext) -> list[cst.Call]:
    """The calls in ``fn`` the index found going through a table."""
    lines = {line for q, line in sites if q == qualname}
    return [c for c in m.findall(fn.body, m.Call()) if ctx.position(c).start.line in lines]


def _in_table(ctx: FileContext, element: cst.CSTNode, tables: set[str]) -> bool:
    """An element of the value of a module-level ``TABLE = {...}`` among ``tables``."""
    container = ctx.parent(element)
    assign = ctx.parent(container) if container is not None else None
    return isinstance(assign, (cst.Assign, cst.AnnAssign)) and any(
        isinstance(t, cst.Name) and t.value in tables
        for t in ([a.target for a in assign.targets] if isinstance(assign, cst.Assign) else [assign.target]))


def _enclosing(ctx: FileContext, function: cst.FunctionDef | None) -> tuple[str, cst.FunctionDef] | None:
    """The function of :func:`functions` a reference is in (its innermost), with its name."""
    qualname = qualname_of(ctx, function) if function is not None else None
    return (qualname, function) if qualname is not None and function is not None else None


class Reference(NamedTuple):
    """A plain name of the module, where it is."""

    name: cst.Name
    parent: cst.CSTNode
    function: cst.FunctionDef | None  # the innermost function it is in (a `def`'s own name: that one)

    @property
    def defines(self) -> bool:
        """Is it a `def`'s own name?"""
        return isinstance(self.parent, cst.FunctionDef) and self.parent.name is self.name

    @property
    def calls(self) -> bool:
        """Is it what a call calls (`name(...)`)?"""
        return isinstance(self.parent, cst.Call) and self.parent.func is self.name


def references(ctx: FileContext) -> dict[str, list[Reference]]:
    """Every plain name in the module (not an attribute's), by value: one walk per file, over
    the nodes' fields (a libcst visit rebuilds every node: many times slower on a large file),
    which notes each name's parent and function on the way (the module's parent map is not
    made for them)."""
    def compute() -> dict[str, list[Reference]]:
        attrs: set[int] = set()
        found: list[Reference] = []
        stack: list[tuple[cst.CSTNode, cst.CSTNode, cst.FunctionDef | None]] = [(ctx.module, ctx.module, None)]
        while stack:
            node, parent, function = stack.pop()
            if isinstance(node, cst.Name):
                found.append(Reference(node, parent, function))
                continue  # nothing below a name but layout
            if isinstance(node, cst.Attribute):
                attrs.add(id(node.attr))
            inner = node if isinstance(node, cst.FunctionDef) else function
            stack.extend((child, node, inner) for child in children(node))
        out: dict[str, list[Reference]] = {}
        for ref in found:
            if id(ref.name) not in attrs:
                out.setdefault(ref.name.value, []).append(ref)
        return out

    return ctx.cached("name-references", compute)


def argument_name(call: cst.Call, params: list[str], param: str) -> str | None:
    """The local name ``call`` passes as ``param``; None when it passes an expression, or
    passes it through ``*args``/``**kwargs``."""
    positional = 0
    for a in call.args:
        if a.star:
            return None
        if a.keyword is not None:
            if a.keyword.value == param:
                return a.value.value if isinstance(a.value, cst.Name) else None
            continue
        if positional < len(params) and params[positional] == param:
            return a.value.value if isinstance(a.value, cst.Name) else None
        positional += 1
    return None
