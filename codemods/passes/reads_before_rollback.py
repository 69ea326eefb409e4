"""For SQF009: a handler of a failed commit/flush that reads a loaded instance's attributes
before its rollback (to log it, usually), or with no rollback at all when the handler catches
``StaleDataError``.

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

A handler of ``StaleDataError`` proves more: only a flush raises it, for an UPDATE or DELETE
of a row already in the database (a version mismatch, or fewer rows matched than expected).
So the flush failed (no rollback in the handler is needed to know it), and the one instance
the ``try`` adds (``self``, or a parameter: ``session.add(self); session.commit()``) was
persistent, not new, when nothing else the function loads, deletes or adds by name could
be the stale row.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from itertools import takewhile
from typing import TYPE_CHECKING

from ..lazy import lazy
from . import match as m
from .base import FileContext
from .caller_use import RESETS
from .flow import BindingKind, Event, EventKind, binding_of, model_for
from .helpers import dotted, function_facts, param_facts, rebinds, statement_calls

if TYPE_CHECKING:
    import libcst as cst

    from ..index import Model
else:
    cst = lazy("libcst")

LOGGING = {"debug", "info", "warning", "warn", "error", "exception", "critical", "log"}
FORMATTERS = {"str", "repr", "format"}


class Known(Enum):
    """Why an instance is taken to be in the session, and so expired by the failed flush."""

    LOADED = "loaded"  # loaded or deleted through the session in the function
    SELF = "self"  # `self` of a mapped class's method that does not add it: assumed loaded
    UPDATED = "updated"  # the one instance the try adds, in a handler of StaleDataError


@dataclass
class EarlyRead:
    """An attribute of a loaded instance read in a handler before its rollback."""

    node: cst.CSTNode  # the read (an attribute, or the expression that formats the object)
    text: str  # the read, as a clause of the message: "`self.name` is read"
    obj: str
    known: Known
    rollback: int | None  # the position of the rollback statement in the handler's block
    # (None: the handler catches StaleDataError and has none before the read)
    movable: bool  # every statement before the rollback is a plain call: it can go first


def early_reads(ctx: FileContext, fn: cst.FunctionDef, qualname: str, evs: list[Event],
                try_: cst.Try, handler: cst.ExceptHandler, S: str) -> EarlyRead | None:
    """The first read of a loaded instance's attribute before ``S.rollback()`` in ``handler``
    (before any rollback, in a handler of StaleDataError)."""
    body = handler.body
    if not isinstance(body, cst.IndentedBlock):
        return None
    position = next((i for i, stmt in enumerate(body.body) if _is_rollback(stmt, S)), None)
    stale = catches_stale_data(ctx, handler)
    if position == 0 or position is None and not stale:
        return None
    before = body.body[:position] if position is not None else \
        list(takewhile(lambda stmt: not _resets(stmt, S), body.body))
    loaded = _loaded(ctx, fn, qualname, evs, S)
    updated = _updated(ctx, fn, qualname, try_, evs, S, loaded) if stale else None
    if updated is not None:
        loaded[updated[0]] = (updated[1], Known.UPDATED)
    if not loaded:
        return None
    movable = position is not None and all(_plain_call(stmt, S) for stmt in before)
    for stmt in before:
        for node, obj, text in _reads(stmt, loaded):
            return EarlyRead(node, text, obj, loaded[obj][1], position, movable)
    return None


def catches_stale_data(ctx: FileContext, handler: cst.ExceptHandler) -> bool:
    """Does the handler catch SQLAlchemy's ``StaleDataError`` and nothing but SQLAlchemy's
    errors (``except (orm_exc.StaleDataError, IntegrityError):``)? Then a flush failed."""
    if handler.type is None:
        return False
    kinds = handler.type.elements if isinstance(handler.type, cst.Tuple) else [cst.Element(handler.type)]
    caught = [ctx.qualify(dotted(el.value)) or "" for el in kinds]
    return all(name.startswith("sqlalchemy.") for name in caught) \
        and any(name.endswith(".StaleDataError") for name in caught)


def _updated(ctx: FileContext, fn: cst.FunctionDef, qualname: str, try_: cst.Try, evs: list[Event],
             S: str, loaded: dict[str, tuple[Model, Known]]) -> tuple[str, Model] | None:
    """The instance whose UPDATE the handler of StaleDataError is for: the one name ``S.add``
    takes in the try, ``self`` or a parameter the function never rebinds, with its model,
    when nothing else could be the stale row (no other instance loaded, deleted or added by
    name; objects built in the call, ``S.add(Log(...))``, are new)."""
    calls = [e for e in evs if e.kind == EventKind.CALL and e.owner == S
             and e.name in ("add", "add_all", "merge", "delete")]
    names = {a for e in calls for a in e.args if a is not None}
    if len(names) != 1 or any(e.name != "add" or e.args not in ((None,), tuple(names)) for e in calls):
        return None
    name = names.pop()
    if set(loaded) - {name} or rebinds(fn, name) \
            or not any(n is try_.body for e in calls if e.args == (name,) for n in e.path):
        return None
    if name == "self" and "." in qualname:  # an abstract mapped base's method too
        model = ctx.index.instance_model(ctx.qualify(qualname.rsplit(".", 1)[0]))
    else:
        param = param_facts(function_facts(ctx, qualname), name)
        model = ctx.index.model(param.annotation) if param is not None and param.annotation else None
    return (name, model) if model is not None else None


def _resets(stmt: cst.CSTNode, S: str) -> bool:
    """Does the statement roll back or close ``S`` anywhere in it (`if retry: S.rollback()`)?"""
    return any(dotted(call.func) in {f"{S}.{r}" for r in RESETS} for call in m.findall(stmt, m.Call()))


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
            S: str) -> dict[str, tuple[Model, Known]]:
    """Names of instances loaded by ``S`` with their model, and why they are known to be."""
    out: dict[str, tuple[Model, Known]] = {}
    added = {a for e in evs if e.kind == EventKind.CALL and e.owner == S and e.name in ("add", "add_all", "merge")
             for a in e.args}
    deleted = {a for e in evs if e.kind == EventKind.CALL and e.owner == S and e.name == "delete" for a in e.args}
    if "." in qualname and "self" not in added:
        model = model_for(ctx, qualname.rsplit(".", 2)[-2])
        if model is not None and any(p.name.value == "self" for p in fn.params.params[:1]):
            out["self"] = (model, Known.LOADED if "self" in deleted else Known.SELF)
    for e in evs:
        if e.kind != EventKind.ASSIGN or e.name is None or e.name in added or e.value is None:
            continue
        binding = binding_of(ctx, e.value, {S: None})  # type: ignore[dict-item]
        model = model_for(ctx, binding.model) if binding.kind == BindingKind.LOADED else None
        if model is not None:
            out[e.name] = (model, Known.LOADED)
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


def _reads(stmt: cst.CSTNode, loaded: dict[str, tuple[Model, Known]]) -> Iterator[tuple[cst.CSTNode, str, str]]:
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
