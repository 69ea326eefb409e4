"""Class-based context managers: what a function returning one hands out, what the class's
``__exit__``/``__aexit__`` does to the session it holds on ``self``, and the class a typed
name stands for (``database: Union[Engine, Callable[[], Engine]]``).

Read from the standard library's ``ast`` at extraction time; whether the class really holds a
session is asked of the index at query time (see ``ProjectIndex.scope``).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from . import astutil
from .astutil import dotted_name, strip_await, unquoted
from .facts import SelfEnd


class ExitEnd(str, Enum):
    """What an exit method does to a session it holds."""

    COMMIT = "commit"
    ROLLBACK = "rollback"
    CLOSE = "close"


# `self.session.close()`; `await self.session.__aexit__(...)` closes an AsyncSession too
_END_METHODS = {"commit": ExitEnd.COMMIT, "rollback": ExitEnd.ROLLBACK, "close": ExitEnd.CLOSE,
                "__exit__": ExitEnd.CLOSE, "__aexit__": ExitEnd.CLOSE}
EXIT_METHODS = ("__exit__", "__aexit__")


def returned_class(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[str, ast.ClassDef | None] | None:
    """``(name as written, the class statement when ``fn`` defines it)`` when every ``return``
    of ``fn`` with a value builds an instance of one class, spelled the same each time:
    ``class TxContext: ...; return TxContext()``, or ``return UnitOfWork(engine)`` of a class
    defined elsewhere (whether that name is a class is decided at query time). None for a
    generator, a function returning anything else on some path, or returning nothing."""
    defined = {s.name: s for s in fn.body if isinstance(s, ast.ClassDef)}
    built: set[str] = set()
    for node in _own_nodes(fn):
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            return None
        if not isinstance(node, ast.Return) or node.value is None:
            continue
        value = node.value
        name = dotted_name(value.func) if isinstance(value, ast.Call) else None
        if name is None or not name.rsplit(".", 1)[-1][:1].isupper():
            return None
        built.add(name)
    if len(built) != 1:
        return None
    (name,) = built
    return name, defined.get(name)


def _own_nodes(fn: ast.AST):
    """The nodes of ``fn``'s body, not those of the functions, lambdas and classes in it."""
    stack = list(astutil.children(fn))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            stack.extend(astutil.children(node))


