"""Straight-line facts about one function, for the passes that reason about session scopes.

:func:`events` walks a function body in source order and records what the passes care about:
session method calls, assignments, attribute reads and writes, returns and yields, and the
entry and exit of ``with`` blocks, each with its *path*: the statements and blocks that
enclose it. Paths answer "is this statement in the same block as that one, or an enclosing
one?" without parent metadata, and name the statement where an insertion can go.

:func:`sessions` says which names of the function are sessions, and what the project index
knows of them: async or not, whether they expire on commit, whether their scope commits on
exit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from functools import cache, partial
from typing import TYPE_CHECKING

from .. import names
from ..lazy import lazy
from .base import FileContext, NoSource, own_hook, visit, visit_with
from .helpers import argument_position, bindings, dotted, with_binds

if TYPE_CHECKING:
    import libcst as cst

    from .. import index as index_mod
    from ..index import Model, ProjectIndex, Scope
    _VisitorBase = cst.CSTVisitor
else:
    cst = lazy("libcst")
    index_mod = lazy("codemods.index")  # `rules` and `explain` need the passes, not the index
    _VisitorBase = object

# --------------------------------------------------------------------------- events


class EventKind(str, Enum):
    """What an :class:`Event` is (a ``str``, so it also compares equal to its value)."""

    CALL = "call"  # owner.name(args): a method call on a dotted owner
    ASSIGN = "assign"  # name = value (a loop variable too: value None, args = (the iterable,))
    READ = "read"  # owner.name read
    WRITE = "write"  # owner.name = ...
    METHOD = "method"  # owner.name(...) where owner is a plain name (a method of an object)
    ESCAPE = "escape"  # name returned or yielded
    RETURN = "return"
    USE = "use"  # name used otherwise (passed to a call, put in a container)
    NESTED = "nested"  # name used in a nested function or lambda
    WITH = "with"
    ENDWITH = "endwith"
    IF = "if"
    LOOP = "loop"


@dataclass
class Event:
    kind: EventKind
    node: cst.CSTNode
    path: tuple[cst.CSTNode, ...]  # enclosing blocks and statements, outermost first
    owner: str | None = None  # call: the dotted owner (session); read/write: the object name
    name: str | None = None  # call: method; read/write: attribute; assign/escape/use: name
    args: tuple[str | None, ...] = ()  # call: dotted names of the positional arguments
    value: cst.BaseExpression | None = None  # assign: the value; use: the call
    index: int = 0

    @property
    def statement(self) -> cst.BaseStatement:
        """The innermost statement holding the event (a statement of an IndentedBlock)."""
        for node in reversed(self.path):
            if isinstance(node, cst.BaseStatement):
                return node
        raise LookupError("event outside any statement")


class _Events(_VisitorBase):
    """The event walk. Its libcst base class is added on first use (:func:`_collector`), so
    that importing the passes does not import libcst."""

    def __init__(self) -> None:
        super().__init__()
        self.path: list[cst.CSTNode] = []
        self.out: list[Event] = []
        self._stores: set[int] = set()
        self._funcs: set[int] = set()
        self._depth = 0  # nested function/lambda/class depth

    def _add(self, kind: EventKind, node: cst.CSTNode, **kw) -> None:
        self.out.append(Event(kind, node, tuple(self.path), index=len(self.out), **kw))

    # structure ------------------------------------------------------------------
    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self.path.append(node)

    def leave_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self.path.pop()

    def on_visit(self, node: cst.CSTNode) -> bool:
        # What libcst's on_visit does (the node type's visit_ hook), and the nesting noted
        # first; the hooks and the role of each node type looked up once per type.
        role, enter, _ = _ROLES.get(type(node)) or _role(type(self), type(node))
        if role is _Role.SCOPE:
            self._depth += 1
            self.path.append(node)
        elif role is _Role.LAMBDA:
            self._depth += 1
        elif role is _Role.STATEMENT:
            self.path.append(node)
        return enter is None or enter(self, node) is not False

    def on_leave(self, original_node: cst.CSTNode) -> None:
        role, _, leave = _ROLES.get(type(original_node)) or _role(type(self), type(original_node))
        if leave is not None:
            leave(self, original_node)
        if role is _Role.SCOPE:
            self._depth -= 1
            self.path.pop()
        elif role is _Role.LAMBDA:
            self._depth -= 1
        elif role is _Role.STATEMENT:
            self.path.pop()

    def visit_If(self, node: cst.If) -> None:
        if not self._depth:
            self._add(EventKind.IF, node)

    def visit_While(self, node: cst.While) -> None:
        if not self._depth:
            self._add(EventKind.LOOP, node)

    # with blocks ------------------------------------------------------------------
    def visit_With(self, node: cst.With) -> None:
        if not self._depth:
            self._add(EventKind.WITH, node)

    def leave_With(self, node: cst.With) -> None:
        if not self._depth:
            self.out.append(Event(EventKind.ENDWITH, node, tuple(self.path) + (node,), index=len(self.out)))

    # stores and calls ---------------------------------------------------------------
    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._stores.add(id(node.target))

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._stores.add(id(node.target))

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._stores.add(id(node.target))

    def visit_Del(self, node: cst.Del) -> None:
        self._stores.add(id(node.target))

    def visit_For(self, node: cst.For) -> None:
        self._stores.add(id(node.target))
        if not self._depth:
            self._add(EventKind.LOOP, node)

    def leave_Assign(self, node: cst.Assign) -> None:
        if self._depth:
            return
        for target in node.targets:
            if isinstance(target.target, cst.Name):
                self._add(EventKind.ASSIGN, node, name=target.target.value, value=node.value)

    def leave_AnnAssign(self, node: cst.AnnAssign) -> None:
        if not self._depth and isinstance(node.target, cst.Name) and node.value is not None:
            self._add(EventKind.ASSIGN, node, name=node.target.value, value=node.value)

    def visit_For_body(self, node: cst.For) -> None:
        # The loop variable is bound before the body runs: `for user in users:` reads as an
        # assignment whose value is the iterable.
        if not self._depth and isinstance(node.target, cst.Name):
            self._add(EventKind.ASSIGN, node, name=node.target.value, value=None,
                      args=(dotted(node.iter),))

    def visit_AsName(self, node: cst.AsName) -> None:
        self._stores.add(id(node.name))

    def visit_Call(self, node: cst.Call) -> None:
        self._funcs.add(id(node.func))
        if self._getattr_read(node):
            return  # its arguments are no use of the object
        if self._depth:
            for arg in node.args:
                if isinstance(arg.value, cst.Name):
                    self._add(EventKind.NESTED, arg.value, name=arg.value.value)
            return
        for arg in node.args:  # arguments are evaluated before the call
            if isinstance(arg.value, cst.Name):
                self._add(EventKind.USE, arg.value, name=arg.value.value, owner=dotted(node.func), value=node)
        if isinstance(node.func, cst.Attribute):
            owner = dotted(node.func.value)
            if owner is not None:
                self._add(EventKind.CALL, node, owner=owner, name=node.func.attr.value,
                          args=tuple(dotted(a.value) for a in node.args if not a.keyword))

    def _getattr_read(self, node: cst.Call) -> bool:
        """``getattr(obj, "attr", default)`` reads ``obj.attr``: the default catches a missing
        attribute, not a DetachedInstanceError; ``hasattr(obj, "attr")`` too (it catches only
        AttributeError)."""
        if self._depth or not isinstance(node.func, cst.Name) or node.func.value not in ("getattr", "hasattr"):
            return False
        wanted = (2, 3) if node.func.value == "getattr" else (2,)
        if len(node.args) not in wanted or any(a.keyword is not None or a.star for a in node.args):
            return False
        obj, attr = node.args[0].value, node.args[1].value
        owner = obj.value if isinstance(obj, cst.Name) else keyed(obj)
        if owner is not None and isinstance(attr, cst.SimpleString):
            name = attr.evaluated_value
            if isinstance(name, str) and name.isidentifier():
                self._add(EventKind.READ, node, owner=owner, name=name)
                return True
        return False

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if isinstance(node.value, cst.Name):
            obj = node.value.value
        elif not self._depth and (found := keyed(node.value)) is not None:
            obj = found  # `prep["chat"].agent`: what a constant key of a dict holds
        else:
            return
        if self._depth:
            self._add(EventKind.NESTED, node, name=obj)
            return
        if node.attr.value.startswith("__") and node.attr.value.endswith("__"):
            return  # obj.__dict__, obj.__class__: never a load
        if id(node) in self._stores:
            self._add(EventKind.WRITE, node, owner=obj, name=node.attr.value)
        elif id(node) in self._funcs:
            self._add(EventKind.METHOD, node, owner=obj, name=node.attr.value)
        else:
            self._add(EventKind.READ, node, owner=obj, name=node.attr.value)

    def visit_Name(self, node: cst.Name) -> None:
        if self._depth and id(node) not in self._stores:
            self._add(EventKind.NESTED, node, name=node.value)

    def visit_Return(self, node: cst.Return) -> None:
        if not self._depth and node.value is not None:
            names_ = list(_escaping_names(node.value))
            for name in names_:
                self._add(EventKind.ESCAPE, node, name=name)
            if not names_ and isinstance(node.value, (cst.Call, cst.Await)):
                self._add(EventKind.RETURN, node, value=node.value)  # `return session.get(...)`

    def visit_Yield(self, node: cst.Yield) -> None:
        if not self._depth and isinstance(node.value, cst.BaseExpression):
            for name in _escaping_names(node.value):
                self._add(EventKind.ESCAPE, node, name=name)


class _Role(Enum):
    """What a node is to the event walk's nesting."""

    SCOPE = 1  # a function or class: nested scope, and on the path
    LAMBDA = 2  # a nested scope, not on the path
    STATEMENT = 3  # on the path
    OTHER = 4


