"""Small libcst helpers shared by the passes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import names
from ..lazy import lazy
from . import match as m
from .base import FileContext, Transform, nodes

if TYPE_CHECKING:
    import libcst as cst

    from ..index import Function, ModuleFacts, Param, ProjectIndex
else:
    cst = lazy("libcst")


def dotted(node: cst.BaseExpression | None) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr.value}" if base else None
    return None


def argument_position(call: cst.Call, arg: cst.Arg) -> int | str | None:
    """The parameter slot ``arg`` of ``call`` fills: its keyword, or its index among the
    positional arguments. None for ``*args``/``**kwargs``, and for a positional argument after
    a ``*args`` (where it lands depends on what the star unpacks)."""
    if arg.star:
        return None
    if arg.keyword is not None:
        return arg.keyword.value
    position = 0
    for a in call.args:
        if a is arg:
            return position
        if a.star:
            return None
        position += a.keyword is None
    return None


def with_binds(item: cst.WithItem, *, dotted_target: bool = False) -> str | None:
    """The name ``with <expr> as <target>`` binds: a plain name (``as session``); with
    ``dotted_target``, an attribute too (``as self.session``, as :func:`dotted` spells it).
    None when the item binds nothing, or something else (a tuple, a subscript)."""
    if item.asname is None:
        return None
    target = item.asname.name
    if dotted_target:
        return dotted(target)  # type: ignore[arg-type]
    return target.value if isinstance(target, cst.Name) else None


def with_item_callee(item: cst.WithItem) -> str | None:
    """What a with-item calls, as :func:`dotted` spells it (`async with await maker():` too):
    ``session.begin_nested`` for ``with session.begin_nested():``; None for an item that is
    not a call."""
    expr = item.item.expression if isinstance(item.item, cst.Await) else item.item
    return dotted(expr.func) if isinstance(expr, cst.Call) else None


def function_facts(ctx: FileContext, qualname: str) -> Function | None:
    return ctx.function_facts(qualname)


def rebinds(fn: cst.FunctionDef, name: str) -> bool:
    """Does anything in ``fn``'s body bind ``name`` (assignment, for, with, walrus, del,
    import, nested def/class, global/nonlocal)? Conservative: nested scopes count too."""
    return bindings(fn, name) > 0


def bindings(fn: cst.FunctionDef, name: str) -> int:
    """How many places in ``fn``'s body bind ``name`` (as :func:`rebinds` counts them)."""
    target = m.Name(name)
    patterns = {  # one per node type: only nodes of these types are matched (one walk, no visit)
        cst.AssignTarget: m.AssignTarget(target=target), cst.AugAssign: m.AugAssign(target=target),
        cst.AnnAssign: m.AnnAssign(target=target, value=m.DoNotCare()), cst.For: m.For(target=target),
        cst.AsName: m.AsName(name=target), cst.NamedExpr: m.NamedExpr(target=target), cst.Del: m.Del(target=target),
        cst.FunctionDef: m.FunctionDef(name=target), cst.ClassDef: m.ClassDef(name=target),
        cst.CompFor: m.CompFor(target=target),
        cst.Global: m.Global(names=[m.ZeroOrMore(), m.NameItem(name=target), m.ZeroOrMore()]),
        cst.Nonlocal: m.Nonlocal(names=[m.ZeroOrMore(), m.NameItem(name=target), m.ZeroOrMore()]),
        cst.Tuple: m.Tuple(elements=[m.ZeroOrMore(), m.Element(value=target), m.ZeroOrMore()]),
        cst.List: m.List(elements=[m.ZeroOrMore(), m.Element(value=target), m.ZeroOrMore()]),
        cst.StarredElement: m.StarredElement(value=target),
    }
    count = 0
    for found in nodes(fn.body):
        pattern = patterns.get(type(found))
        if pattern is None or not m.matches(found, pattern):
            continue
        if isinstance(found, (cst.Tuple, cst.List)) and not _is_target(fn, found):
            continue
        count += 1
    return count


def _is_target(fn: cst.FunctionDef, node: cst.CSTNode) -> bool:
    """Is the tuple/list ``node`` an assignment or loop target in ``fn``?"""
    for holder in m.findall(fn.body, m.AssignTarget() | m.For() | m.CompFor() | m.AsName()):
        target = getattr(holder, "target", None) or getattr(holder, "name", None)
        if target is node:
            return True
    return False


def param_facts(facts: Function | None, name: str) -> Param | None:
    if facts is None:
        return None
    for p in facts.params:
        if p.name == name:
            return p
    return None


def awaited_calls(fn: cst.FunctionDef) -> set[int]:
    return {id(a.expression) for a in m.findall(fn, m.Await(expression=m.Call()))}  # type: ignore[attr-defined]