def exit_ends(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[SelfEnd]:
    """What an ``__exit__``/``__aexit__`` does to ``self.<attr>`` when the block ended without
    an error (the path the code after the block runs on): a commit, a rollback or a close,
    ``certain`` when it happens on every such path. The branch taken on an error (``if
    exc_type:``'s body, ``if exc_type is None:``'s else) is skipped; any other condition, or an
    early ``return`` under one (``if not self.owner: return``), makes what follows uncertain."""
    params = [a.arg for a in fn.args.posonlyargs + fn.args.args][1:]  # exc_type, exc, traceback
    out: list[SelfEnd] = []
    _walk_exit(fn.body, True, set(params), out)
    return out


def _walk_exit(stmts: list[ast.stmt], certain: bool, exc: set[str], out: list[SelfEnd]) -> bool:
    """Walk ``stmts`` on the no-error path; returns whether what follows them is still certain
    (False after a branch that may return)."""
    for stmt in stmts:
        if isinstance(stmt, ast.Return):
            for node in astutil.walk(stmt):  # `return await self.session.__aexit__(*exc)`
                _note(node, certain, out)
            return False  # nothing after it runs
        if isinstance(stmt, ast.If):
            error = _error_test(stmt.test, exc)
            if error is True:  # `if exc_type:` -> the no-error path is the else
                certain = _walk_exit(stmt.orelse, certain, exc, out) and certain
                continue
            if error is False:  # `if exc_type is None:`
                certain = _walk_exit(stmt.body, certain, exc, out) and certain
                continue
            _walk_exit(stmt.body, False, exc, out)
            _walk_exit(stmt.orelse, False, exc, out)
            if _may_leave(stmt):
                certain = False
            continue
        if isinstance(stmt, (ast.Try, getattr(ast, "TryStar", ast.Try))):
            body = _walk_exit(stmt.body, certain, exc, out) and certain  # type: ignore[attr-defined]
            for handler in stmt.handlers:  # type: ignore[attr-defined]
                _walk_exit(handler.body, False, exc, out)
            body = _walk_exit(stmt.orelse, body, exc, out) and body  # type: ignore[attr-defined]
            # `finally:` runs even after a `return` in the body
            certain = _walk_exit(stmt.finalbody, certain, exc, out) and body  # type: ignore[attr-defined]
            continue
        if isinstance(stmt, (ast.With, ast.AsyncWith)):
            certain = _walk_exit(stmt.body, certain, exc, out) and certain
            continue
        if isinstance(stmt, (ast.For, ast.AsyncFor, ast.While, ast.Match)):
            for node in astutil.walk(stmt):
                _note(node, False, out)
            if _may_leave(stmt):
                certain = False
            continue
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for node in astutil.walk(stmt):
            _note(node, certain, out)
    return certain


def _note(node: ast.AST, certain: bool, out: list[SelfEnd]) -> None:
    """``self.<attr>.commit()`` & co."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return
    end = _END_METHODS.get(node.func.attr)
    owner = dotted_name(node.func.value)
    if end is None or owner is None or not owner.startswith("self.") or owner.count(".") != 1:
        return
    out.append(SelfEnd(owner[5:], end.value, certain))


def _may_leave(stmt: ast.stmt) -> bool:
    """Does ``stmt`` hold a ``return`` (outside nested functions)?"""
    return any(isinstance(n, ast.Return) for n in _own_nodes(stmt))


def _error_test(test: ast.expr, exc: set[str]) -> bool | None:
    """True when ``test`` holds only when the block raised (``exc_type``, ``exc_type is not
    None``, ``isinstance(exc, DBError)``), False when exactly when it did not (``not
    exc_type``, ``exc_type is None``), None for any other test."""
    if isinstance(test, ast.Name) and test.id in exc:
        return True
    if isinstance(test, ast.Call) and isinstance(test.func, ast.Name) and test.func.id in ("isinstance", "issubclass") \
            and test.args and isinstance(test.args[0], ast.Name) and test.args[0].id in exc:
        return True  # `isinstance(exc, SQLAlchemyError)`: only an error is one
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = _error_test(test.operand, exc)
        return None if inner is None else not inner
    if isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id in exc \
            and len(test.ops) == 1 and isinstance(test.comparators[0], ast.Constant) \
            and test.comparators[0].value is None:
        if isinstance(test.ops[0], ast.IsNot):
            return True
        if isinstance(test.ops[0], ast.Is):
            return False
    return None


_NOT_CLASSES = {"None", "str", "int", "float", "bool", "bytes", "dict", "list", "tuple", "set", "type",
                "object", "Any", "Optional", "Union", "Callable", "Awaitable", "Coroutine", "Type"}
_TYPING_ROOTS = ("typing", "typing_extensions", "collections")


@dataclass(frozen=True)
class NameType:
    """The one class a typed name stands for: held as is (``direct``), or given by calling it
    (``called``: ``Callable[[], Engine]``), or both (``Union[Engine, Callable[[], Engine]]``)."""

    cls: str
    direct: bool
    called: bool


def annotation_class(annotation: ast.AST | None, qualify: Callable[[str], str | None]) -> NameType | None:
    """What a name so annotated holds, through ``Optional``, ``Union``, ``X | None`` and
    ``Callable[..., X]``. None when the annotation names several classes, or none."""
    parsed = unquoted(annotation) if annotation is not None else None
    if parsed is None:
        return None
    found: dict[str, set[bool]] = {}
    _classes_in(parsed, qualify, False, found)
    if len(found) != 1 or "" in found:  # several classes, or something not read as one
        return None
    ((cls, how),) = found.items()
    return NameType(cls, False in how, True in how)


def _classes_in(node: ast.AST, qualify: Callable[[str], str | None], called: bool,
                found: dict[str, set[bool]]) -> None:
    if isinstance(node, (ast.Name, ast.Attribute)):
        name = dotted_name(node)
        qualified = qualify(name) if name is not None and name.rsplit(".", 1)[-1] not in _NOT_CLASSES else None
        if qualified is not None and qualified.split(".")[0] not in _TYPING_ROOTS:
            found.setdefault(qualified, set()).add(called)
        return
    if isinstance(node, ast.Subscript):
        head = (dotted_name(node.value) or "").rsplit(".", 1)[-1]
        args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if head == "Callable":  # Callable[[params], result]: only the result counts, as called
            if len(args) == 2:
                _classes_in(args[1], qualify, True, found)
            return
        if head not in ("Optional", "Union"):
            found.setdefault("", set())  # a generic (list[X], dict[...]): not one class
            return
        for arg in args:
            _classes_in(arg, qualify, called, found)
        return
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        _classes_in(node.left, qualify, called, found)
        _classes_in(node.right, qualify, called, found)
        return
    if isinstance(node, ast.Constant) and node.value is None:
        return
    found.setdefault("", set())  # anything else: unknown


def receiver_class(node: ast.AST, typed: dict[str, NameType]) -> str | None:
    """The class of a method call's receiver, from names of known type (``typed``): ``db``
    (held as is), ``db()`` (typed as a callable returning the class), and ``db() if
    callable(db) else db`` when both branches agree."""
    node = strip_await(node)
    if isinstance(node, ast.Name):
        known = typed.get(node.id)
        return known.cls if known is not None and known.direct else None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.args and not node.keywords:
        known = typed.get(node.func.id)
        return known.cls if known is not None and known.called else None
    if isinstance(node, ast.IfExp):
        left, right = receiver_class(node.body, typed), receiver_class(node.orelse, typed)
        return left if left is not None and left == right else None
    return None