_ROLES: dict[type, tuple[_Role, Callable | None, Callable | None]] = {}


def _role(collector: type, node_type: type) -> tuple[_Role, Callable | None, Callable | None]:
    """The role of ``node_type`` and the collector's visit_/leave_ hooks for it. (One
    collector type, so the hooks can be kept by node type alone.)"""
    if issubclass(node_type, (cst.FunctionDef, cst.ClassDef)):
        role = _Role.SCOPE
    elif issubclass(node_type, cst.Lambda):
        role = _Role.LAMBDA
    elif issubclass(node_type, cst.BaseStatement):
        role = _Role.STATEMENT
    else:
        role = _Role.OTHER
    found = _ROLES[node_type] = (role, own_hook(collector, f"visit_{node_type.__name__}"),
                                 own_hook(collector, f"leave_{node_type.__name__}"))
    return found


def keyed(node: cst.BaseExpression) -> str | None:
    """``prep["chat"]`` (a name subscripted with a constant string) as the owner name events
    give what it holds: ``prep["chat"]``; None for any other expression."""
    if not isinstance(node, cst.Subscript) or not isinstance(node.value, cst.Name) or len(node.slice) != 1:
        return None
    index = node.slice[0].slice
    key = index.value.evaluated_value if isinstance(index, cst.Index) and isinstance(index.value, cst.SimpleString) \
        else None
    return keyed_name(node.value.value, key) if isinstance(key, str) else None


def keyed_name(name: str, key: str) -> str:
    """The owner name of what ``name[key]`` holds (see :func:`keyed`)."""
    return f'{name}["{key}"]'


def _escaping_names(value: cst.BaseExpression) -> Iterator[str]:
    if isinstance(value, cst.Name):
        yield value.value
    elif isinstance(value, (cst.Tuple, cst.List)):
        for el in value.elements:
            if isinstance(el.value, cst.Name):
                yield el.value.value


@cache
def _collector_type() -> type:
    return type("_Collector", (_Events, cst.CSTVisitor), {})


def _collector() -> _Events:
    return _collector_type()()


def events(fn: cst.FunctionDef, ctx: FileContext | None = None) -> list[Event]:
    """The events of ``fn`` in source order (computed once per file when ``ctx`` is given)."""
    if ctx is not None:
        return ctx.cached(("events", id(fn)), lambda: events(fn))
    if not isinstance(fn.body, cst.IndentedBlock):
        return []
    collector = _collector()
    try:
        visit(fn.body, collector)  # type: ignore[arg-type]  # a CSTVisitor: see _collector_type
    except NoSource:
        return libcst_events(fn)
    return collector.out


def with_end(evs: list[Event], block: cst.CSTNode) -> int:
    """The index of the event that ends the with-statement ``block`` (the walk gives every
    with-statement it enters an end)."""
    return next(e.index for e in evs if e.kind == EventKind.ENDWITH and e.node is block)


def libcst_events(fn: cst.FunctionDef) -> list[Event]:
    """:func:`events` by a libcst visit (what the plain walk is checked against)."""
    collector = _collector()
    if isinstance(fn.body, cst.IndentedBlock):
        fn.body.visit(collector)
    return collector.out


def inside(event: Event, node: cst.CSTNode) -> bool:
    return any(n is node for n in event.path)


def handler_block(event: Event) -> cst.IndentedBlock | None:
    """The except-handler block of the innermost `try` holding ``event``, if it is in one."""
    for i in range(len(event.path) - 2, -1, -1):
        node = event.path[i]
        if isinstance(node, (cst.Try, cst.TryStar)):
            block = event.path[i + 1]
            return block if any(h.body is block for h in node.handlers) else None  # type: ignore[return-value]
    return None


def in_finally(event: Event) -> bool:
    """Is ``event`` in the `finally` block of a `try` (it runs on every path out of it)?"""
    return any(isinstance(node, (cst.Try, cst.TryStar)) and node.finalbody is not None
               and event.path[i + 1] is node.finalbody.body for i, node in enumerate(event.path[:-1]))


# --------------------------------------------------------------------------- sessions


@dataclass
class SessionRef:
    name: str  # dotted expression: "session", "self.db"
    is_async: bool | None
    expire_on_commit: bool
    commits_on_exit: bool = False
    block: cst.With | None = None  # the with-statement whose body is its scope
    decorated: bool = False  # the whole function runs inside a session decorator


def sessions(ctx: FileContext, fn: cst.FunctionDef, qualname: str, evs: list[Event] | None = None) -> dict[str, SessionRef]:
    """The names of ``fn`` that hold sessions (not services) and what is known of them
    (computed once per function and file; callers must not change the result)."""
    return ctx.cached(("sessions", id(fn)), lambda: _sessions(ctx, fn, qualname, evs))