def calls_on(fn: cst.FunctionDef, owner: str) -> Iterator[cst.Call]:
    """Every ``owner.method(...)`` call in ``fn`` (nested functions included)."""
    for call in m.findall(fn, m.Call(func=m.Attribute())):
        assert isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)
        if dotted(call.func.value) == owner:
            yield call


def session_is_async(ctx: FileContext, fn: cst.FunctionDef, owner: str, facts: Function | None) -> bool | None:
    """Is the session expression ``owner`` an AsyncSession in ``fn``? None when unknown."""
    if fn.asynchronous is None:
        return False
    index: ProjectIndex = ctx.index
    param = param_facts(facts, owner)
    if param is not None:
        kind = index.session_class(param.annotation) if index is not None else names.session_class(param.annotation)
        if kind is not None:
            return kind
    awaited = plain = 0
    awaited_ids = awaited_calls(fn)
    for call in calls_on(fn, owner):
        assert isinstance(call.func, cst.Attribute)  # calls_on yields attribute calls only
        method = call.func.attr.value
        if method in names.ASYNC_METHODS:
            if id(call) in awaited_ids:
                awaited += 1
            else:
                plain += 1
    if awaited and not plain:
        return True
    if plain and not awaited:
        return False
    if param is not None and index is not None:
        dep, _ = index.param_dependency(param)
        provider = index.function(index.session_provider(dep)) if dep else None
        if provider is not None:
            kind = index.session_class(provider.returns)
            if kind is not None:
                return kind
            for opened in provider.opened:
                kind = index.opens_session(opened.factory)
                if kind is not None:
                    return kind
    return None


def await_if(value: cst.BaseExpression, is_async: bool) -> cst.BaseExpression:
    return cst.Await(expression=value) if is_async else value


def to_name(name: str) -> Transform:
    """An edit's replacement: the node becomes the name ``name``."""
    return lambda _updated: cst.Name(name)


def statement_calls(stmt: cst.CSTNode) -> list[tuple[cst.BaseSmallStatement, cst.Call | None]] | None:
    """For a line of small statements (``a(); await b()``): each with the call it is as a whole
    (``await`` stripped), or None for one that is not a call; None for any other statement."""
    if not isinstance(stmt, cst.SimpleStatementLine):
        return None
    out: list[tuple[cst.BaseSmallStatement, cst.Call | None]] = []
    for small in stmt.body:
        value = small.value if isinstance(small, cst.Expr) else None
        while isinstance(value, cst.Await):
            value = value.expression
        out.append((small, value if isinstance(value, cst.Call) else None))
    return out


def holds_session(index: ProjectIndex, fn: Function) -> bool:
    """Do ``fn``'s facts show a session it holds outside any `with` (as :func:`~.flow.sessions`
    finds them; a `with` shows in the module's ``all_with_callees``): a parameter typed as a
    session or given by a session provider, a name bound to a session it opens (`session =
    AsyncMaker()`), a session decorator? The gates' question, from the index facts; the two
    must change together."""
    return any(index.is_session_name(fn, local) for local in fn.session_names) or any(
        index.session_class(p.annotation) is not None or index.session_provider(index.param_dependency(p)[0]) is not None
        for p in fn.params) or any(index.decorator(d) is not None for d in fn.decorators)


def calls_a_scope(index: ProjectIndex, facts: ModuleFacts) -> bool:
    """Does a with-statement of the module call a session scope of the project (or a name it
    neither defines nor imports, which may be one)? What :func:`~.flow.with_scopes` reads."""
    return index.any_scope(c for c in facts.all_with_callees if not c.startswith(names.WITH_VALUE))


def enters_a_session(index: ProjectIndex, facts: ModuleFacts) -> bool:
    """Might a with-statement of the module open a session scope or enter a session (what
    :func:`~.flow.scoped_sessions` reads)? A call of a scope; or a value (`async with
    session:`, `with self.session:`) where a function holds a session (:func:`holds_session`)
    or a class of the module keeps one on ``self``. `async with lock:` in a module that holds
    no session is not."""
    if calls_a_scope(index, facts):
        return True
    values = [c[len(names.WITH_VALUE):] for c in facts.all_with_callees if c.startswith(names.WITH_VALUE)]
    if not values:
        return False
    if any(holds_session(index, fn) for fn in facts.functions.values()):
        return True
    kept = {v.partition(".")[2] for v in values if v.startswith("self.") and v.count(".") == 1}
    return any(index.self_session_settings(facts, cls, attr) is not None for cls in facts.classes for attr in kept)


