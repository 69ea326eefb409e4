"""Sessions kept in holders (``context["db_session"]``, ``request.state.db``, ``g.db``): which
holders a module's code closes.

A session stored in a holder is owned by whoever reads it back from that holder and closes it:
a middleware's ``finally: request.state.db.close()``, a Flask teardown that pops ``g.db`` and
closes it, a class whose ``close()`` closes ``self.session``. The index keeps, per module, the
holders such code closes, so that a pass can tell a stored session that has an owner from one
that nobody ever closes.
"""

from __future__ import annotations

import ast

from .astutil import const_str, dotted_name, strip_await, walk
from .facts import Holder

# Methods that end what a holder held, called on the value read back.
CLOSERS = {"close", "aclose", "remove", "__exit__", "__aexit__"}
# The owner of a holder that is a function's own `**kwargs` dict (a new dict on every call):
# closing what it holds closes a session handed in by keyword, not what another holder keeps.
KWARGS = "**"
# Words in the name of a function that ends what it is given (`close_session(g.db)`).
CLOSE_WORDS = ("close", "cleanup", "clean_up", "teardown", "release", "dispose", "shutdown", "remove")


def stored_holder(target: ast.AST) -> Holder | None:
    """The holder ``X["key"]`` / ``X.attr`` (``X`` a dotted name) an expression names."""
    if isinstance(target, ast.Subscript):
        base, key = dotted_name(target.value), const_str(target.slice)
    elif isinstance(target, ast.Attribute):
        base, key = dotted_name(target.value), target.attr
    else:
        return None
    return Holder.of(base, key) if base and key else None


def read_back(node: ast.AST) -> Holder | None:
    """The holder an expression reads a value back from: ``X["key"]``, ``X.attr``,
    ``X.get("key")``, ``X.pop("key")``, ``getattr(X, "attr")``."""
    node = strip_await(node)
    found = stored_holder(node)
    if found is not None or not isinstance(node, ast.Call) or not node.args:
        return found
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr in ("get", "pop"):
        base, key = dotted_name(func.value), const_str(node.args[0])
    elif isinstance(func, ast.Name) and func.id == "getattr" and len(node.args) >= 2:
        base, key = dotted_name(node.args[0]), const_str(node.args[1])
    else:
        return None
    return Holder.of(base, key) if base and key else None


def closed_holders(nodes: list[ast.AST]) -> list[Holder]:
    """The holders whose value code among ``nodes`` (a module's, in ``ast.walk``'s order)
    closes: ``X["key"].close()``, ``with X.attr:``, ``db = g.pop("db")`` then ``db.close()``,
    ``close_session(X.attr)``; and those it takes out (``g.pop("db")``: what is taken out is
    the taker's to end). Over-approximate: a name bound to a read-back anywhere in the module
    counts wherever it is closed."""
    bound: dict[str, Holder] = {}
    for node in nodes:
        if isinstance(node, (ast.Assign, ast.NamedExpr)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            holder = read_back(node.value)
            if holder is not None:
                bound.update((t.id, holder) for t in targets if isinstance(t, ast.Name))

    def held(expr: ast.AST) -> Holder | None:
        expr = strip_await(expr)
        if isinstance(expr, ast.Name):
            return bound.get(expr.id)
        return read_back(expr)

    found: list[tuple[Holder | None, ast.AST]] = []
    for node in nodes:
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in CLOSERS:
                found.append((held(func.value), node))
            elif isinstance(func, ast.Attribute) and func.attr == "pop":
                found.append((read_back(node), node))
            name = (dotted_name(func) or "").rsplit(".", 1)[-1].lower()
            if any(word in name for word in CLOSE_WORDS):
                found.extend((held(a), node) for a in node.args)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            found.extend((held(item.context_expr), node) for item in node.items)
    packed = _packed_in(nodes)
    out = {Holder(KWARGS, h.key) if h.owner == packed.get(id(at)) else h for h, at in found if h is not None}
    return sorted(out, key=lambda h: (h.owner, h.key))


def _packed_in(nodes: list[ast.AST]) -> dict[int, str | None]:
    """For each node inside a function that takes ``**kwargs``, that dict's name (a nested
    function sees it too; the innermost one's wins, as ``ast.walk`` meets outer functions
    first)."""
    out: dict[int, str | None] = {}
    for fn in nodes:
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and fn.args.kwarg is not None:
            out.update((id(n), fn.args.kwarg.arg) for n in walk(fn) if n is not fn)
    return out