def _sessions(ctx: FileContext, fn: cst.FunctionDef, qualname: str, evs: list[Event] | None) -> dict[str, SessionRef]:
    index: ProjectIndex = ctx.index
    facts = ctx.function_facts(qualname)
    found: dict[str, SessionRef] = {}
    # with-blocks (outermost first, so inner rebinding wins)
    for ev in evs if evs is not None else events(fn):
        if ev.kind != EventKind.WITH:
            continue
        for item in ev.node.items:  # type: ignore[attr-defined]
            bound = with_binds(item)
            if bound is None:
                continue
            ref = _with_item_session(index, partial(with_callee, ctx, ev.node), item.item, ev.node)  # type: ignore[arg-type]
            if ref is not None:
                ref.name = bound
                found[ref.name] = ref
    if facts is not None:
        for p in facts.params:
            dep, _ = index.param_dependency(p)
            provider = index.session_provider(dep) if dep else None
            kind = index.session_class(p.annotation)
            if kind is not None and p.name not in found and provider is None:
                found[p.name] = SessionRef(p.name, kind, index.expire_on_commit(None))
            # `db: AsyncSession = Depends(get_db)`: the provider's factory says how it expires
            if provider is not None and p.name not in found:
                prov = index.function(provider)
                opened = next((o for o in prov.opened if index.opens_session(o.factory) is not None), None) if prov else None
                found[p.name] = SessionRef(
                    p.name, index.opens_session(opened.factory) if opened else kind,
                    index.expire_on_commit(opened.factory if opened else None,
                                           opened.expire_on_commit if opened else None))
        for local, factory in facts.session_names.items():
            if local in found or any(p.name == local for p in facts.params):
                continue
            if not index.is_session_name(facts, local):
                continue
            found[local] = SessionRef(local, index.opens_session(factory), index.function_expires(facts, local))
        for deco in facts.decorators:
            d = index.decorator(deco)
            if d is None:
                continue
            params = [p.name for p in facts.params]
            name = d.keyword if d.keyword else (params[d.position] if d.position is not None and d.position < len(params) else None)
            if name is not None:
                found[name] = SessionRef(name, index.opens_session(d.factory),
                                         index.expire_on_commit(d.factory, d.expire_on_commit),
                                         commits_on_exit=d.commits, decorated=True)
    return found


def scoped_sessions(ctx: FileContext, fn: cst.FunctionDef, qualname: str, evs: list[Event]) -> list[SessionRef]:
    """Every session scope of ``fn``: one per with-block (a name reused by several blocks
    gives several), and the decorated function's session."""
    index: ProjectIndex = ctx.index
    out: list[SessionRef] = []
    for ev in evs:
        if ev.kind != EventKind.WITH:
            continue
        for item in ev.node.items:  # type: ignore[attr-defined]
            bound = with_binds(item)
            if bound is None:
                continue
            ref = _with_item_session(index, partial(with_callee, ctx, ev.node), item.item, ev.node)  # type: ignore[arg-type]
            if ref is not None:
                ref.name = bound
                out.append(ref)
    known = sessions(ctx, fn, qualname, evs)
    for ev in evs:  # `with session:` / `async with self.session as s:`: the block closes it
        if ev.kind != EventKind.WITH:
            continue
        for item in ev.node.items:  # type: ignore[attr-defined]
            ref = _instance_session(ctx, qualname, item.item, known)
            if ref is None:
                continue
            bound = with_binds(item)
            if bound is not None:
                ref.name = bound
            ref.block = ev.node  # type: ignore[assignment]
            out.append(ref)
    out.extend(r for r in known.values() if r.decorated)
    return out


def _instance_session(ctx: FileContext, qualname: str, expr: cst.BaseExpression,
                      known: dict[str, SessionRef]) -> SessionRef | None:
    """A with-item that is a session itself (not a call making one): a local or parameter
    holding a session, or ``self.<attr>`` of a class that keeps one."""
    name = dotted(expr)
    if name is None:
        return None
    if name in known and known[name].block is None:
        ref = known[name]
        return SessionRef(name, ref.is_async, ref.expire_on_commit)
    head, _, attr = name.partition(".")
    if head != "self" or not attr or "." in attr or "." not in qualname or ctx.facts is None:
        return None
    settings = ctx.index.self_session_settings(ctx.facts, qualname.rsplit(".", 1)[0], attr)
    if settings is None:
        return None
    return SessionRef(name, settings[0], settings[1])


def _factory_of(func: cst.BaseExpression) -> tuple[cst.BaseExpression, bool]:
    """What a `with` item's call opens: ``factory.begin()`` gives (factory, True), any other
    callee gives (callee, False)."""
    if isinstance(func, cst.Attribute) and func.attr.value == "begin":
        return func.value, True
    return func, False


def with_callee(ctx: FileContext, node: cst.With, callee: str | None) -> str | None:
    """The qualified name of a with-item's callee, as the index names it: ``self.<attr>`` in
    a method is what the class keeps there, ``<module>.<Class>.<attr>``."""
    if callee is None or not (callee.startswith("self.") and callee.count(".") == 1):
        return ctx.qualify(callee)
    fn = next((a for a in ctx.ancestors(node) if isinstance(a, cst.FunctionDef)), None)
    block = ctx.parent(fn) if fn is not None else None
    if fn is None or block is None or not isinstance(ctx.parent(block), cst.ClassDef):
        return None  # not a method: `self` is no instance of a class here
    qualname = qualname_of(ctx, fn)
    if qualname is None or "." not in qualname:
        return None
    local = f"{qualname.rsplit('.', 1)[0]}.{callee[5:]}"
    module = ctx.facts.module if ctx.facts is not None else ""
    return f"{module}.{local}" if module else local


def _with_item_session(index: ProjectIndex, qualify, expr: cst.BaseExpression, block: cst.With) -> SessionRef | None:
    if isinstance(expr, cst.Await):
        expr = expr.expression
    if not isinstance(expr, cst.Call):
        return None
    target, begin = _factory_of(expr.func)
    callee = dotted(target)
    if callee is None:
        return None
    stated = None
    for arg in expr.args:
        if arg.keyword is not None and arg.keyword.value == "expire_on_commit" and isinstance(arg.value, cst.Name):
            stated = {"True": True, "False": False}.get(arg.value.value)
    scope = index.scope(qualify(callee), begin=begin, stated_expire=stated)
    if scope is None or scope.yields != "session":
        return None
    return SessionRef("", scope.is_async, scope.expire_on_commit, scope.commits_on_exit, block=block)


# --------------------------------------------------------------------------- objects


class BindingKind(str, Enum):
    """How a name got its value (a ``str``, so it also compares equal to its value)."""

    NEW = "new"  # Model(...): constructed here
    LOADED = "loaded"  # one instance loaded through a session
    LIST = "list"  # several instances loaded through a session
    PARAM = "param"
    OTHER = "other"


@dataclass
class Binding:
    """How a name got its value: constructed, loaded through a session, or unknown."""

    kind: BindingKind
    model: str | None = None  # class name as written, when known
    session: str | None = None
    event: Event | None = None
    optional: bool = False  # the load may give None (get, first, one_or_none, scalar...)


LIST_METHODS = {"all", "fetchall", "unique"}
# Loads that give None when there is no row.
MAYBE_NONE = {"get", "first", "one_or_none", "scalar_one_or_none", "scalar"}
# What a query's chain may end in that gives no instance: a bulk statement's row count, a
# count, a construct to embed (`session.query(User).filter(...).update({...})` is an int).
NOT_INSTANCES = frozenset({"update", "delete", "count", "exists", "subquery", "scalar_subquery", "cte",
                           "rowcount"})
