"""Every use of one name in a function body, in the order they run.

:func:`uses` lists the loads and stores of a name (``user``) with their paths (as
:func:`flow.events` gives them: enclosing blocks and statements), telling an attribute write
(``user.name = ...``) and the argument of a ``merge()`` call from other loads, and which uses
sit in a nested function, lambda or comprehension. Scopes that bind a variable of that name
of their own are skipped. SQF008 follows a merged name with it, SQF012 a detached one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from ..lazy import lazy
from . import match as m
from .helpers import dotted

if TYPE_CHECKING:
    import libcst as cst
    _VisitorBase = cst.CSTVisitor
else:
    cst = lazy("libcst")
    _VisitorBase = object


@dataclass
class Use:
    node: cst.Name
    path: tuple[cst.CSTNode, ...]  # as an event's: enclosing blocks and statements
    store: bool  # binds the name (in the function's own scope)
    merged: bool = False  # the argument of another `X.merge(name)`: that call carries the state
    write: bool = False  # `name.attr = ...`, `name.attr += ...`, `del name.attr`
    nested: bool = False  # in a nested function, lambda, class or comprehension
    handed: bool = False  # the object itself given away: returned, stored on another object,
    # passed to a constructor or to add()/append() (where a relationship may attach it)
    returned: bool = False


# Calls that may attach what they are given to a session: `session.add(x)`, a relationship
# collection's `append(x)` (constructors, `Model(rel=x)`, are recognised by their capital).
HANDING = {"add", "add_all", "append", "extend"}


def bound_names(target: cst.CSTNode, name: str) -> Iterator[cst.Name]:
    """The Names a target binds (``x``, ``x, y``, ``*x``); ``x.attr`` and ``x[k]`` bind none."""
    if isinstance(target, cst.Name):
        if target.value == name:
            yield target
    elif isinstance(target, (cst.Tuple, cst.List)):
        for el in target.elements:
            yield from bound_names(el.value, name)
    elif isinstance(target, cst.StarredElement):
        yield from bound_names(target.value, name)


def _binds(node: cst.CSTNode, name: str) -> bool:
    """Does a nested function, lambda or comprehension bind ``name`` of its own?"""
    if isinstance(node, (cst.FunctionDef, cst.Lambda)):
        return any(p.name.value == name for p in m.findall(node.params, m.Param()))  # type: ignore[attr-defined]
    for_ = getattr(node, "for_in", None)
    while for_ is not None:
        if any(bound_names(for_.target, name)):
            return True
        for_ = for_.inner_for_in
    return False


class _UseCollector(_VisitorBase):
    """Loads and stores of one name in a function body, in the order they run."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.path: list[cst.CSTNode] = []
        self.out: list[Use] = []
        self.stores: set[int] = set()
        self.skipped: set[int] = set()  # scopes with a variable of that name of their own
        self.attr_stores: set[int] = set()  # assignment targets (attributes among them)
        self.handed: set[int] = set()  # Names given away as they are (see Use.handed)
        self.returned: set[int] = set()
        self.depth = 0

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, _scopes()):
            if _binds(node, self.name):
                self.skipped.add(id(node))
                return False
            self.depth += 1
        if isinstance(node, (cst.IndentedBlock, cst.BaseStatement)):
            self.path.append(node)
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        if id(original_node) in self.skipped:
            return
        super().on_leave(original_node)
        if isinstance(original_node, _scopes()):
            self.depth -= 1
        if isinstance(original_node, (cst.IndentedBlock, cst.BaseStatement)):
            self.path.pop()

    def _targets(self, target: cst.CSTNode) -> None:
        for found in bound_names(target, self.name):
            self.stores.add(id(found))

    def _store(self, target: cst.CSTNode) -> None:
        if self.depth:
            return  # a local of the nested scope
        for found in bound_names(target, self.name):
            self.out.append(Use(found, tuple(self.path), store=True))

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._targets(node.target)
        self.attr_stores.add(id(node.target))

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self.attr_stores.add(id(node.target))

    def leave_Assign(self, original_node: cst.Assign) -> None:
        for t in original_node.targets:
            self._store(t.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._targets(node.target)
            self.attr_stores.add(id(node.target))

    def leave_AnnAssign(self, original_node: cst.AnnAssign) -> None:
        if original_node.value is not None:
            self._store(original_node.target)

    def visit_For(self, node: cst.For) -> None:
        self._targets(node.target)

    def visit_For_body(self, node: cst.For) -> None:
        self._store(node.target)

    def visit_AsName(self, node: cst.AsName) -> None:
        self._targets(node.name)
        self._store(node.name)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._targets(node.target)

    def leave_NamedExpr(self, original_node: cst.NamedExpr) -> None:
        self._store(original_node.target)

    def visit_Del(self, node: cst.Del) -> None:
        self._targets(node.target)
        self.attr_stores.add(id(node.target))
        self._store(node.target)

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        start = len(self.out)
        node.value.visit(self)  # the attribute's own name is not a use of the variable
        for use in self.out[start:]:
            use.write = use.node is node.value and id(node) in self.attr_stores
        return False

    def visit_Arg(self, node: cst.Arg) -> bool:
        node.value.visit(self)  # neither is a keyword's name
        return False

    def visit_Name(self, node: cst.Name) -> None:
        if id(node) not in self.stores and node.value == self.name:
            self.out.append(Use(node, tuple(self.path), store=False, nested=self.depth > 0,
                                handed=id(node) in self.handed, returned=id(node) in self.returned))

    def _hand(self, value: cst.BaseExpression | None, returned: bool = False) -> None:
        """The names ``value`` gives away as they are (``x``, ``x, y``)."""
        items = [el.value for el in value.elements] if isinstance(value, (cst.Tuple, cst.List)) else [value]
        for item in items:
            if isinstance(item, cst.Name):
                self.handed.add(id(item))
                if returned:
                    self.returned.add(id(item))

    def visit_Return(self, node: cst.Return) -> None:
        if not self.depth:
            self._hand(node.value, returned=True)

    def visit_Yield(self, node: cst.Yield) -> None:
        if not self.depth and isinstance(node.value, cst.BaseExpression):
            self._hand(node.value, returned=True)

    def visit_Assign(self, node: cst.Assign) -> None:
        if any(isinstance(t.target, (cst.Attribute, cst.Subscript)) for t in node.targets):
            self._hand(node.value)  # `other.rel = name`, `cache[k] = name`

    def visit_Call(self, node: cst.Call) -> bool:
        last = (dotted(node.func) or "").rsplit(".", 1)[-1]
        if last[:1].isupper() or last in HANDING:
            for arg in node.args:
                self._hand(arg.value)
        if not (isinstance(node.func, cst.Attribute) and node.func.attr.value == "merge" and node.args):
            return True
        start = len(self.out)
        for arg in node.args:
            arg.value.visit(self)
        for use in self.out[start:]:
            use.merged = use.node is node.args[0].value
        node.func.visit(self)
        return False


def uses(fn: cst.FunctionDef, name: str) -> list[Use]:
    """The loads and stores of ``name`` in ``fn``'s body, in the order they run."""
    collector = _use_collector_type()(name)
    if isinstance(fn.body, cst.IndentedBlock):
        fn.body.visit(collector)
    return collector.out


@cache
def _scopes() -> tuple[type, ...]:
    """Nodes whose names are their own (a function, a comprehension, a class)."""
    return (cst.FunctionDef, cst.Lambda, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp, cst.ClassDef)


@cache
def _use_collector_type() -> type:
    """The collector with its libcst base class, made on first use (importing the pass does not
    import libcst)."""
    return type("UseCollector", (_UseCollector, cst.CSTVisitor), {})
