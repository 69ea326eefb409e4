"""The attribute paths a function reads of its parameters, deeper than one attribute.

``def repo_urls(job): return [r.url for b in job.project.linked for r in b.repos]`` reads
``job.project.linked.repos.url`` of ``job``: a name bound to part of a parameter (``b`` in
``for b in job.project.linked``, ``p = job.project``) extends the parameter's path, and so
do ``getattr(job, "project")`` and ``hasattr(job, "project")`` (both run the load: the
failure of a lazy load is not an ``AttributeError``). A parameter (or part of it) handed to
another function is a hand-off: what that function reads of it is followed at query time
(:func:`param_paths`), so ``check(product)`` reading ``obj.team.roles`` counts as a read of
``product.team.roles`` where ``product`` is passed on.

A path is written with dots (``project.linked.repos``); whether each step is a relationship,
a column or a method is for the model to say. Names bound more than once are left out (what
they hold is not one path), and so is a parameter the function binds again.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import astutil
from .astutil import dotted_name, source_order
from .facts import HandOff

if TYPE_CHECKING:
    from .facts import Function
    from .queries import ProjectIndex

_DEPTH = 4  # hand-offs followed at most this deep


@dataclass
class ReadPaths:
    paths: dict[str, list[str]] = field(default_factory=dict)  # parameter -> dotted paths read
    handoffs: list[HandOff] = field(default_factory=list)
    # reads that run only for some values of another parameter (see _dispatched)
    guarded: dict[str, list[str]] = field(default_factory=dict)


def read_paths(fn: ast.FunctionDef | ast.AsyncFunctionDef, qualify: Callable[[str], str | None]) -> ReadPaths:
    """What ``fn`` reads of its parameters, as paths, and where it hands them on."""
    args = fn.args
    params = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs if a.arg not in ("self", "cls")]
    body = _walk(fn)
    bound = _bindings(body)
    roots: dict[str, tuple[str, str]] = {p: (p, "") for p in params if bound.get(p, 0) == 0}
    out = ReadPaths()
    # aliases first, in source order: `p = job.project`, `for b in p.linked`
    for node in body:
        target, value = _alias(node)
        if target is None or value is None or bound.get(target, 0) != 1 or target in roots or target in params:
            continue
        chain = _chain(value, roots)
        if chain is not None:
            roots[target] = chain
    seen: set[int] = set()
    dispatched = _dispatched(fn, set(params))
    for node in body:
        into = out.guarded if id(node) in dispatched else out.paths
        if isinstance(node, ast.Attribute) and id(node) not in seen and isinstance(node.ctx, ast.Load):
            outer = node
            for inner in _inner_attributes(node):
                seen.add(id(inner))
            chain = _chain(outer, roots)
            if chain is not None and chain[1]:
                _add(into, chain)
        elif isinstance(node, ast.Call):
            _call(node, roots, out, into, qualify, id(node) in dispatched)
    return out


def _dispatched(fn: ast.FunctionDef | ast.AsyncFunctionDef, params: set[str]) -> set[int]:
    """The nodes that run only for some values of a parameter: under ``if override is not
    None:`` (or ``if not p:``, ``if p == "x":``), and after such an ``if`` that returns or
    raises (``if override is not None: return override``). What the caller passes decides
    whether they run."""
    out: set[int] = set()

    def mark(stmts: list[ast.stmt]) -> None:
        for st in stmts:
            out.update(id(n) for n in astutil.walk(st))

    def block(stmts: list[ast.stmt]) -> None:
        for i, st in enumerate(stmts):
            if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            if isinstance(st, ast.If) and _tests_param(st.test, params):
                mark(st.body + st.orelse)
                if _exits(st.body) or _exits(st.orelse):
                    mark(stmts[i + 1:])
                    return
                continue
            for name in ("body", "orelse", "finalbody"):
                block(getattr(st, name, []))
            for handler in getattr(st, "handlers", []):
                block(handler.body)

    block(fn.body)
    return out


def _tests_param(test: ast.AST, params: set[str]) -> bool:
    """``p``, ``not p``, ``p is None``, ``p == "x"``, or a boolean combination with one."""
    if isinstance(test, ast.Name):
        return test.id in params
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return _tests_param(test.operand, params)
    if isinstance(test, ast.BoolOp):
        return any(_tests_param(v, params) for v in test.values)
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.comparators[0], ast.Constant):
        return _tests_param(test.left, params)
    return False


def _exits(stmts: list[ast.stmt]) -> bool:
    return bool(stmts) and isinstance(stmts[-1], (ast.Return, ast.Raise))


def param_paths(index: ProjectIndex, qualified: str | None, passed: int | str, depth: int = 0,
                seen: frozenset[str] = frozenset()) -> set[str]:
    """The dotted paths the project function ``qualified`` reads of the argument passed at
    ``passed`` (a position, or a keyword), following the functions it hands that argument to.
    Empty when the function is unknown, looks at load state itself, or binds the parameter
    again."""
    from .lookup import param_at

    fn = index.function(qualified) if qualified else None
    if fn is None or qualified in seen or depth > _DEPTH or fn.checks_loads:
        return set()
    name = param_at(fn, passed, bound=False)
    if name is None or name in fn.rebound_params:
        return set()
    return _paths_of(index, fn, name, depth, seen | {qualified or ""})


def _paths_of(index: ProjectIndex, fn: Function, name: str, depth: int, seen: frozenset[str]) -> set[str]:
    """A read that runs only for some values of another parameter counts in the function
    called (its caller's call says nothing of them, as a direct read never did), not in the
    functions it hands the object on to; nor does a hand-off made only for some values."""
    out = set(fn.param_paths.get(name, ()))
    if depth == 0:
        out |= set(fn.param_paths_guarded.get(name, ()))
    for h in fn.param_handoffs:
        if h.param != name or h.guarded:
            continue
        passed: int | str = h.keyword if h.keyword is not None else h.position
        for inner in param_paths(index, h.callee, passed, depth + 1, seen):
            out.add(f"{h.path}.{inner}" if h.path else inner)
    return out


def _add(into: dict[str, list[str]], chain: tuple[str, str]) -> None:
    param, path = chain
    known = into.setdefault(param, [])
    if path not in known:
        known.append(path)


def _call(node: ast.Call, roots: dict[str, tuple[str, str]], out: ReadPaths, into: dict[str, list[str]],
          qualify: Callable[[str], str | None], guarded: bool) -> None:
    func = node.func
    if isinstance(func, ast.Name) and func.id in ("getattr", "hasattr") and len(node.args) >= 2:
        obj, attr = node.args[0], node.args[1]
        chain = _chain(obj, roots)
        if chain is not None and isinstance(attr, ast.Constant) and isinstance(attr.value, str):
            _add(into, (chain[0], f"{chain[1]}.{attr.value}" if chain[1] else attr.value))
        return
    callee = dotted_name(func)
    if callee is None or callee.split(".")[0] in ("self", "cls"):
        return
    qualified = qualify(callee)
    if qualified is None:
        return
    for i, arg in enumerate(node.args):
        if isinstance(arg, ast.Starred):
            return  # positions after it are not known
        chain = _chain(arg, roots)
        if chain is not None:
            out.handoffs.append(HandOff(chain[0], chain[1], qualified, position=i, guarded=guarded))
    for kw in node.keywords:
        chain = _chain(kw.value, roots) if kw.arg is not None else None
        if chain is not None:
            out.handoffs.append(HandOff(chain[0], chain[1], qualified, keyword=kw.arg, guarded=guarded))


def _chain(node: ast.AST, roots: dict[str, tuple[str, str]]) -> tuple[str, str] | None:
    """(parameter, dotted path) that ``node`` reads: ``job.project.linked`` -> ("job", "project.linked")."""
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in roots:
        return None
    param, base = roots[node.id]
    parts = ([base] if base else []) + attrs[::-1]
    if any(p.startswith("__") for p in attrs):
        return None
    return param, ".".join(parts)


def _inner_attributes(node: ast.Attribute):
    value = node.value
    while isinstance(value, ast.Attribute):
        yield value
        value = value.value


def _alias(node: ast.AST) -> tuple[str | None, ast.AST | None]:
    """``x = <value>`` / ``for x in <value>`` / a comprehension's ``for x in <value>``."""
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id, node.value
    if isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)) and isinstance(node.target, ast.Name):
        return node.target.id, node.iter
    return None, None


def _bindings(body: list[ast.AST]) -> dict[str, int]:
    """How many times each name is bound in the body (its nodes, see _walk; parameters
    count 0)."""
    counts: dict[str, int] = {}
    for node in body:
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            counts[node.id] = counts.get(node.id, 0) + 1
    return counts


def _walk(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.AST]:
    """The nodes of the body in source order, nested functions and classes not entered
    (a lambda is: it runs here, or is handed on)."""
    return source_order(list(fn.body), (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