# Statements whose execution returns no instance: `session.execute(update(User).values(...))`.
BULK_STATEMENTS = frozenset({"update", "delete", "insert"})


def binding_of(ctx: FileContext, value: cst.BaseExpression | None, sessions_: dict[str, SessionRef]) -> Binding:
    """Classify an assigned value: ``Model(...)``, ``S.get(Model, ...)``, ``S.scalars(select(M)).all()``..."""
    if value is None:
        return Binding(BindingKind.OTHER)
    node = value
    while isinstance(node, cst.Await):
        node = node.expression
    chain: list[str] = []
    current = node
    while True:
        if isinstance(current, cst.Await):
            current = current.expression
            continue
        if isinstance(current, cst.Call) and isinstance(current.func, cst.Attribute):
            method = current.func.attr.value
            owner = dotted(current.func.value)
            if owner in sessions_ and method in names.LOAD_METHODS:
                if NOT_INSTANCES & set(chain) or method == "execute" and _bulk(current):
                    return Binding(BindingKind.OTHER)
                model = _model_arg(current)
                is_list = (bool(chain and chain[0] in LIST_METHODS) or (not chain and method in ("scalars",))
                           or chain in (["scalars"], ["scalars", "all"], ["unique", "scalars", "all"],
                                        ["scalars", "unique", "all"]))
                last = chain[-1] if chain else method
                return Binding(BindingKind.LIST if is_list else BindingKind.LOADED, model, owner,
                               optional=not is_list and last in MAYBE_NONE)
            chain.insert(0, method)
            current = current.func.value
            continue
        break
    cls = class_called(node)
    if cls is not None and model_for(ctx, dotted(node.func)) is not None:  # type: ignore[attr-defined]
        return Binding(BindingKind.NEW, cls)
    return Binding(BindingKind.OTHER)


def class_called(value: cst.BaseExpression | None) -> str | None:
    """The class name `Cls(...)` (or `mod.Cls(...)`) calls, by its capital; None for any other value."""
    name = (dotted(value.func) or "").rsplit(".", 1)[-1] if isinstance(value, cst.Call) else ""
    return name if name[:1].isupper() else None


def _bulk(call: cst.Call) -> bool:
    """Does ``call`` execute a bulk statement (`execute(update(User).where(...).values(...))`),
    which returns a row count, not instances (unless it has a `.returning(...)`)?"""
    node = call.args[0].value if call.args else None
    for _ in range(12):
        if not isinstance(node, cst.Call):
            return False
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value == "returning":
            return False
        if isinstance(func, cst.Attribute) and func.attr.value not in BULK_STATEMENTS:
            node = func.value  # a method chain
        else:
            return (dotted(func) or "").rsplit(".", 1)[-1] in BULK_STATEMENTS
    return False


def _model_arg(call: cst.Call) -> str | None:
    """The model a load names: get(User, 1), query(User), execute(select(User).where(...))."""
    if not call.args:
        return None
    node: cst.BaseExpression = call.args[0].value
    for _ in range(12):
        if not isinstance(node, cst.Call):
            break
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value not in ("select", "query"):
            node = func.value  # a method chain: select(User).where(...).limit(1)
        elif node.args:
            node = node.args[0].value  # select(User), sa.select(User), query(User)
        else:
            return None
    if isinstance(node, cst.Attribute):
        node = node.attr
    if isinstance(node, cst.Name) and node.value[:1].isupper():
        return node.value
    return None


def reloads_every_row(fn: cst.FunctionDef, evs: list[Event], after: int, leave: Event, S: str,
                      model: str | None) -> bool:
    """Does every path from index ``after`` (the last commit) to ``leave`` load, through
    session ``S``, every row of ``model``, unfiltered and read to the end
    (`S.exec(select(M)).all()`, `S.scalars(select(M)).all()`, `S.query(M).all()`, awaited
    `(await S.scalars(select(M))).all()`, the statement
    maybe a name bound once, to `select(M)`, before it), with nothing before it that detaches
    instances (`close()`, `expunge_all()`, `expunge()`) and nothing after it that expires them
    again (`rollback()`, `expire_all()`, `expire()`)? Loading the row of an expired instance of
    the session refreshes it, so each instance of ``model`` the session holds is loaded again."""
    if not model:
        return False

    def undone(load: Event, started: int) -> bool:
        return any(e.kind in (EventKind.CALL, EventKind.METHOD) and e.owner == S and (
            e.name in _DETACHING and after < e.index < load.index or e.name in _EXPIRING and started < e.index < leave.index)
            for e in evs)

    for e in evs:
        if e.kind == EventKind.ASSIGN and after < e.index < leave.index and reachable_only_through(leave, e):
            started = _loads_every_row(fn, evs, e, S, model)
            if started is not None and after < started and not undone(e, started):
                return True
    return False


# Session calls after which an instance is no longer the session's to reload, or is expired again.
_DETACHING = frozenset({"close", "expunge_all", "expunge", "reset", "invalidate"})
_EXPIRING = frozenset({"rollback", "expire_all", "expire"})


def _loads_every_row(fn: cst.FunctionDef, evs: list[Event], e: Event, S: str, model: str) -> int | None:
    """Is ``e`` an assignment of every row of ``model``, loaded through ``S`` and read to the
    end? The index of the statement that runs the query (``e``'s, or that of the result's name
    `e` reads to the end: `result = await S.scalars(select(M))`, then `result.all()`), or None."""
    if not isinstance(e.value, cst.Call):
        return None
    chain, node = _read_chain(e.value, S)
    started = e.index
    if isinstance(node, cst.Name):  # the result, bound once before on every path to `e`
        bound = _bound_once(fn, evs, e, node.value)
        if bound is None:
            return None
        before, node = _read_chain(bound.value, S)  # type: ignore[arg-type]
        chain, started = before + chain, bound.index
    if not (isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)) or len(node.args) != 1 \
            or chain not in (["all"], ["scalars", "all"], ["unique", "all"], ["scalars", "unique", "all"]):
        return None
    method, arg = node.func.attr.value, node.args[0].value
    if method == "query":
        return started if isinstance(arg, cst.Name) and arg.value == model else None
    if method not in ("exec", "execute", "scalars"):
        return None
    if isinstance(arg, cst.Name):  # `statement = select(M)`, its only binding, on every path to the load
        statement = _bound_once(fn, evs, e, arg.value)
        if statement is None:
            return None
        arg = statement.value  # type: ignore[assignment]
    selects = isinstance(arg, cst.Call) and (dotted(arg.func) or "").rsplit(".", 1)[-1] == "select" \
        and len(arg.args) == 1 and isinstance(arg.args[0].value, cst.Name) and arg.args[0].value.value == model
    return started if selects else None


def _read_chain(node: cst.BaseExpression, S: str) -> tuple[list[str], cst.BaseExpression]:
    """The methods called on a result, outermost last (`.scalars().all()`: scalars, all), and
    what they are called on: ``S``'s call, or a name; awaits are seen through."""
    chain: list[str] = []
    while isinstance(node, cst.Await):
        node = node.expression
    while isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and dotted(node.func.value) != S:
        chain.insert(0, node.func.attr.value)
        node = node.func.value
        while isinstance(node, cst.Await):  # `(await S.scalars(select(M))).all()`
            node = node.expression
    return chain, node


