"""For SQF009: a handler of a failed commit/flush that rolls back, but reads a loaded
instance's attributes first (to log it, usually).

A failed flush expires every instance the session had loaded (objects added in the failed
transaction stay readable: they become transient), and the session refuses to load anything
until ``rollback()``: reading an expired attribute before the rollback raises
``PendingRollbackError``, which replaces the error the handler was about to report. The
objects counted are those known to be loaded: read through the same session in the
function, deleted through it (only a persistent object can be), or ``self`` in a method of a
mapped class that does not add ``self`` to the session in that function. A read is an
attribute of the model (a column, a relationship, a property), or formatting the object
(``str(obj)``, an f-string, an argument of a logging call) when its class defines
``__str__``/``__repr__`` reading the model's attributes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..lazy import lazy
from . import match as m
from .base import FileContext
from .flow import BindingKind, Event, EventKind, binding_of, model_for
from .helpers import dotted, statement_calls

if TYPE_CHECKING:
    import libcst as cst

    from ..index import Model
else:
    cst = lazy("libcst")

LOGGING = {"debug", "info", "warning", "warn", "error", "exception", "critical", "log"}
FORMATTERS = {"str", "repr", "format"}


@dataclass
class EarlyRead:
    """An attribute of a loaded instance read in a handler before its rollback."""

    node: cst.CSTNode  # the read (an attribute, or the expression that formats the object)
    text: str  # the read, as a clause of the message: "`self.name` is read"
    obj: str
    assumed: bool  # the object is `self`, taken to be loaded (not proven by the function)
    rollback: int  # the position of the rollback statement in the handler's block
    movable: bool  # every statement before the rollback is a plain call: it can go first


def early_reads(ctx: FileContext, fn: cst.FunctionDef, qualname: str, evs: list[Event],
                handler: cst.ExceptHandler, S: str) -> EarlyRead | None:
    """The first read of a loaded instance's attribute before ``S.rollback()`` in ``handler``."""
    body = handler.body
    if not isinstance(body, cst.IndentedBlock):
        return None
    position = next((i for i, stmt in enumerate(body.body) if _is_rollback(stmt, S)), None)
    if not position:
        return None
    before = body.body[:position]
    loaded = _loaded(ctx, fn, qualname, evs, S)
    if not loaded:
        return None
    movable = all(_plain_call(stmt, S) for stmt in before)
    for stmt in before:
        for node, obj, text in _reads(stmt, loaded):
            return EarlyRead(node, text, obj, loaded[obj][1], position, movable)
    return None


def _is_rollback(stmt: cst.CSTNode, S: str) -> bool:
    calls = statement_calls(stmt)
    return calls is not None and len(calls) == 1 and calls[0][1] is not None \
        and dotted(calls[0][1].func) == f"{S}.rollback"


def _plain_call(stmt: cst.CSTNode, S: str) -> bool:
    """A line of calls that do not touch the session (logging, a counter)."""
    calls = statement_calls(stmt)
    return calls is not None and all(
        call is not None and not (dotted(call.func) or "").startswith(S + ".") for _, call in calls)


def _loaded(ctx: FileContext, fn: cst.FunctionDef, qualname: str, evs: list[Event],
            S: str) -> dict[str, tuple[Model, bool]]:
    """Names of instances loaded by ``S`` with their model, and whether that is assumed (``self``)."""
    out: dict[str, tuple[Model, bool]] = {}
    added = {a for e in evs if e.kind == EventKind.CALL and e.owner == S and e.name in ("add", "add_all", "merge")
             for a in e.args}
    deleted = {a for e in evs if e.kind == EventKind.CALL and e.owner == S and e.name == "delete" for a in e.args}
    if "." in qualname and "self" not in added:
        model = model_for(ctx, qualname.rsplit(".", 2)[-2])
        if model is not None and any(p.name.value == "self" for p in fn.params.params[:1]):
            out["self"] = (model, "self" not in deleted)
    for e in evs:
        if e.kind != EventKind.ASSIGN or e.name is None or e.name in added or e.value is None:
            continue
        binding = binding_of(ctx, e.value, {S: None})  # type: ignore[dict-item]
        model = model_for(ctx, binding.model) if binding.kind == BindingKind.LOADED else None
        if model is not None:
            out[e.name] = (model, False)
    return out


def _mapped(model: Model, attr: str) -> bool:
    return attr in model.columns or attr in model.deferred or attr in model.relationships \
        or bool(set(model.properties.get(attr, ())) & (model.columns | set(model.relationships)))


def _formats(model: Model, conversion: str = "str") -> bool:
    """Does formatting the object read a mapped attribute (its ``__str__``, else ``__repr__``)?"""
    method = "__repr__" if conversion == "repr" else "__str__"
    reads = model.properties.get(method)
    if reads is None and method == "__str__":
        reads = model.properties.get("__repr__")
    return any(_mapped(model, attr) for attr in reads or ())


def _reads(stmt: cst.CSTNode, loaded: dict[str, tuple[Model, bool]]) -> Iterator[tuple[cst.CSTNode, str, str]]:
    """(node, object, text) for each read of a loaded instance's attribute in ``stmt``."""
    code = cst.Module([]).code_for_node
    for node in m.findall(stmt, m.Attribute(value=m.Name()) | m.Call() | m.FormattedStringExpression()):
        if isinstance(node, cst.Attribute):
            obj = node.value.value  # type: ignore[attr-defined]
            if obj in loaded and _mapped(loaded[obj][0], node.attr.value):
                yield node, obj, f"`{code(node)}` is read"
        elif isinstance(node, cst.FormattedStringExpression):
            if isinstance(node.expression, cst.Name) and node.expression.value in loaded:
                obj = node.expression.value
                conversion = "repr" if node.conversion == "r" else "str"
                if _formats(loaded[obj][0], conversion):
                    yield node, obj, f"an f-string formats `{obj}`"
        else:
            assert isinstance(node, cst.Call)
            callee = (dotted(node.func) or "").rsplit(".", 1)[-1]
            if callee not in FORMATTERS and not (callee in LOGGING and isinstance(node.func, cst.Attribute)):
                continue
            for arg in node.args:
                if isinstance(arg.value, cst.Name) and arg.value.value in loaded \
                        and _formats(loaded[arg.value.value][0], "repr" if callee == "repr" else "str"):
                    obj = arg.value.value
                    yield node, obj, (f"`{code(node)}` reads its attributes" if callee in FORMATTERS
                           else f"the logging call formats `{obj}`")
