"""Middlewares that hand a handler its session through the handler's data (aiogram's shape).

    class DbSession(BaseMiddleware):
        async def __call__(self, handler, event, data):
            async with session_pool() as session:
                data["session"] = session
                return await handler(event, data)

The framework calls each handler through the middleware, with the data's entries as keyword
arguments: a handler's parameter ``session`` is that session, and what the middleware does
with it after ``handler(...)`` returns is what the handler's caller does with it.
"""

from __future__ import annotations

import ast

from . import astutil
from .facts import Injection

# what a middleware may do with the session after the handler and leave no use of a failed
# transaction: end it
_HARMLESS = frozenset({"close", "rollback"})


def injections(fn: ast.AsyncFunctionDef | ast.FunctionDef) -> list[Injection]:
    """The sessions an `async def __call__(self, handler, event, data)` hands on in ``data``
    under a string key, each with what the middleware does with it after the handler returns:
    the methods it calls on it (`commit`), "use" for any other use, and "unknown" when the
    handler is not called inside the `async with` block that opens the session."""
    params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
    if fn.name != "__call__" or not isinstance(fn, ast.AsyncFunctionDef) or len(params) != 4:
        return []
    handler, data = params[1], params[3]
    out: list[Injection] = []
    for node in astutil.walk(fn):
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.value, ast.Name)):
            continue
        target = node.targets[0]
        if not (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) and target.value.id == data
                and isinstance(target.slice, ast.Constant) and isinstance(target.slice.value, str)):
            continue
        name = node.value.id
        block = _opening_block(fn, name)
        after = _after_handler(block, name, handler) if block is not None else None
        out.append(Injection(key=target.slice.value, name=name, after=sorted(after) if after is not None else ["unknown"]))
    return out


def _opening_block(fn: ast.AST, name: str) -> ast.AsyncWith | ast.With | None:
    """The `async with <call> as name:` block of ``fn`` (the only binding of ``name``)."""
    found = [n for n in astutil.walk(fn) if isinstance(n, (ast.AsyncWith, ast.With))
             and any(isinstance(i.optional_vars, ast.Name) and i.optional_vars.id == name
                     and isinstance(i.context_expr, ast.Call) for i in n.items)]
    binds = [n for n in astutil.walk(fn) if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store)]
    return found[0] if len(found) == 1 and len(binds) == 1 else None


def _after_handler(block: ast.AsyncWith | ast.With, name: str, handler: str) -> set[str] | None:
    """What the block does from the statement of its body that awaits the handler on: the
    methods it calls on ``name``, "use" for any other mention of it and for any other call
    (a wrapper's `repo.commit()`, a log line: anything may reach the session); "commit" when
    another item of the `with` begins a transaction (`async with pool() as s, s.begin():`),
    which commits on exit. None when no statement of the block's own body calls the handler."""
    at = next((i for i, stmt in enumerate(block.body) if any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == handler for n in astutil.walk(stmt))),
        None)
    if at is None:
        return None
    found: set[str] = set()
    if any(isinstance(i.context_expr, ast.Call) and isinstance(i.context_expr.func, ast.Attribute)
           and i.context_expr.func.attr == "begin" for i in block.items):
        found.add("commit")
    for stmt in block.body[at:]:
        nodes = astutil.walk(stmt)
        owners = {id(n.value) for n in nodes if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
                  and n.value.id == name}
        for n in nodes:
            if not isinstance(n, ast.Call) or isinstance(n.func, ast.Name) and n.func.id == handler:
                continue
            func = n.func
            found.add(func.attr if isinstance(func, ast.Attribute) and id(func.value) in owners else "use")
        if any(isinstance(n, ast.Name) and n.id == name and id(n) not in owners for n in nodes):
            found.add("use")
    return found - _HARMLESS