def _bound_once(fn: cst.FunctionDef, evs: list[Event], e: Event, name: str) -> Event | None:
    """The assignment of ``name`` when it is the name's only binding in ``fn``, before ``e``
    and on every path to it."""
    bound = [b for b in evs if b.kind == EventKind.ASSIGN and b.name == name]
    if len(bound) != 1 or bindings(fn, name) != 1 or not bound[0].index < e.index \
            or not reachable_only_through(e, bound[0]) or bound[0].value is None:
        return None
    return bound[0]


def model_for(ctx: FileContext, name: str | None):
    """The model a class name of this file refers to (through its imports), or None."""
    if not name:
        return None
    return ctx.index.model(ctx.qualify(name)) or ctx.index.model_named(name.rsplit(".", 1)[-1])


def capture_source(X: str, attr: str, reads: list[Event]) -> str:
    """What a capture of ``X.attr`` binds: the ``getattr(X, "attr", default)`` call when the
    code reads it that way (its default stays), else ``X.attr``."""
    for r in reads:
        if r.name == attr and isinstance(r.node, cst.Call):
            return cst.Module([]).code_for_node(r.node)
    return f"{X}.{attr}"


def unique_name(fn: cst.FunctionDef, wanted: str, taken: set[str] = frozenset()) -> str:  # type: ignore[assignment]
    """``wanted``, or ``wanted_2``... whichever no name in ``fn`` uses."""
    from . import match as m

    used = {n.value for n in m.findall(fn, m.Name())} | set(taken)  # type: ignore[attr-defined]
    if wanted not in used:
        return wanted
    i = 2
    while f"{wanted}_{i}" in used:
        i += 1
    return f"{wanted}_{i}"


def session_call(owner: str, method: str, args: list[str], is_async: bool, awaited: bool = True) -> cst.SimpleStatementLine:
    """A statement ``owner.method(args)`` (awaited when the method is a coroutine)."""
    code = f"{owner}.{method}({', '.join(args)})"
    if is_async and awaited and method not in names.PLAIN_METHODS:
        code = "await " + code
    return cst.parse_statement(code)  # type: ignore[return-value]


def aliases_of(evs: list[Event], X: str) -> set[str]:
    """X and the loop variables that iterate over X (`for user in users:`)."""
    out = {X}
    for e in evs:
        if e.kind == EventKind.ASSIGN and isinstance(e.node, cst.For) and e.args[:1] == (X,):
            out.add(e.name)  # type: ignore[arg-type]
    return out


@dataclass
class FunctionShape:
    """What a function contains (its nested functions excluded): lets a pass skip the
    functions it cannot match before computing their events. In the first round it comes
    from the index's ast facts; after a fix round (the code changed) from a libcst walk."""

    has_with: bool = False
    methods: set[str] = field(default_factory=set)  # x.method(...) names called
    calls: set[str] = field(default_factory=set)  # name(...) called
    with_callees: tuple[str, ...] | None = None  # qualified with-item callees (None: unknown)


def functions(module: cst.Module, ctx: FileContext | None = None) -> Iterator[tuple[str, cst.FunctionDef]]:
    """Every function with its qualified name as the index spells it (Class.method).

    A statement-level walk: expressions are never visited, so it costs little."""
    if ctx is not None:
        return iter(ctx.cached("functions", lambda: _statement_functions(module)))
    return iter(_statement_functions(module))


def function_named(ctx: FileContext, qualname: str) -> cst.FunctionDef | None:
    """The function of :func:`functions` called ``qualname`` (the first, when a module defines
    one name twice), looked up in a table made once per file."""
    def table() -> dict[str, cst.FunctionDef]:
        out: dict[str, cst.FunctionDef] = {}
        for q, f in functions(ctx.module, ctx):
            out.setdefault(q, f)
        return out

    return ctx.cached("functions-by-name", table).get(qualname)


def qualname_of(ctx: FileContext, fn: cst.FunctionDef) -> str | None:
    """The qualified name :func:`functions` gives ``fn`` (None for a function it does not
    list), looked up in a table made once per file."""
    by_id = ctx.cached("function-ids", lambda: {id(f): q for q, f in functions(ctx.module, ctx)})
    return by_id.get(id(fn))


def class_of(ctx: FileContext, fn: cst.FunctionDef) -> str | None:
    """The qualified name of the class ``fn`` is a method of (``Outer.Inner``); None for a
    function, or a method of a class defined inside a function. Looked up in a table made once
    per file by a statement-level walk that never enters a function's body."""
    return ctx.cached("method-classes", lambda: _method_classes(ctx.module)).get(id(fn))


def _method_classes(module: cst.Module) -> dict[int, str]:
    out: dict[int, str] = {}

    def walk(body, classes: str) -> None:
        for stmt in body:
            if isinstance(stmt, cst.FunctionDef):
                if classes:
                    out[id(stmt)] = classes
            elif isinstance(stmt, cst.ClassDef):
                if isinstance(stmt.body, cst.IndentedBlock):
                    walk(stmt.body.body, f"{classes}.{stmt.name.value}" if classes else stmt.name.value)
            elif isinstance(stmt, cst.BaseCompoundStatement):
                for block in _blocks(stmt):
                    walk(block, classes)

    walk(module.body, "")
    return out


def functions_calling(ctx: FileContext, method: str | None) -> Iterator[tuple[str, cst.FunctionDef]]:
    """The functions of :func:`functions` that call ``x.<method>(...)`` themselves (all of
    them when ``method`` is None)."""
    for qualname, fn in functions(ctx.module, ctx):
        if method is None or method in shape(ctx, fn, qualname).methods:
            yield qualname, fn


def _statement_functions(module: cst.Module) -> list[tuple[str, cst.FunctionDef]]:
    out: list[tuple[str, cst.FunctionDef]] = []

    def walk(body, prefix: str) -> None:
        for stmt in body:
            if isinstance(stmt, cst.FunctionDef):
                name = prefix + stmt.name.value
                out.append((name, stmt))
                if isinstance(stmt.body, cst.IndentedBlock):
                    walk(stmt.body.body, name + ".")
            elif isinstance(stmt, cst.ClassDef):
                if isinstance(stmt.body, cst.IndentedBlock):
                    walk(stmt.body.body, prefix + stmt.name.value + ".")
            elif isinstance(stmt, cst.BaseCompoundStatement):
                for block in _blocks(stmt):
                    walk(block, prefix)

    walk(module.body, "")
    own = [s for s in module.body if not isinstance(s, (cst.FunctionDef, cst.ClassDef))]
    if any(isinstance(s, cst.BaseCompoundStatement) for s in own):
        # The module's own statements, read as one function (the index does the same). The
        # statements are the module's own nodes: edits and positions apply to them as usual.
        body = cst.IndentedBlock(body=own)
        out.append((index_mod.MODULE_LEVEL, cst.FunctionDef(name=cst.Name("__module__"), params=cst.Parameters(), body=body)))
    return out


def _blocks(stmt: cst.BaseCompoundStatement) -> list:
    """The statement lists of a compound statement (body, elif/else, except, finally, cases)."""
    out: list = []

    def add(node) -> None:
        if node is None:
            return
        if isinstance(node, cst.IndentedBlock):
            out.append(node.body)
        elif isinstance(node, cst.If):
            add(node.body)
            add(node.orelse)
        elif isinstance(node, (cst.Else, cst.Finally, cst.ExceptHandler, cst.ExceptStarHandler, cst.MatchCase)):
            add(node.body)

    if isinstance(stmt, cst.Match):
        for case in stmt.cases:
            add(case.body)
        return out
    add(getattr(stmt, "body", None))
    add(getattr(stmt, "orelse", None))
    add(getattr(stmt, "finalbody", None))
    for handler in getattr(stmt, "handlers", ()):
        add(handler)
    return out


