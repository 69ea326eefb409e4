"""A function's calls: the session methods it calls and on what, the project functions it
calls with a session and an ORM object side by side (its call sites), what it stores and
which attributes of its parameters it reads."""

from __future__ import annotations

import ast

from .. import names
from .astutil import (
    EAGER_LOADERS,
    dotted_name,
    eager_names,
    readable_option,
)
from .body_binds import Bindings
from .body_ends import SessionEnds
from .facts import CallSite

STORE_METHODS = {"add", "append", "setdefault", "insert", "appendleft"}


class Calls(Bindings, SessionEnds):
    """Its calls and attribute reads."""

    def _inline_open(self, func: ast.Attribute) -> None:
        """``Maker().query(...)``, ``obj.session_factory().execute(...)``: a session made and
        used in one expression, which no name holds, so nothing can close it."""
        made = func.value
        if func.attr not in names.INLINE_USES or not isinstance(made, ast.Call):
            return
        callee = dotted_name(made.func)
        head, _, attr = (callee or "").partition(".")
        if head in self.local_calls and attr and "." not in attr:  # `prod = Product(...)`, `prod.factory()`
            self.inline_opens.append(f"{self.local_calls[head]}.{attr}")
            return
        opened = self._opens(made)
        if opened is not None:
            self.inline_opens.append(opened)

    def visit_Call(self, node: ast.Call) -> None:
        self._called_funcs.add(id(node.func))
        self.generic_visit(node)
        self._session_end(node)
        self._getattr_read(node)
        if isinstance(node.func, ast.Attribute):
            self.methods.add(node.func.attr)
            self._inline_open(node.func)
            if node.func.attr in names.STATEMENT_METHODS and isinstance(node.func.value, ast.Name) \
                    and node.func.value.id in self.param_names:
                self.param_statements.add(node.func.value.id)
            if node.func.attr in STORE_METHODS:
                if node.func.attr != "add":  # `session.add(obj)` gives obj to a session
                    self._keeps(node.args)
                owner = dotted_name(node.func.value)
                if owner is not None:
                    self.stores.add(owner)
                    if node.func.attr == "add":
                        self.add_owners.add(owner)
                        if len(node.args) == 1 and isinstance(node.args[0], ast.Name) \
                                and node.args[0].id in self.param_names:
                            self.added_params.add(node.args[0].id)
                    if not self._conditional and owner not in self.session_names and owner not in self.param_names \
                            and owner not in self.local_names:
                        for a in node.args:  # `_opened.add(session)`: kept for closing later
                            if isinstance(a, ast.Name) and a.id in self.session_names:
                                self.registers[a.id] = owner
        elif isinstance(node.func, ast.Name):
            self.called.add(node.func.id)
        last = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if last in EAGER_LOADERS:
            self.eager |= eager_names(node)
        if last == "options" and isinstance(node.func, ast.Attribute) \
                and not all(readable_option(a) for a in node.args):
            self.opaque_options = True
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("close", "expunge", "expunge_all"):
            owner = dotted_name(node.func.value)
            if owner in self.session_names:
                if node.func.attr == "close":
                    self.closed_names.add(owner)
                    if self._seen_yield and not self._conditional:
                        self._closed_after_yield.add(owner)  # `finally: session.close()`
                else:
                    self.detaches = True
        if isinstance(node.func, ast.Attribute) and node.func.attr == "rollback" and self._seen_yield \
                and not self._conditional:
            owner = dotted_name(node.func.value)
            if owner in self.session_names or (owner or "").startswith("self."):
                self.rolls_back_after_yield = True  # `finally: session.rollback()`
        if isinstance(node.func, ast.Attribute) and node.func.attr == "commit":
            owner = dotted_name(node.func.value)
            if owner in self.session_names or (owner or "").startswith("self."):
                self.commits = True
                if self._seen_yield:
                    self.commits_after_yield = True
        callee = dotted_name(node.func)
        own = callee is not None and callee.startswith("self.") and callee.count(".") == 1  # `self.method(...)`
        table = self.picked.get(callee) if callee is not None else self._table(node.func)
        if table is None and (callee is None or "." in callee and callee.split(".")[0] in ("self", "cls") and not own):
            return
        qualified = callee if own or callee is None else self.ex.facts.qualify(callee)
        if qualified is None and table is None or len(node.args) + len(node.keywords) < 2:
            return
        args = [self.origin(a) for a in node.args]
        kwargs = {k.arg: self.origin(k.value) for k in node.keywords if k.arg}
        # Kept only when it may pass an ORM object and a session side by side: what the
        # callers of a function that takes both are asked (and what the cache has to store).
        if not any(o.kind in ("new", "loaded", "session") for o in (*args, *kwargs.values())):
            return
        targets = self.ex.facts.function_tables[table] if table is not None else [qualified]
        for target in targets:  # a call through a table calls each function in it
            self.calls.append(
                CallSite(
                    callee=target,  # type: ignore[arg-type]
                    line=node.lineno,
                    args=args,
                    kwargs=kwargs,
                    arg_names=[dotted_name(a) for a in node.args],
                    kwarg_names={k.arg: dotted_name(k.value) for k in node.keywords if k.arg},
                    table=table,
                )
            )

    def _getattr_read(self, node: ast.Call) -> None:
        """`getattr(user, "name", None)` reads `user.name`."""
        if not isinstance(node.func, ast.Name) or node.func.id != "getattr" or len(node.args) not in (2, 3):
            return
        obj, attr = node.args[0], node.args[1]
        if isinstance(obj, ast.Name) and isinstance(attr, ast.Constant) and isinstance(attr.value, str):
            self._param_read(obj.id, attr.value)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.generic_visit(node)
        if node.attr in LOAD_STATE_ATTRS:
            self.checks_loads = True
        if isinstance(node.ctx, ast.Load) and isinstance(node.value, ast.Name) and id(node) not in self._called_funcs:
            self._param_read(node.value.id, node.attr)

    def _param_read(self, name: str, attr: str) -> None:
        """What a parameter's callers hand in is read here (``param_reads``)."""
        if name in self.param_names and name not in ("self", "cls") and not attr.startswith("__"):
            self.param_reads.setdefault(name, set()).add(attr)


# `inspect(obj).unloaded`, `await obj.awaitable_attrs.rel`: code that looks at, or loads, what is loaded
LOAD_STATE_ATTRS = {"unloaded", "awaitable_attrs"}
