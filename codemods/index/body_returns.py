"""What a function yields or returns: a session (its own, a parameter, ``self.<attr>``), a
factory, an object it built, a load, a dict of loads by constant key."""

from __future__ import annotations

import ast

from .. import names
from .astutil import (
    dotted_name,
    strip_await,
)
from .body_binds import Bindings
from .facts import OpenedSession
from .infer import load_of


class Returns(Bindings):
    """Its yields and returns."""

    def _yield_or_return(self, value: ast.AST | None, is_yield: bool) -> None:
        if value is None:
            return
        value = strip_await(value)
        if is_yield and self._begin_depth:
            self.yield_in_begin = True
        if is_yield:  # whatever it yields, the sessions of enclosing with-blocks stay open
            for name in self._with_stack:
                for opened in self.opened:
                    if self.session_names.get(name) == opened.factory and opened.closed_on_return:
                        opened.closed_on_return = False
        if isinstance(value, ast.Name):
            if not is_yield:
                self.hands_out_factory(value)
            if value.id in self.session_names:
                self.handed_out.add(value.id)
                if value.id not in self.registers:
                    self.handed_unregistered = True  # handed out before (or without) its registry's add
            if is_yield and value.id in self.session_names:
                self._yielded.add(value.id)
                if value.id in self._with_stack:  # the with-block closes it when the caller's block ends
                    self._closed_after_yield.add(value.id)
            if value.id in self.param_names:
                self.yields_param = value.id
            for opened in self.opened:
                if self.session_names.get(value.id) == opened.factory:
                    opened.yielded = True
                    if self.is_generator and value.id in self._with_stack:
                        # yielded inside the with-block: open while the caller uses it
                        opened.closed_on_return = False
            if is_yield and value.id in self.session_names:
                self.yields_kind = "session"
                self.yield_sources.append(self.session_names[value.id])
        elif isinstance(value, ast.Call):
            callee = dotted_name(value.func)
            args = [dotted_name(a) for a in list(value.args) + [k.value for k in value.keywords]]
            if is_yield and any(a in self.session_names for a in args if a):
                self.yields_kind = "service"
                self.yields_class = self.ex.facts.qualify(callee) if callee else None
                self.yield_sources.extend(self.session_names[a] for a in args if a in self.session_names)
            factory = self._opens(value)
            if factory is not None:
                self.opened.append(OpenedSession(factory, closed_on_return=False, yielded=True,
                                                 expire_on_commit=self._expire_kw(value)))
            builder = self.ex.facts.qualify(callee) if callee else None
            if not is_yield and names.factory_builder(builder) is not None:
                self.returns_factory = self.ex.factory_from(self.fn.name, value, value.lineno)
            if not is_yield:
                self.hands_out_factory(value)
        elif isinstance(value, ast.Tuple) and not is_yield:  # `return SessionLocal, engine`
            for i, el in enumerate(value.elts):
                if isinstance(el, ast.Name) and el.id in self.local_factories:
                    self.returns_factories_at[i] = self.local_factories[el.id]

    def visit_Yield(self, node: ast.Yield) -> None:
        self.is_generator = True
        self._seen_yield = True
        self._yield_or_return(node.value, is_yield=True)
        self.generic_visit(node)

    def visit_YieldFrom(self, node: ast.YieldFrom) -> None:
        self.is_generator = True
        self._seen_yield = True
        self.generic_visit(node)

    def visit_Return(self, node: ast.Return) -> None:
        if node.value is not None:
            self._returned(node.value)
        self._yield_or_return(node.value, is_yield=False)
        self.generic_visit(node)

    def _returned(self, value: ast.AST) -> None:
        """What a `return` gives: a load (its model and shape), or a call's result (resolved at
        query time: ``self.repo.get``, ``app.crud.get_user``)."""
        load = load_of(value, self.loads, self.ex.facts.qualify)
        if load is not None and load.stage.instances:
            self.returns_load = self.returns_load or load
        self._returned_keys(value)
        built = self.origins.get(value.id) if isinstance(value, ast.Name) else None
        self.returned_new.append(built.callee if built is not None and built.kind == "new" else None)
        # Also as a call: `self.repo.get(pk)` reads like a load whose model is `pk`; whether
        # either names a model is decided at query time.
        value = strip_await(value)
        if isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name) and value.value.id == "self":
            self.returns_self_attr = value.attr  # `def __enter__(self): return self.session`
        if isinstance(value, ast.Name) and value.id in self.local_calls:
            self.returns_calls.append(self.local_calls[value.id])
        elif isinstance(value, ast.Call):
            callee = self._callee(value.func)
            if callee is not None:
                self.returns_calls.append(callee)

    def _returned_keys(self, value: ast.AST) -> None:
        """``return {"chat": chat, "user": user}``: what each constant key holds, when it is a
        name bound to a load of instances."""
        if not isinstance(value, ast.Dict) or None in value.keys:
            self.keyed_returns = False
            return
        for key, item in zip(value.keys, value.values):
            if not isinstance(key, ast.Constant) or not isinstance(key.value, str):
                continue
            load = self.loads.get(item.id) if isinstance(item, ast.Name) else None
            load = load if load is not None and load.stage.instances else None
            if key.value in self.returned_keys and self.returned_keys[key.value] != load:
                load = None
            self.returned_keys[key.value] = load