def has_try(fn: cst.FunctionDef) -> bool:
    """Does ``fn`` hold a try statement of its own (nested functions aside)? A statement-level
    walk, cheaper than :func:`events`."""
    def walk(body) -> bool:
        for stmt in body:
            if isinstance(stmt, (cst.Try, cst.TryStar)):
                return True
            if isinstance(stmt, cst.BaseCompoundStatement) and not isinstance(stmt, (cst.FunctionDef, cst.ClassDef)) \
                    and any(walk(block) for block in _blocks(stmt)):
                return True
        return False

    return isinstance(fn.body, cst.IndentedBlock) and walk(fn.body.body)


def shape(ctx: FileContext, fn: cst.FunctionDef, qualname: str | None = None) -> FunctionShape:
    return ctx.cached(("shape", id(fn)), lambda: _shape(ctx, fn, qualname))


def _shape(ctx: FileContext, fn: cst.FunctionDef, qualname: str | None) -> FunctionShape:
    if ctx.round == 0 and qualname is not None:
        facts = ctx.function_facts(qualname)
        if facts is not None:
            return FunctionShape(bool(facts.with_callees), facts.methods, facts.called, tuple(facts.with_callees))
    class V(cst.CSTVisitor):
        def __init__(self) -> None:
            super().__init__()
            self.found = FunctionShape()

        def on_visit(self, node: cst.CSTNode) -> bool:
            if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)) and node is not fn:
                return False
            if isinstance(node, cst.With):
                self.found.has_with = True
            elif isinstance(node, cst.Call):
                if isinstance(node.func, cst.Attribute):
                    self.found.methods.add(node.func.attr.value)
                elif isinstance(node.func, cst.Name):
                    self.found.calls.add(node.func.value)
            return True

    return visit_with(fn, V).found


def session_scoped(ctx: FileContext, fn: cst.FunctionDef, qualname: str) -> bool:
    """Might ``fn`` open a session scope with a `with` statement?"""
    found = shape(ctx, fn, qualname)
    if not found.has_with:
        return False
    if found.with_callees is None:
        return True
    index = ctx.index
    return any(q.startswith(index_mod.WITH_VALUE) or index.scope(q[:-2] if q.endswith("()") else q) is not None or
               (q.endswith("()") and index.opens_session(q) is not None) for q in found.with_callees)


def method_calls(ctx: FileContext, fn: cst.FunctionDef, method: str) -> list[tuple[cst.Call, cst.Expr | None]]:
    """``x.<method>(...)`` calls directly in ``fn`` (not in nested functions), each with its
    Expr statement when the call is a whole statement."""
    def collect() -> list[tuple[cst.Call, cst.Expr | None]]:
        class V(cst.CSTVisitor):
            def __init__(self) -> None:
                super().__init__()
                self.out: list[tuple[cst.Call, cst.Expr | None]] = []
                self.statements: dict[int, cst.Expr] = {}

            def on_visit(self, node: cst.CSTNode) -> bool:
                if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)) and node is not fn:
                    return False
                if isinstance(node, cst.SimpleStatementLine):
                    for small in node.body:
                        if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
                            self.statements[id(small.value)] = small
                elif isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) \
                        and node.func.attr.value == method:
                    self.out.append((node, self.statements.get(id(node))))
                return True

        return visit_with(fn, V).out

    return ctx.cached(("calls", id(fn), method), collect)


def reachable_only_through(later: Event, earlier: Event) -> bool:
    """Does every path to ``later`` pass ``earlier``? True when ``later``'s statement is in
    ``earlier``'s block (or nested below it), or in an enclosing block reached from it through
    `with` statements only (a `with` body always runs to its end or raises)."""
    common = 0
    for a, b in zip(later.path, earlier.path):
        if a is not b:
            break
        common += 1
    for node in earlier.path[common:-1]:
        if isinstance(node, cst.BaseCompoundStatement) and not isinstance(node, cst.With):
            return False
    return True


def with_scopes(ctx: FileContext, node: cst.With) -> list[tuple[str, Scope]]:
    """The session scopes a `with` statement opens, with the names bound to them (a session
    or a service built around one)."""
    index: ProjectIndex = ctx.index
    out = []
    for item in node.items:
        bound = with_binds(item)
        if bound is None:
            continue
        expr = item.item.expression if isinstance(item.item, cst.Await) else item.item
        if not isinstance(expr, cst.Call):
            continue
        target, begin = _factory_of(expr.func)
        callee = dotted(target)
        if callee is None:
            continue
        scope = index.scope(with_callee(ctx, node, callee), begin=begin)
        if scope is not None:
            out.append((bound, scope))
    return out


def none_guard(if_node: cst.If, name: str) -> bool:
    """`if name is None: return/raise ...` or `if not name: ...` ending the block."""
    test = if_node.test
    is_check = (
        (isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not)
         and isinstance(test.expression, cst.Name) and test.expression.value == name)
        or (isinstance(test, cst.Comparison) and isinstance(test.left, cst.Name) and test.left.value == name
            and len(test.comparisons) == 1 and isinstance(test.comparisons[0].operator, (cst.Is, cst.Equal))
            and isinstance(test.comparisons[0].comparator, cst.Name) and test.comparisons[0].comparator.value == "None")
    )
    if not is_check or not isinstance(if_node.body, cst.IndentedBlock) or not if_node.body.body:
        return False
    last = if_node.body.body[-1]
    return isinstance(last, cst.SimpleStatementLine) and any(
        isinstance(s, (cst.Return, cst.Raise, cst.Continue, cst.Break)) for s in last.body)


def mentions(node: cst.CSTNode, name: str) -> bool:
    from . import match as m

    return bool(m.findall(node, m.Name(name)))


@dataclass
class Bound:
    """An ORM instance bound from a call through a session or service scope."""

    event: Event
    model: Model
    optional: bool
    eager: frozenset[str] = frozenset()  # relationships the loading call loads eagerly


def bound_through(ctx: FileContext, ev: Event, N: str, scope: Scope) -> Bound | None:
    """An ORM instance bound from a call through the scope's name, or None."""
    value = ev.value
    while isinstance(value, cst.Await):
        value = value.expression
    if not isinstance(value, cst.Call):
        return None
    index = ctx.index
    callee = dotted(value.func)
    if scope.yields == "session":
        binding = binding_of(ctx, ev.value, {N: None})  # type: ignore[dict-item]
        model = model_for(ctx, binding.model) if binding.kind == BindingKind.LOADED else None
        if model is not None:
            method = value.func.attr.value if isinstance(value.func, cst.Attribute) else ""
            return Bound(ev, model, method in ("get", "first", "one_or_none", "scalar_one_or_none", "scalar"),
                         eager_in(value))
    if callee is None:
        return None
    target = None
    if callee.startswith(N + ".") and scope.yields == "service":
        cm = index.function(scope.name)
        if cm is not None and cm.yields_class:
            target = f"{cm.yields_class}.{callee[len(N) + 1:]}"
    elif any(isinstance(a.value, cst.Name) and a.value.value == N for a in value.args):
        target = ctx.qualify(callee)
    returned = index.returned(target)
    if returned is None or returned.shape is index_mod.Stage.LIST:
        return None
    return Bound(ev, returned.model, returned.optional, frozenset(returned.function.eager) | eager_in(value))


