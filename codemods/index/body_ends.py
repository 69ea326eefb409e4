"""The ends of a function's sessions: the commits, rollbacks, flushes and closes it calls on a
session it holds or is handed, the paths they run on (under a condition, in a handler for
any error), and the rollbacks that re-raise."""

from __future__ import annotations

import ast

from . import astutil
from .astutil import (
    dotted_name,
    strip_await,
)
from .body_state import BodyState
from .facts import SessionEnd

# Handlers that catch any failure of a commit (a bare `except:` too): nothing gets past them.
BROAD_ERRORS = {"Exception", "BaseException", "SQLAlchemyError"}


class SessionEnds(BodyState):
    """What the function does to the sessions it holds, and on which paths."""

    def _given_session(self, node: ast.AST) -> str | None:
        """``node`` as a session this function holds: one it opened, a parameter that may be
        one (typed as a session, or not typed), or ``self.<attr>``. Only parameters and
        ``self.<attr>`` concern its callers; the others tell that it hands a session on."""
        name = dotted_name(node)
        if name is None or name in ("self", "cls"):
            return None
        if name.startswith("self."):
            return name if name.count(".") == 1 else None
        if name in self.session_names or name in self.param_names and name not in self.param_annotations:
            return name
        return None

    def _session_end(self, node: ast.Call) -> None:
        """``db.commit()``/``db.rollback()`` of a given session, or a call handing it on."""
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ("commit", "rollback", "flush"):
            owner = self._given_session(func.value)
            if owner is not None and (func.attr != "rollback" or id(node) not in self._raising_rollbacks()):
                self._end(SessionEnd(owner, func.attr, caught=bool(self._broad_guard)))
            return
        callee = dotted_name(func)
        if callee is None:
            return
        if callee.startswith("self.") and callee.count(".") == 1:
            self._end(SessionEnd("self.", "", callee, "self."))  # its own methods may end its self sessions
        if not node.args and not node.keywords:
            return
        qualified: str | None = None
        head, _, rest = callee.partition(".")
        on_object = head == "self" or head in self.param_annotations and bool(rest)
        passed: list[tuple[int | str, ast.expr]] = [*enumerate(node.args)]
        passed += [(k.arg, k.value) for k in node.keywords if k.arg]
        for where, arg in passed:
            owner = self._given_session(arg)
            if owner is None:
                continue
            if qualified is None:
                if head in self.param_annotations and rest:  # `item.delete(db)` on a typed parameter
                    qualified = f"{self.param_annotations[head]}.{rest}"
                else:
                    qualified = callee if head == "self" else self.ex.facts.qualify(callee) or callee
            self._end(SessionEnd(owner, "", qualified, where,
                                 on_exit=self._seen_yield and not self._conditional, binds_self=on_object))

    def _end(self, end: SessionEnd) -> None:
        key = (end.session, end.method, end.callee, end.passed, end.on_exit, end.caught)
        if key not in self._ends_seen:
            self._ends_seen.add(key)
            self.session_ends.append(end)

    def _raising_rollbacks(self) -> set[int]:
        """The `rollback()` calls followed by a `raise` in their own block (`except: await
        db.rollback(); raise`): the caller never goes on after them."""
        if self._raising is None:
            self._raising = set()
            for node in astutil.walk(self.fn):
                for name in ("body", "orelse", "finalbody"):
                    stmts = getattr(node, name, None)
                    if not isinstance(stmts, list):
                        continue
                    for i, stmt in enumerate(stmts):
                        call = strip_await(stmt.value) if isinstance(stmt, ast.Expr) else None
                        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) \
                                and call.func.attr == "rollback" and any(isinstance(s, ast.Raise) for s in stmts[i + 1:]):
                            self._raising.add(id(call))
        return self._raising

    @property
    def closes_after_yield(self) -> bool:
        """Does it close the session it yields once the caller's block ends?"""
        return bool(self._yielded) and self._yielded <= self._closed_after_yield

    def _conditionally(self, node: ast.AST) -> None:
        self._conditional += 1
        self.generic_visit(node)
        self._conditional -= 1

    visit_If = _conditionally
    visit_For = _conditionally
    visit_AsyncFor = _conditionally
    visit_While = _conditionally
    visit_ExceptHandler = _conditionally
    visit_Match = _conditionally

    def visit_Try(self, node: ast.Try) -> None:
        broad = any(_catches_anything(h) for h in node.handlers)
        self.checks_loads |= any(_catches_missing_greenlet(h) for h in node.handlers)
        self._broad_guard += broad
        for stmt in node.body:
            self.visit(stmt)
        self._broad_guard -= broad
        for part in (*node.handlers, *node.orelse, *node.finalbody):
            self.visit(part)

    visit_TryStar = visit_Try


def _catches_missing_greenlet(handler: ast.ExceptHandler) -> bool:
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type] if handler.type else []
    return any((dotted_name(k) or "").rsplit(".", 1)[-1] == "MissingGreenlet" for k in kinds)


def _catches_anything(handler: ast.ExceptHandler) -> bool:
    """A bare ``except:``, or a handler for ``Exception`` (or any SQLAlchemy error)."""
    if handler.type is None:
        return True
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any((dotted_name(k) or "").rsplit(".", 1)[-1] in BROAD_ERRORS for k in kinds)
