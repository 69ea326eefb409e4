"""The sessions a function opens: calls of factories and session classes (``Maker()``,
``Session(engine)``), the ``with`` blocks that open and close them, and what each states of
``expire_on_commit``."""

from __future__ import annotations

import ast

from .. import names
from ..names import WITH_VALUE
from .astutil import (
    const_bool,
    dotted_name,
    keyword_arg,
    strip_await,
)
from .body_state import BodyState
from .facts import OpenedSession, Origin


class SessionOpens(BodyState):
    """What the function opens, and how."""

    def _opens(self, value: ast.AST) -> str | None:
        """What ``value`` calls, when it may open a session (``Factory()``, ``Session(e)``).

        Only a candidate: whether the callee really makes sessions is asked of the index at
        query time, when every module is known. A parameter annotated with a factory type
        (``maker: async_sessionmaker[AsyncSession]``) stands for that type.
        """
        value = strip_await(value)
        if not isinstance(value, ast.Call):
            return None
        if isinstance(value.func, ast.Call) and not value.args and not value.keywords:
            # `sessionmaker(bind=engine)()`: a factory built and called at once
            built = self.ex.facts.qualify(dotted_name(value.func.func))
            return built + "()" if built else None
        callee = dotted_name(value.func)
        if callee is None:
            return None
        if callee in self.param_annotations:
            return self.param_annotations[callee] + "()"  # an instance of that type, called
        if callee in self.session_names and names.factory_builder(self.session_names[callee]) is not None:
            return self.session_names[callee] + "()"  # a factory built in this function, called
        if callee in self.partials:
            return self.partials[callee][0]  # `maker = partial(Session, ...)`, then `maker()`
        return self._qualify_callee(callee)

    def _qualify_callee(self, callee: str) -> str | None:
        """The qualified name of a dotted callee of this function. ``self.<attr>`` in a method
        names what the class keeps there (``self.SessionLocal = sessionmaker()``, an instance
        of a project class whose ``__call__`` is a scope): ``<module>.<Class>.<attr>``."""
        if callee.startswith("self.") and callee.count(".") == 1 and self.class_prefix:
            module = self.ex.facts.module
            local = self.class_prefix + callee[5:]
            return f"{module}.{local}" if module else local
        return self.ex.facts.qualify(callee)

    def _with(self, node: ast.With | ast.AsyncWith) -> None:
        bound: list[str] = []
        begins = 0
        for item in node.items:
            target = item.optional_vars
            expr = strip_await(item.context_expr)
            begin = (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute)
                     and expr.func.attr == "begin")
            if begin:
                begins += 1
            if isinstance(expr, ast.Call):
                manager = expr.func.value if begin else expr.func  # type: ignore[attr-defined]
                callee = dotted_name(manager)
                if callee is not None:
                    q = self.param_annotations.get(callee, None)
                    self.with_callees.append((q + "()") if q else (self._qualify_callee(callee) or callee))
            elif dotted_name(expr) is not None:
                self.with_callees.append(WITH_VALUE + (dotted_name(expr) or ""))
            if isinstance(target, ast.Name):
                if begin:  # `with factory.begin() as s`: opens a session that commits on exit
                    assert isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute)
                    factory = self._opens(ast.Call(func=expr.func.value, args=[], keywords=[]))
                    if factory is not None and dotted_name(expr.func.value) not in self.session_names:
                        self._opened(target.id, factory, None, closed=True, begin=True)
                        bound.append(target.id)
                else:
                    factory = self._opens(expr)
                    if factory is not None:
                        self._opened(target.id, factory, self._expire_kw(expr), closed=True)
                        bound.append(target.id)
            self.visit(item.context_expr)
        self._with_stack.extend(bound)
        self._begin_depth += begins
        for stmt in node.body:
            self.visit(stmt)
        self._begin_depth -= begins
        for _ in bound:
            self._with_stack.pop()

    visit_With = _with
    visit_AsyncWith = _with

    def _expire_kw(self, value: ast.AST) -> bool | None:
        """`expire_on_commit=` stated in the call that opens a session, or in the builder of a
        factory made in this function (`maker = async_sessionmaker(e, expire_on_commit=False)`
        then `maker()`)."""
        value = strip_await(value)
        if not isinstance(value, ast.Call):
            return None
        stated = const_bool(keyword_arg(value, "expire_on_commit"))
        if stated is None and isinstance(value.func, ast.Call):  # `sessionmaker(expire_on_commit=False)()`
            stated = const_bool(keyword_arg(value.func, "expire_on_commit"))
        if stated is None and isinstance(value.func, ast.Name):
            stated = self.local_factory_expire.get(value.func.id)
        if stated is None and isinstance(value.func, ast.Name) and value.func.id in self.partials:
            stated = self.partials[value.func.id][1]
        return stated

    def _opened(self, name: str, factory: str, expire: bool | None, closed: bool, begin: bool = False) -> None:
        self.session_names[name] = factory
        self.origins[name] = Origin("session", callee=factory)
        self.opened.append(OpenedSession(factory, closed_on_return=closed, yielded=False,
                                         expire_on_commit=expire, begin=begin, name=name))