def eager_in(node: cst.CSTNode) -> frozenset[str]:
    """Relationship names a load expression loads eagerly: selectinload(User.posts)..."""
    from . import match as m

    return eager_in_calls(m.findall(node, m.Call()))  # type: ignore[arg-type]


def eager_in_calls(calls: Iterable[cst.Call]) -> frozenset[str]:
    """Relationship names the eager loader options among ``calls`` name."""
    from ..index import EAGER_LOADERS

    out: set[str] = set()
    for call in calls:
        assert isinstance(call, cst.Call)
        func = call.func
        last = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
        if last in EAGER_LOADERS:
            for arg in call.args:
                if isinstance(arg.value, cst.Attribute):
                    out.add(arg.value.attr.value)
                elif isinstance(arg.value, cst.SimpleString):
                    text = arg.value.evaluated_value
                    if isinstance(text, str):  # a bytes literal names no attribute
                        out.add(text.rsplit(".", 1)[-1])
    return frozenset(out)




LAZY_STRATEGIES = ("select", "dynamic", "True")


def loaded_eagerly(model: Model, relationship: str, eager: frozenset[str] = frozenset(),
                   stopped: frozenset[str] = frozenset()) -> bool:
    """Loaded with its parent: an eager strategy on the relationship (unless the loading path
    stopped it, ``stopped``: see index.model_reads.stops_at_cycle), or an eager loader option
    naming it."""
    return relationship in eager or relationship not in stopped \
        and model.relationships.get(relationship, "select") not in LAZY_STRATEGIES


def read_key(ev: Event) -> str | None:
    """What an event reads of its owner, as a model's properties are keyed: ``X.attr`` read
    gives ``"attr"``, ``X.method(...)`` called gives ``"method()"`` (see
    index.model_reads)."""
    if ev.kind == EventKind.READ:
        return ev.name
    if ev.kind == EventKind.METHOD and ev.name:
        return names.method_key(ev.name)
    return None


def lazy_relationships_read(model: Model, attr: str, eager: frozenset[str] = frozenset(), depth: int = 0,
                            stopped: frozenset[str] = frozenset()) -> list[str]:
    """The lazy relationships not loaded eagerly that reading ``obj.<attr>`` loads: the
    relationship itself, or those a property of the model reads (``self.parent`` behind
    ``episode.log_string``), or a method of it on every call (``attr`` = ``"to_dict()"``)."""
    return relationships_read(model, attr, lambda rel: not loaded_eagerly(model, rel, eager, stopped), depth)


def raising_relationships_read(model: Model, attr: str, loaded: frozenset[str]) -> list[str]:
    """The relationships declared ``lazy="raise"`` that reading ``obj.<attr>`` reads (itself,
    or through a property or method) and ``loaded`` does not name: reading one that was not
    loaded raises InvalidRequestError, in sync code as in async."""
    return relationships_read(model, attr, lambda rel: model.relationships[rel] == "raise" and rel not in loaded)


def relationships_read(model: Model, attr: str, wanted: Callable[[str], bool], depth: int = 0) -> list[str]:
    """The relationships reading ``obj.<attr>`` reads (itself, or through the model's
    properties and methods) for which ``wanted`` holds."""
    if attr in model.relationships:
        return [attr] if wanted(attr) else []
    if attr not in model.properties or depth > 2:
        return []
    out: list[str] = []
    for inner in sorted(model.properties[attr]):
        if inner != attr:
            out.extend(r for r in relationships_read(model, inner, wanted, depth + 1) if r not in out)
    return out


def attaches(callee: str | None) -> bool:
    """Is passing an object to this call attaching it to a session (`session.add(obj)`,
    `other.merge(obj)`)? Its later reads load through that session."""
    return callee is not None and callee.rsplit(".", 1)[-1] in ("add", "merge", "add_all")


def session_ended_by(ctx: FileContext, qualname: str, ev: Event, S: str,
                     deep: bool = False) -> tuple[cst.Call, frozenset[str]] | None:
    """When ``ev`` hands the session ``S`` to a project function (``helper(db, ...)``, or
    ``self.helper()`` for a ``self.<attr>`` session of the same class) that may commit or
    roll it back (itself or further down, as the index knows; rollbacks further down only
    with ``deep``): the call, and "commit" / "rollback". None otherwise."""
    index = ctx.index
    mod = ctx.facts
    if index is None or mod is None:
        return None
    receiver = f"{mod.module}.{qualname.rsplit('.', 1)[0]}" if "." in qualname else None
    call: cst.CSTNode | None
    passed: int | str
    if ev.kind == EventKind.CALL and ev.owner == "self" and S.startswith("self.") and S.count(".") == 1:
        call, passed = ev.node, S
        callee: str | None = f"self.{ev.name}"
    elif ev.kind == EventKind.USE and ev.name == S and ev.owner:
        where = call_argument(ev)
        if where is None:
            return None
        call, passed = where
        callee = ev.owner if ev.owner.startswith("self.") else ctx.qualify(ev.owner)
    else:
        return None
    if not isinstance(call, cst.Call):
        return None
    ends = index.session_ends(callee, passed, receiver, deep=deep)
    return (call, ends) if ends else None


def service_ended_by(ctx: FileContext, ev: Event, S: str,
                     built: dict[str, tuple[str, int | str]]) -> tuple[cst.Call, frozenset[str]] | None:
    """When ``ev`` calls a method of an object of a project class built with the session ``S``
    (`Service(db).delete(item)`, or `svc.delete(item)` where ``built`` says `svc = Service(db)`)
    that may commit or roll back the session its constructor kept: the method's call, and
    "commit" / "rollback". None otherwise."""
    index = ctx.index
    if index is None:
        return None
    if ev.kind == EventKind.CALL and ev.owner in built:
        cls, passed = built[ev.owner]  # type: ignore[index]
        ends = index.constructed_session_ends(cls, passed, ev.name or "")
        return (ev.node, ends) if ends and isinstance(ev.node, cst.Call) else None  # type: ignore[return-value]
    if ev.kind != EventKind.USE or ev.name != S or not ev.owner:
        return None
    made = constructed_with(ctx, ev)
    if made is None:
        return None
    try:
        stmt = ev.statement
    except LookupError:
        return None
    ctor = ev.value
    from . import match as m

    for call in m.findall(stmt, m.Call(func=m.Attribute())):
        assert isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)
        if call.func.value is ctor:
            ends = index.constructed_session_ends(made[0], made[1], call.func.attr.value)
            return (call, ends) if ends else None
    return None


def constructed_with(ctx: FileContext, ev: Event) -> tuple[str, int | str] | None:
    """For a "use" event of a session passed to `Class(...)`, a project class: the class,
    qualified, and where the session is passed."""
    where = call_argument(ev)
    if where is None or not ev.owner or ev.owner.startswith("self."):
        return None
    cls = ctx.qualify(ev.owner)
    last = ev.owner.rsplit(".", 1)[-1]
    if not cls or not last[:1].isupper() or ctx.index.model(cls) is not None:
        return None
    return cls, where[1]


def call_argument(ev: Event) -> tuple[cst.Call, int | str] | None:
    """For a "use" event (a name passed to a call): the call, and the position or keyword the
    name is passed at (None where :func:`~codemods.passes.helpers.argument_position` knows no
    slot: `*args`/`**kwargs`, a positional argument after `*args`)."""
    call = ev.value
    if not isinstance(call, cst.Call):
        return None
    arg = next((a for a in call.args if a.value is ev.node), None)
    passed = argument_position(call, arg) if arg is not None else None
    return (call, passed) if passed is not None else None


