"""Module-wide shapes, read in one walk of the whole module: its containers, its tables of
functions, the methods and names it calls, what its with-statements open, the databases its
strings name, whether it has async code."""

from __future__ import annotations

import ast

from ..names import ADVANCE, BARE_EXCEPT, NAMED_ATTRIBUTE, WITH_VALUE
from . import astutil
from .aborts import AUTOCOMMIT, database_named
from .astutil import (
    dotted_name,
    strip_await,
)
from .facts import ModuleFacts

CONTAINER_CALLS = {"dict", "list", "set", "OrderedDict", "defaultdict", "WeakValueDictionary", "TTLCache", "LRUCache"}


def _is_container(value: ast.AST | None) -> bool:
    if isinstance(value, (ast.Dict, ast.List, ast.Set)):
        return True
    if isinstance(value, ast.Call):
        return (dotted_name(value.func) or "").rsplit(".", 1)[-1] in CONTAINER_CALLS
    return False


def _containers(body: list[ast.stmt], prefix: str, out: set[str]) -> None:
    for stmt in body:
        if isinstance(stmt, ast.Assign) and _is_container(stmt.value):
            out.update(prefix + t.id for t in stmt.targets if isinstance(t, ast.Name))
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and _is_container(stmt.value):
            out.add(prefix + stmt.target.id)
        elif isinstance(stmt, ast.ClassDef) and not prefix:
            _containers(stmt.body, stmt.name + ".", out)


def _function_tables(tree: ast.Module, facts: ModuleFacts) -> None:
    """Module-level ``NAME = {key: function, ...}`` (or a list or tuple of functions): every
    value a plain name, bound once. What those names are is decided at query time."""
    bound: dict[str, int] = {}
    for stmt in tree.body:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] \
            if isinstance(stmt, (ast.AnnAssign, ast.AugAssign)) else []
        for target in targets:
            if isinstance(target, ast.Name):
                bound[target.id] = bound.get(target.id, 0) + 1
        value = getattr(stmt, "value", None)
        members = value.values if isinstance(value, ast.Dict) else value.elts \
            if isinstance(value, (ast.List, ast.Tuple)) else None
        if not members or len(targets) != 1 or not isinstance(targets[0], ast.Name) \
                or not all(isinstance(v, (ast.Name, ast.Attribute)) for v in members) \
                or isinstance(value, ast.Dict) and None in value.keys:
            continue
        qualified = [facts.qualify(dotted_name(v)) for v in members]
        facts.function_tables[targets[0].id] = sorted({q for q in qualified if q})
    for name, times in bound.items():
        if times > 1:
            facts.function_tables.pop(name, None)


def _aggregate(tree: ast.Module, nodes: list[ast.AST], facts: ModuleFacts) -> None:
    """Module-wide shapes, over-approximate: every call and with-item anywhere (``nodes``:
    every node of ``tree``)."""
    _containers(tree.body, "", facts.containers)
    for node in nodes:
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute):
                facts.all_methods.add(node.func.attr)
                dotted = dotted_name(node.func)
                head = dotted.split(".", 1)[0] if dotted is not None else None
                if (head in facts.imports or head in facts.classes) and (qualified := facts.qualify(dotted)):
                    facts.qualified_calls.add(qualified)
            elif isinstance(node.func, ast.Name):
                facts.all_called.add(node.func.id)
                if node.func.id in NAMED_ATTRIBUTE and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) \
                        and isinstance(node.args[1].value, str):
                    facts.all_attributes.add(node.args[1].value)
                if qualified := facts.qualify(node.func.id):  # (not `cls(...)`)
                    facts.qualified_calls.add(qualified)
                if node.func.id in ADVANCE and node.args and isinstance(node.args[0], ast.Call):
                    advanced = facts.qualify(dotted_name(node.args[0].func))
                    if advanced is not None:
                        facts.advanced_calls.add(advanced)
        elif isinstance(node, ast.Attribute):
            facts.all_attributes.add(node.attr)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                expr = strip_await(item.context_expr)
                if isinstance(expr, ast.Call):
                    func = expr.func.value if isinstance(expr.func, ast.Attribute) and expr.func.attr == "begin" else expr.func
                    callee = dotted_name(func)
                    if callee is not None:
                        facts.all_with_callees.add(facts.qualify(callee) or callee)
                elif dotted_name(expr) is not None:
                    facts.all_with_callees.add(WITH_VALUE + (dotted_name(expr) or ""))
        elif isinstance(node, ast.ExceptHandler):
            facts.all_caught.update(caught_names(node))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) < 2048:
            database = database_named(node.value)
            if database is not None:
                facts.databases.add(database)
            facts.autocommit = facts.autocommit or node.value == AUTOCOMMIT
        if isinstance(node, (ast.AsyncFunctionDef, ast.Await, ast.AsyncWith, ast.AsyncFor)):
            facts.has_async = True
    _self_with_callees(tree.body, "", facts)


def caught_names(handler: ast.ExceptHandler) -> list[str]:
    """The last names of the classes ``handler`` catches (``except (exc.IntegrityError,
    ValueError)``: IntegrityError, ValueError); [BARE_EXCEPT] for ``except:``."""
    if handler.type is None:
        return [BARE_EXCEPT]
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return [name.rsplit(".", 1)[-1] for kind in kinds if (name := dotted_name(kind)) is not None]


def _self_with_callees(body: list[ast.stmt], prefix: str, facts: ModuleFacts) -> None:
    """``with self.<attr>() as s`` in a method of a class: the callee is what the class keeps
    in that attribute, ``<module>.<Class>.<attr>`` (as the function's own facts name it)."""
    for stmt in body:
        if not isinstance(stmt, ast.ClassDef):
            continue
        local = prefix + stmt.name
        _self_with_callees(stmt.body, local + ".", facts)
        for node in astutil.walk(stmt):
            if not isinstance(node, (ast.With, ast.AsyncWith)):
                continue
            for item in node.items:
                expr = strip_await(item.context_expr)
                callee = dotted_name(expr.func) if isinstance(expr, ast.Call) else None
                if callee is not None and callee.startswith("self.") and callee.count(".") == 2 \
                        and callee.endswith(".begin"):
                    callee = callee[: -len(".begin")]  # `with self.maker.begin() as s:`: the factory's
                if callee is not None and callee.startswith("self.") and callee.count(".") == 1:
                    name = f"{local}.{callee[5:]}"
                    facts.all_with_callees.add(facts.own(name))