def holds_a_session(index: ProjectIndex, facts: ModuleFacts) -> bool:
    """Might a function of the module hold a session, as :func:`~.flow.held` knows one? A
    scope a with-statement calls, a session a function holds (:func:`holds_session`), one a
    class keeps on ``self``, or a registry it imports or defines (Flask-SQLAlchemy's
    `db.session`, a `scoped_session` factory; reached through any module on the way to it)."""
    if calls_a_scope(index, facts) or any(holds_session(index, fn) for fn in facts.functions.values()):
        return True
    for key in facts.self_values:  # "Class.attr"
        cls, _, attr = key.rpartition(".")
        if cls and index.self_session(facts, cls, attr):
            return True
    registries = index.remember(("registries",), lambda: _registries(index))
    if facts.module in registries or any(target in registries for target in facts.imports.values()):
        return True
    # a registry imported from a module that re-exports it (`from app.models import db`)
    return any(index.flask_session(f"{target}.session") or (factory := index.factory(target)) is not None
               and factory.scoped for target in facts.imports.values())


def _registries(index: ProjectIndex) -> frozenset[str]:
    """The qualified names of the project's session registries, and of every module and
    package on the way to one (`app`, `app.ext`, `app.ext.db`)."""
    found: list[str] = []
    for mod in index.modules.values():
        prefix = f"{mod.module}." if mod.module else ""
        found += [prefix + db for db in mod.flask_dbs]
        found += [q for name in mod.factories if (f := index.factory(q := prefix + name)) is not None and f.scoped]
    found += [q for q, f in index.config_factories.items() if f.scoped]
    out: set[str] = set()
    for q in found:
        parts = q.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return frozenset(out)


def builds_a_model(index: ProjectIndex, facts: ModuleFacts) -> bool:
    """Might the module build a model (`User(...)`, `models.User(...)`), as
    :func:`~.flow.binding_of` knows a constructor: a call of a name :func:`~.flow.model_for`
    resolves to a model, through the module's imports or, its last resort, by the class name
    alone (a star import may bind any name)?"""
    called = facts.all_called | facts.all_methods
    if facts.star_imports or not model_names(index).isdisjoint(called):
        return True
    if any(local in called and index.model(target) is not None for local, target in facts.imports.items()):
        return True
    return any(c in called and index.model(facts.own(c)) is not None for c in facts.classes)


def names_a_model(index: ProjectIndex, facts: ModuleFacts) -> bool:
    """Might the module's code know an object for an ORM instance, as the passes bind one: a
    model it builds (:func:`builds_a_model`); an annotation of a parameter or a name that
    resolves to a model (through its imports, a class of its own, a module's attribute
    `models.User`, `import app.models` then `app.models.User`); or a load through a session
    it holds (:func:`holds_a_session`), of a model named any way (:func:`~.flow.model_for`
    takes a class name alone for the model of that name, however the module binds it)?"""
    if builds_a_model(index, facts):
        return True
    if any(index.model(p.annotation) is not None for fn in facts.functions.values() for p in fn.params):
        return True
    if any(index.model(target) is not None for target in facts.imports.values()) or any(
            index.model(facts.own(c)) is not None for c in facts.classes):
        return True
    read = model_names(index) & facts.all_attributes  # `models.User`, `app.models.User`: of an imported module?
    if any(index.model(f"{target}.{name}") is not None for target in facts.imports.values() for name in read):
        return True
    if read and any(q.rsplit(".", 1)[-1] in read and any(q.startswith(target + ".") for target in facts.imports.values())
                    for q in index.models()):
        return True
    return holds_a_session(index, facts)  # a load through it, of a model named any way (model_for's last resort too)


def model_names(index: ProjectIndex) -> frozenset[str]:
    """The names a model may be spelled by: its class name, and every name a module of the
    project imports it as (`from .models import User as Account`)."""
    def compute() -> frozenset[str]:
        out = {q.rsplit(".", 1)[-1] for q in index.models()}
        for module in index.modules.values():
            out.update(local for local, target in module.imports.items() if index.model(target) is not None)
        return frozenset(out)
    return index.remember(("model-names",), compute)


@dataclass(frozen=True)
class Callees:
    """Project functions chosen by a question (see :func:`callees`)."""

    chosen: frozenset[int]  # the ids of their facts

    def called_in(self, index: ProjectIndex, facts: ModuleFacts) -> bool:
        """Does the module call one of them, as the passes resolve a callee (its name through
        the module's imports, re-exports followed: ``qualified_calls``), or a method of its own
        classes among them on ``self`` (`await self._prepare(id)`)?"""
        if any((fn := index.function(q)) is not None and id(fn) in self.chosen for q in facts.qualified_calls):
            return True
        return any("." in q and id(fn) in self.chosen and q.rsplit(".", 1)[-1] in facts.all_methods
                   for q, fn in facts.functions.items())


def callees(index: ProjectIndex, key: str, wanted: Callable[[str, Function], bool]) -> Callees:
    """The project functions for which ``wanted(qualified name, facts)`` holds. ``key`` names
    the question, for the index's memory."""
    def compute() -> Callees:
        return Callees(frozenset(id(fn) for module in index.modules.values() for qualname, fn in module.functions.items()
                                 if wanted(module.own(qualname), fn)))
    return index.remember(("callees", key), compute)