def hands_session_to_enders(index: ProjectIndex | None, mod, qualname: str) -> bool:
    """Does the function ``qualname`` of the module with facts ``mod`` hand a session it holds
    to a project function that may commit or roll it back? (A cheap question of the index,
    before any walk.)"""
    facts = mod.functions.get(qualname) if mod is not None else None
    if index is None or facts is None:
        return False
    receiver = f"{mod.module}.{qualname.rsplit('.', 1)[0]}" if "." in qualname else None
    return any(index.session_ends(end.callee, end.passed, receiver) for end in facts.session_ends
               if end.callee is not None and end.passed is not None)


def hands_session_to_services(index: ProjectIndex | None, mod, qualname: str) -> bool:
    """Does the function ``qualname`` build an object of a project class with a session it
    holds (`Service(db)`), a method of which may commit or roll that session back?"""
    facts = mod.functions.get(qualname) if mod is not None else None
    if index is None or facts is None:
        return False
    return any(index.builds_ender(end.callee, end.passed) for end in facts.session_ends
               if end.callee is not None and end.passed is not None and not end.callee.startswith("self."))


# --------------------------------------------------------------------------- session owners


class Held(Enum):
    """Who holds a session expression of a function, and so who may use it after the function."""

    HERE = "here"  # opened by the function: a with-block or a local it assigns
    CALLER = "caller"  # a parameter, or `self.<attr>`: the caller goes on with it
    PROVIDER = "provider"  # a FastAPI dependency's session, or the one a session decorator
    # passes: the provider or the decorator's wrapper runs after the function
    REGISTRY = "registry"  # a scoped registry or Flask-SQLAlchemy's `db.session`: removed when
    # the request (or task) ends


def held(ctx: FileContext, qualname: str, owner: str, refs: dict[str, SessionRef]) -> Held | None:
    """Is ``owner`` (a dotted expression of the function ``qualname``) a session, and who
    holds it? None when it is not known to be a session."""
    ref = refs.get(owner)
    if ref is not None:
        if ref.decorated:
            return Held.PROVIDER
        facts = ctx.function_facts(qualname)
        param = next((p for p in facts.params if p.name == owner), None) if facts is not None else None
        if ref.block is not None or param is None:
            return Held.HERE
        return Held.PROVIDER if ctx.index.param_dependency(param)[0] else Held.CALLER
    index = ctx.index
    mod = ctx.facts
    if mod is None or index is None:
        return None
    if owner.startswith("self.") and owner.count(".") == 1 and "." in qualname:
        return Held.CALLER if index.self_session(mod, qualname.rsplit(".", 1)[0], owner[5:]) else None
    qualified = mod.qualify(owner)
    if index.flask_session(qualified):
        return Held.REGISTRY
    factory = index.factory(qualified)
    return Held.REGISTRY if factory is not None and factory.scoped else None


# --------------------------------------------------------------------------- control flow

@cache
def _terminators() -> tuple[type, ...]:
    return (cst.Return, cst.Raise, cst.Continue, cst.Break)


def terminates(stmt: cst.CSTNode) -> bool:
    """A statement line that ends its block: return, raise, continue or break."""
    return isinstance(stmt, cst.SimpleStatementLine) and any(isinstance(s, _terminators()) for s in stmt.body)


def statement_paths(fn: cst.FunctionDef) -> dict[int, tuple[cst.CSTNode, ...]]:
    """Every statement of ``fn`` (nested functions' too), by id, with the path :func:`events`
    would give an event in it (the statement itself last)."""
    class V(cst.CSTVisitor):
        def __init__(self) -> None:
            super().__init__()
            self.out: dict[int, tuple[cst.CSTNode, ...]] = {}
            self.path: list[cst.CSTNode] = []

        def on_visit(self, node: cst.CSTNode) -> bool:
            if isinstance(node, (cst.IndentedBlock, cst.BaseStatement)):
                self.path.append(node)
                if isinstance(node, cst.BaseStatement):
                    self.out[id(node)] = tuple(self.path)
            return True

        def on_leave(self, original_node: cst.CSTNode) -> None:
            if isinstance(original_node, (cst.IndentedBlock, cst.BaseStatement)):
                self.path.pop()

    return visit_with(fn.body, V).out if isinstance(fn.body, cst.IndentedBlock) else {}


def _branch(compound: cst.CSTNode, child: cst.CSTNode) -> tuple[str, int]:
    """Which part of a compound statement ``child`` (the next node on a path) is."""
    if isinstance(compound, (cst.Try, cst.TryStar)):
        if child is compound.body:
            return "body", 0
        for i, h in enumerate(compound.handlers):
            if child is h.body:  # type: ignore[attr-defined]
                return "handler", i
        if compound.orelse is not None and child is compound.orelse.body:
            return "else", 0
        return "finally", 0
    if isinstance(compound, (cst.For, cst.While)):
        return ("body", 0) if child is compound.body else ("else", 0)
    return ("body", 0) if child is getattr(compound, "body", None) else ("other", id(child))


_FOLLOWS = {  # (branch of the earlier statement, branch of the later) that run in that order
    ("body", "handler"), ("body", "else"), ("body", "finally"), ("handler", "finally"), ("else", "finally"),
}


def falls_through_to(earlier: tuple[cst.CSTNode, ...], later: tuple[cst.CSTNode, ...]) -> bool:
    """Can the code at ``later`` (an event's path) run after the statement ``earlier`` (its
    path, the statement last) completes, in one pass through the function (not through a loop
    coming round again)? False when a return/raise/continue/break after ``earlier`` ends its
    block first, or when the two sit in different branches of an if or of a try."""
    if terminates(earlier[-1]):
        return False
    common = 0
    for a, b in zip(earlier, later):
        if a is not b:
            break
        common += 1
    if common == len(earlier) or common == 0 or common == len(later):
        return False  # inside the earlier statement itself, or unrelated paths
    top = earlier[common - 1]
    e_next, l_next = earlier[common], later[common]
    if isinstance(top, cst.IndentedBlock):
        body = list(top.body)
        try:
            i, j = body.index(e_next), body.index(l_next)  # type: ignore[arg-type]
        except ValueError:
            return False
        if j <= i or any(terminates(s) for s in body[i + 1:j]):
            return False
    else:
        e_branch, l_branch = _branch(top, e_next), _branch(top, l_next)
        if isinstance(top, (cst.For, cst.While)) and (e_branch[0], l_branch[0]) == ("body", "else"):
            pass
        elif (e_branch[0], l_branch[0]) not in _FOLLOWS:
            return False
    # the blocks between the top and the earlier statement must run to their end
    for k in range(common, len(earlier) - 1):
        block, stmt = earlier[k], earlier[k + 1]
        if isinstance(block, cst.IndentedBlock):
            body = list(block.body)
            if stmt in body and any(terminates(s) for s in body[body.index(stmt) + 1:]):  # type: ignore[arg-type]
                return False
    return True


def project_never_expires(ctx: FileContext) -> bool:
    """Is every session the project makes built with `expire_on_commit=False` (and is there
    one)? Then an instance whose session cannot be seen (a parameter) keeps its loaded columns
    readable after a commit and after its session closed."""
    return ctx.index.sessions_never_expire(async_only=False)
