"""Facts about one function body: the sessions it opens, what it yields or returns, its calls.

:class:`FunctionBody` walks the body once; its methods are grouped by topic, one layer each
(mixins, each inheriting the layers whose methods it calls, as the index's queries are):
:mod:`.body_state` (the fields and the walk), :mod:`.body_ends` (commits, rollbacks, closes),
:mod:`.body_opens` (sessions opened, ``with`` blocks), :mod:`.body_binds` (what names hold),
:mod:`.body_returns` (yields and returns), :mod:`.body_calls` (calls, stores, reads)."""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from .astutil import children
from .body_calls import Calls
from .body_returns import Returns

_METHODS: dict[tuple[type, type], Callable[..., Any]] = {}


class FunctionBody(Returns, Calls):
    """Facts about one function body (nested functions and classes are not entered)."""

    # ast.NodeVisitor's visit and generic_visit: the same calls in the same order, the method
    # of each node type looked up once rather than by name for every node.
    def visit(self, node: ast.AST) -> Any:
        key = (type(self), type(node))
        method = _METHODS.get(key)
        if method is None:
            method = _METHODS[key] = getattr(type(self), f"visit_{type(node).__name__}", None) or FunctionBody.generic_visit
        return method(self, node)

    def generic_visit(self, node: ast.AST) -> None:
        for child in children(node):
            self.visit(child)

    def visit_FunctionDef(self, node: ast.AST) -> None:  # nested: not ours
        self.has_nested = True

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_ClassDef = visit_FunctionDef
    visit_Lambda = visit_FunctionDef
