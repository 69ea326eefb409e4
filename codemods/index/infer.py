"""What a function body loads: the ORM model and shape of the value an expression gives.

Service and repository methods rarely carry a return annotation; their bodies say what they
return. ``(await self.session.execute(select(User).where(...))).scalar_one_or_none()`` is a
``User`` or None, ``session.get(User, id)`` likewise, ``session.scalars(select(User)).all()``
a list of them. This module follows such an expression through the SQLAlchemy calls that
build, run and unpack a query, and through local names bound on the way, with the standard
library's ``ast``. Whether the class it names really is a model is decided at query time
(``ProjectIndex.returned``), when every module is known. A class attribute used as the model
(``select(self.model)`` in a generic repository) is kept as ``self.<attr>`` and resolved
against the class the method is called on.
"""

from __future__ import annotations

import ast
import enum
from collections.abc import Callable
from dataclasses import dataclass

from .astutil import dotted_name, strip_await


class Stage(str, enum.Enum):
    """How far a load expression has got: a statement, a result, or instances."""

    SELECT = "select"  # select(User).where(...)
    QUERY = "query"  # session.query(User).filter(...) (1.x style)
    RESULT = "result"  # session.execute(select(User))
    SCALARS = "scalars"  # result.scalars(), session.scalars(select(User))
    ONE = "one"  # an instance
    OPTIONAL = "optional"  # an instance or None
    LIST = "list"  # a list of instances

    @property
    def instances(self) -> bool:
        return self in (Stage.ONE, Stage.OPTIONAL, Stage.LIST)


@dataclass(frozen=True)
class Load:
    stage: Stage
    model: str  # qualified class name as written, or "self.<attr>"


SELECT_CHAIN = {
    "where", "filter", "filter_by", "order_by", "limit", "offset", "options", "join", "outerjoin",
    "execution_options", "distinct", "group_by", "having", "with_for_update", "join_from", "select_from",
    "populate_existing", "correlate", "params", "enable_eagerloads",
}
QUERY_TERMINALS = {"first": Stage.OPTIONAL, "one_or_none": Stage.OPTIONAL, "one": Stage.ONE, "all": Stage.LIST,
                   "get": Stage.OPTIONAL, "get_or_404": Stage.ONE, "first_or_404": Stage.ONE}
RESULT_TERMINALS = {"scalar_one_or_none": Stage.OPTIONAL, "scalar": Stage.OPTIONAL, "scalar_one": Stage.ONE}
SCALARS_TERMINALS = {"first": Stage.OPTIONAL, "one_or_none": Stage.OPTIONAL, "one": Stage.ONE, "all": Stage.LIST,
                     "fetchall": Stage.LIST}
SELECT_BUILDERS = {"select", "sqlalchemy.select", "sqlalchemy.sql.select", "sqlalchemy.future.select",
                   "sqlmodel.select", "sqlalchemy.sql.expression.select"}


# What `model_expr` gives for `cls` itself: resolved at query time to the class a method is called on.
CLASS_ITSELF = "self."


def model_expr(node: ast.AST, qualify: Callable[[str | None], str | None]) -> str | None:
    """The class a load names: ``User`` (qualified), or ``self.model`` / ``cls.model``."""
    name = dotted_name(node)
    if name is None:
        return None
    head, _, rest = name.partition(".")
    if name in ("cls", "self.__class__"):
        return CLASS_ITSELF  # `select(cls)` in a classmethod: the class it is called on
    if head in ("self", "cls"):
        return f"self.{rest}" if rest and "." not in rest else None
    return qualify(name)


def load_of(node: ast.AST, local: dict[str, Load], qualify: Callable[[str | None], str | None]) -> Load | None:
    """The :class:`Load` an expression gives, or None when it is not a recognised load."""
    node = strip_await(node)
    if isinstance(node, ast.Name):
        return local.get(node.id)
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    callee = dotted_name(func)
    if callee is not None and (callee in SELECT_BUILDERS or qualify(callee) in SELECT_BUILDERS) and node.args:
        model = model_expr(node.args[0], qualify)
        return Load(Stage.SELECT, model) if model else None
    if callee is not None and callee.rsplit(".", 1)[-1] == "list" and "." not in callee and node.args:
        inner = load_of(node.args[0], local, qualify)  # list(session.scalars(...)), list(....all())
        return Load(Stage.LIST, inner.model) if inner and inner.stage in (Stage.SCALARS, Stage.LIST) else None
    if not isinstance(func, ast.Attribute):
        return None
    method = func.attr
    receiver = load_of(func.value, local, qualify)
    if receiver is not None:
        return _chained(receiver, method)
    # A method of something that is not a load itself: a session (or anything that runs one).
    first = node.args[0] if node.args else None
    if first is None:
        return None
    if method in ("execute", "scalars", "scalar", "exec"):
        statement = load_of(first, local, qualify)
        if statement is None or statement.stage is not Stage.SELECT:
            return None
        # SQLModel's `session.exec(select(User))` gives the instances as `scalars` does
        stage = {"execute": Stage.RESULT, "scalars": Stage.SCALARS, "scalar": Stage.OPTIONAL, "exec": Stage.SCALARS}[method]
        return Load(stage, statement.model)
    if method in ("get", "get_one", "query"):
        model = model_expr(first, qualify)
        if model is None:
            return None
        stage = {"get": Stage.OPTIONAL, "get_one": Stage.ONE, "query": Stage.QUERY}[method]
        return Load(stage, model)
    return None


def _chained(receiver: Load, method: str) -> Load | None:
    stage = receiver.stage
    if stage is Stage.SELECT:
        return receiver if method in SELECT_CHAIN else None
    if stage is Stage.QUERY:
        if method in SELECT_CHAIN:
            return receiver
        terminal = QUERY_TERMINALS.get(method)
    elif stage is Stage.RESULT:
        if method == "unique":
            return receiver
        if method == "scalars":
            return Load(Stage.SCALARS, receiver.model)
        terminal = RESULT_TERMINALS.get(method)
    elif stage is Stage.SCALARS:
        if method == "unique":
            return receiver
        terminal = SCALARS_TERMINALS.get(method)
    else:
        return None
    return Load(terminal, receiver.model) if terminal is not None else None
