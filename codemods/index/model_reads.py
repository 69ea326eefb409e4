"""What a model's own code reads of ``self``, and the mapping facts eager loading stops at.

A plain method of a model (``def to_dict(self)``) reads attributes of the instance it is
called on: calling ``obj.to_dict()`` runs those reads. Only the reads made on every call are
kept (those before the first branch, loop, ``try`` or ``return``, and outside lambdas,
conditional expressions, the right side of ``and``/``or`` and the elements of
comprehensions), so a method that reads a relationship only for some values of the object
does not count. A method that looks at load state itself (``inspect(self).unloaded``,
``awaitable_attrs``, ``except MissingGreenlet``) counts as reading nothing.

The index keeps them among the class's properties under the key ``"name()"``: a property
read and a method call are both "reading ``obj.<key>`` reads these attributes", and the
``()`` keeps the two apart.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from ..names import method_key
from . import astutil

if TYPE_CHECKING:
    from .facts import Model
    from .queries import ProjectIndex

# names that say the code looks at, or catches, the load state of the instance
_LOAD_STATE = frozenset({"unloaded", "awaitable_attrs", "MissingGreenlet", "DetachedInstanceError",
                         "object_session", "inspect", "set_committed_value", "attributes"})


def method_reads(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str] | None:
    """The ``self.<attr>`` reads (and ``self.<m>()`` calls, as ``"m()"``) a plain sync method
    makes on every call; None for one that is not such a method or looks at load state."""
    if isinstance(fn, ast.AsyncFunctionDef) or fn.decorator_list or fn.name.startswith("__"):
        return None
    params = fn.args.posonlyargs + fn.args.args
    if not params or params[0].arg != "self":
        return None
    for node in astutil.walk(fn):
        name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
        if name in _LOAD_STATE:
            return None
    reads: list[str] = []
    written: set[str] = set()
    for stmt in fn.body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # the docstring
        if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            if stmt.value is not None:
                _collect(stmt.value, reads, written)
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                for node in astutil.walk(target):
                    if _self_attribute(node):
                        written.add(node.attr)  # type: ignore[attr-defined]
            continue
        if isinstance(stmt, (ast.Expr, ast.Return, ast.Raise, ast.Assert)):
            value = stmt.test if isinstance(stmt, ast.Assert) else stmt.exc if isinstance(stmt, ast.Raise) \
                else stmt.value
            if value is not None:
                _collect(value, reads, written)
            if isinstance(stmt, (ast.Return, ast.Raise)):
                break
            continue
        if isinstance(stmt, (ast.If, ast.While)):
            _collect(stmt.test, reads, written)
        elif isinstance(stmt, ast.For):
            _collect(stmt.iter, reads, written)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Pass, ast.Import,
                               ast.ImportFrom, ast.Global, ast.Nonlocal)):
            continue
        break  # what follows a branch, a loop, a try or a with may not run
    return reads


def _self_attribute(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"


def _collect(node: ast.AST, reads: list[str], written: set[str]) -> None:
    """The reads of ``self`` that evaluating ``node`` always makes."""
    if isinstance(node, ast.Lambda):
        return
    if isinstance(node, ast.IfExp):
        _collect(node.test, reads, written)
        return
    if isinstance(node, ast.BoolOp):
        _collect(node.values[0], reads, written)
        return
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
        _collect(node.generators[0].iter, reads, written)
        return
    if isinstance(node, ast.Call) and _self_attribute(node.func):
        key = method_key(node.func.attr)  # type: ignore[attr-defined]
        if key not in reads:
            reads.append(key)
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            _collect(arg, reads, written)
        return
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr") \
            and len(node.args) >= 2 and isinstance(node.args[0], ast.Name) and node.args[0].id == "self" \
            and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
        _read(node.args[1].value, reads, written)
        return
    if _self_attribute(node):
        _read(node.attr, reads, written)  # type: ignore[attr-defined]
        return
    for child in astutil.children(node):
        _collect(child, reads, written)


def _read(attr: str, reads: list[str], written: set[str]) -> None:
    if attr not in written and attr not in reads:
        reads.append(attr)


def stops_at_cycle(model: Model, rel: str, target: Model | None, on_path: frozenset[str]) -> bool:
    """Does SQLAlchemy skip the eager strategy the mapping gives ``model.rel``
    (``lazy="selectin"``/``"subquery"``) on an instance reached along a loading path whose
    models are ``on_path``? It does when the path already holds the relationship's target
    model and the relationship sets no ``join_depth`` (``Model.shallow``): eager loaders stop
    at a cycle (an ``Agent`` whose ``identities`` load their ``agents``), and a
    self-referential one (``Node.children``) loads nothing by itself. Only collections are
    answered: a many-to-one back to an instance already loaded comes from the identity map,
    with no query."""
    if model.relationships.get(rel) not in ("selectin", "subquery") or rel not in model.collections:
        return False
    if target is None or target.qualified not in on_path:
        return False
    return rel in model.shallow


def eager_anywhere(index: ProjectIndex) -> frozenset[str]:
    """The relationship names an eager loader option of any function of the project names:
    what a query this code does not see may have loaded on an instance."""
    return index.remember(("eager-anywhere",), lambda: frozenset(
        rel for mod in index.modules.values() for fn in mod.functions.values() for rel in fn.eager))
