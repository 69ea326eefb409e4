"""Extraction's common ground: the facts of the module being read, a dotted name read as the
qualified name it refers to, and FastAPI's ``Depends(...)``. The topic layers
(:mod:`.extract_classes`, :mod:`.extract_functions`) and :class:`~.extract.Extractor` stand
on it."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from .. import names
from .astutil import (
    const_bool,
    dotted_name,
    keyword_arg,
)
from .facts import (
    Factory,
    ModuleFacts,
)
from .managers import NameType


class ExtractorBase:
    """The state every extraction layer reads and fills."""

    def __init__(self, facts: ModuleFacts) -> None:
        self.facts = facts
        # the typed parameters of the function whose returned class is being read (its
        # methods use them as closure names: `database` in `self.session = database.session()`)
        self.enclosing_types: dict[str, NameType] = {}

    def q(self, node: ast.AST | None) -> str | None:
        return self.facts.qualify(dotted_name(node)) if node is not None else None

    def factory_from(self, name: str, value: ast.AST, line: int) -> Factory | None:
        if not isinstance(value, ast.Call):
            return None
        builder = self.q(value.func)
        if builder is None:
            return None
        is_async = names.factory_builder(builder)
        if is_async is None:
            return None
        expire = const_bool(keyword_arg(value, "expire_on_commit"))
        bind_node = keyword_arg(value, "bind") or (value.args[0] if value.args and builder not in names.SCOPED else None)
        bind = ast.unparse(bind_node) if bind_node is not None else None
        scoped = builder in names.SCOPED
        class_ = self.q(keyword_arg(value, "class_"))
        if class_ is not None and names.session_class(class_) is not None:
            is_async = names.session_class(class_)
        if scoped and value.args:
            inner = value.args[0]
            if isinstance(inner, ast.Call):
                sub = self.factory_from(name, inner, line)
                if sub is not None:
                    return Factory(name, builder, sub.is_async, sub.expire_on_commit, line, scoped=True)
            inner_name = dotted_name(inner)
            if inner_name in self.facts.factories:
                sub = self.facts.factories[inner_name]
                return Factory(name, builder, sub.is_async, sub.expire_on_commit, line, scoped=True)
            # scoped_session(some_factory_from_elsewhere): options unknown here
            return Factory(name, builder, is_async, None, line, scoped=True)
        return Factory(name, builder, is_async, expire, line, scoped=scoped, bind=bind)

    def depends_of(self, node: ast.AST | None) -> tuple[str, bool] | None:
        """``(target, use_cache)`` when ``node`` is ``Depends(target, ...)``."""
        if not isinstance(node, ast.Call):
            return None
        if self.q(node.func) not in names.DEPENDS:
            return None
        target = node.args[0] if node.args else keyword_arg(node, "dependency")
        use_cache = const_bool(keyword_arg(node, "use_cache"))
        if isinstance(target, ast.Call):  # Depends(require("admin")): what the factory returns
            made = self.q(target.func)
            return (f"{made}()" if made else "", use_cache is not False)
        return (self.q(target) or "", use_cache is not False)

    if TYPE_CHECKING:  # Extractor's: a function's own classes and functions are read as statements
        def statement(self, stmt: ast.stmt, prefix: str) -> None: ...
