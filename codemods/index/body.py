"""Facts about one function body: the sessions it opens, what it yields or returns, its calls."""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import names
from .astutil import (
    EAGER_LOADERS,
    const_bool,
    dotted_name,
    eager_names,
    keyword_arg,
    load_root,
    readable_option,
    strip_await,
    unquoted,
)
from .facts import WITH_VALUE, CallSite, Factory, HeldSession, OpenedSession, Origin, SessionEnd
from .holders import stored_holder
from .infer import Load, load_of
from .managers import NameType, annotation_class, receiver_class

if TYPE_CHECKING:
    from .extract import Extractor

STORE_METHODS = {"add", "append", "setdefault", "insert", "appendleft"}
# Handlers that catch any failure of a commit (a bare `except:` too): nothing gets past them.
BROAD_ERRORS = {"Exception", "BaseException", "SQLAlchemyError"}


_METHODS: dict[tuple[type, type], Callable[..., Any]] = {}


class FunctionBody(ast.NodeVisitor):
    """Facts about one function body (nested functions and classes are not entered)."""

    # ast.NodeVisitor's visit and generic_visit: the same calls in the same order, the method
    # of each node type looked up once rather than by name for every node.
    def visit(self, node: ast.AST) -> Any:
        key = (type(self), type(node))
        method = _METHODS.get(key)
        if method is None:
            method = _METHODS[key] = getattr(type(self), f"visit_{type(node).__name__}", None) or FunctionBody.generic_visit
        return method(self, node)

    def generic_visit(self, node: ast.AST) -> None:
        kind = ast.AST
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, kind):
                        self.visit(item)
            elif isinstance(value, kind):
                self.visit(value)

    def __init__(self, ex: Extractor, fn: ast.FunctionDef | ast.AsyncFunctionDef, class_prefix: str = "",
                 closure: dict[str, tuple[str, bool | None]] | None = None) -> None:
        self.ex = ex
        self.fn = fn
        self.class_prefix = class_prefix
        self.is_generator = False
        self.commits = False
        self.commits_after_yield = False
        self.yield_in_begin = False
        self.yields_kind: str | None = None
        self.yields_class: str | None = None
        self.returns_factory: Factory | None = None
        self.returns_factories_at: dict[int, Factory] = {}
        self.local_factories: dict[str, Factory] = {}  # `maker = sessionmaker(...)` in this function
        self._seen_yield = False
        self._conditional = 0  # inside an if / loop / except: not run on every path
        self.rolls_back_after_yield = False
        self._yielded: set[str] = set()  # session names it yields
        self._closed_after_yield: set[str] = set()  # session names it closes after its yield, on every path
        self.returns_self_attr: str | None = None
        self._begin_depth = 0
        self._broad_guard = 0  # inside the body of a try with a handler for any error
        self.closed_names: set[str] = set()
        self.detaches = False
        self.with_callees: list[str] = []
        self.methods: set[str] = set()
        self.called: set[str] = set()
        self.eager: set[str] = set()
        self.opaque_options = False  # `.options(...)` it cannot read (see astutil.readable_option)
        self.checks_loads = False  # catches MissingGreenlet, or reads `.unloaded` / `.awaitable_attrs`
        self.rebound_params: set[str] = set()  # parameters it assigns another value to
        self.yield_sources: list[str] = []
        self.globals: set[str] = set()
        self.add_owners: set[str] = set()
        self.stores: set[str] = set()
        self.kept_params: set[str] = set()  # parameters it stores (`X[k] = p`, `X.append(p)`)
        self.session_ends: list[SessionEnd] = []
        self.param_reads: dict[str, set[str]] = {}
        self._called_funcs: set[int] = set()
        self._raising: set[int] | None = None
        self._ends_seen: set[tuple] = set()
        self.has_nested = False
        self.opened: list[OpenedSession] = []
        self.held: list[HeldSession] = []
        self._held_names: list[str | None] = []  # the local name each held session was bound to
        self.yields_param: str | None = None
        self.calls: list[CallSite] = []
        self.origins: dict[str, Origin] = {}
        self.loads: dict[str, Load] = {}  # local name -> the load it holds (see .infer)
        self.local_calls: dict[str, str] = {}  # local name -> the call whose result it holds
        self.picked: dict[str, str] = {}  # local name -> the module-level table of functions it
        # holds one of (`handler = HANDLERS[action]`, `HANDLERS.get(action)`)
        self.returns_load: Load | None = None
        self.returns_calls: list[str] = []
        self.returned_new: list[str | None] = []  # per `return`: the class of a name it built, else None
        self.session_names: dict[str, str] = {}
        self.local_factory_expire: dict[str, bool | None] = {}  # factories built in this function
        # `maker = functools.partial(Session, expire_on_commit=False)`: local name -> (what it
        # calls, expire_on_commit it states); an enclosing function's count too (`closure`).
        self.partials: dict[str, tuple[str, bool | None]] = {}
        all_args = fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
        self.param_names = {a.arg for a in all_args}
        self.partials.update({k: v for k, v in (closure or {}).items() if k not in self.param_names})
        self.param_annotations: dict[str, str] = {}
        # the one class a typed parameter (or, in a class a function returns, a typed parameter
        # of that function) stands for: receivers of method calls (`database.session()`)
        self.name_types: dict[str, NameType] = {
            k: v for k, v in ex.enclosing_types.items() if k not in self.param_names}
        for a in all_args:
            typed = annotation_class(a.annotation, ex.facts.qualify)
            if typed is not None:
                self.name_types[a.arg] = typed
            self.origins[a.arg] = Origin("param")
            annotation = unquoted(a.annotation) if a.annotation is not None else None  # `s: "AsyncSession"`
            head = annotation.value if isinstance(annotation, ast.Subscript) else annotation
            qualified = ex.q(head) if head is not None else None
            if qualified is not None:
                self.param_annotations[a.arg] = qualified
                if names.session_class(qualified) is not None:
                    self.session_names[a.arg] = qualified
                    self.origins[a.arg] = Origin("session", callee=qualified)
        self._with_stack: list[str] = []  # session names bound by enclosing with-blocks
        for stmt in fn.body:
            self.visit(stmt)
        if not self.is_generator:  # `s = Maker(); try: return ... finally: s.close()`
            for opened in self.opened:
                if opened.name in self.closed_names:
                    opened.closed_on_return = True
        # a session the function closes itself (`with`, `close()`) is not left to its holder
        self.held = [h for h, name in zip(self.held, self._held_names) if name is None or name not in self.closed_names]

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
        passed: list[tuple[int | str, ast.expr]] = [*enumerate(node.args)]
        passed += [(k.arg, k.value) for k in node.keywords if k.arg]
        for where, arg in passed:
            owner = self._given_session(arg)
            if owner is None:
                continue
            if qualified is None:
                head, _, rest = callee.partition(".")
                if head in self.param_annotations and rest:  # `item.delete(db)` on a typed parameter
                    qualified = f"{self.param_annotations[head]}.{rest}"
                else:
                    qualified = callee if head == "self" else self.ex.facts.qualify(callee) or callee
            self._end(SessionEnd(owner, "", qualified, where,
                                 on_exit=self._seen_yield and not self._conditional))

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
            for node in ast.walk(self.fn):
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

    def visit_FunctionDef(self, node: ast.AST) -> None:  # nested: not ours
        self.has_nested = True

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_ClassDef = visit_FunctionDef
    visit_Lambda = visit_FunctionDef

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
        if callee.startswith("self.") and callee.count(".") == 1 and self.class_prefix:
            # `self.SessionLocal()`: a factory the class keeps (`self.SessionLocal = sessionmaker()`)
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
                    self.with_callees.append((q + "()") if q else (self.ex.facts.qualify(callee) or callee))
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

    def visit_Global(self, node: ast.Global) -> None:
        self.globals.update(node.names)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.generic_visit(node)
        for target in node.targets:
            if isinstance(target, ast.Name) and target.id in self.globals and not self.class_prefix:
                # `global SessionLocal; SessionLocal = sessionmaker(...)` in an init function
                factory = self.ex.factory_from(target.id, node.value, node.lineno)
                if factory is not None:
                    self.ex.facts.factories.setdefault(target.id, factory)
            if isinstance(target, ast.Subscript):
                holder = dotted_name(target.value)
                if holder is not None:
                    self.stores.add(holder)
                self._keeps([node.value])
            if isinstance(target, (ast.Subscript, ast.Attribute)):
                self._held(target, node.value)
            if isinstance(target, ast.Name):
                self._bind(target.id, node.value)
            elif (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                  and target.value.id not in ("self", "cls") and target.value.id not in self.param_names
                  and target.value.id not in self.ex.facts.imports and target.value.id[:1].isupper()):
                # `Database.db_session = scoped_session(...)` in an init function: the class's
                # attribute holds the factory
                name = f"{target.value.id}.{target.attr}"
                factory = self.ex.factory_from(name, node.value, node.lineno)
                if factory is not None:
                    self.ex.facts.factories.setdefault(name, factory)
            elif (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                  and target.value.id == "self" and self.class_prefix):
                # `self.session_factory = async_sessionmaker(...)` in a method
                name = self.class_prefix + target.attr
                factory = self.ex.factory_from(name, node.value, node.lineno)
                if factory is not None:
                    self.ex.facts.factories[name] = factory
                value = strip_await(node.value)
                if isinstance(value, ast.Name) and value.id in self.param_names and self.fn.name == "__init__":
                    self.ex.facts.init_params[name] = value.id  # `def __init__(self, session): self.session = session`
                if isinstance(value, ast.Name) and value.id in self.param_annotations:
                    self.ex.facts.self_values[name] = "type:" + self.param_annotations[value.id]
                elif isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) \
                        and (cls := receiver_class(value.func.value, self.name_types)) is not None:
                    # `self.session = database.session()` on a typed name: that class's method
                    self.ex.facts.self_values[name] = f"call:{cls}.{value.func.attr}"
                elif isinstance(value, ast.Call) and (callee := dotted_name(value.func)):
                    if callee in self.param_annotations:
                        callee = self.param_annotations[callee] + "()"
                    elif not callee.startswith("self."):
                        callee = self.ex.facts.qualify(callee) or callee
                    self.ex.facts.self_values[name] = "call:" + callee

    def _held(self, target: ast.Subscript | ast.Attribute, value: ast.AST) -> None:
        """``context["db"] = factory()`` or ``request.state.db = session`` (a session it opened):
        a session kept in a holder (not ``self``'s: the object owns what it keeps)."""
        holder = stored_holder(target)
        if holder is None or (dotted_name(target.value) or "").split(".")[0] in ("self", "cls"):
            return
        value = strip_await(value)
        if isinstance(value, ast.Name):
            factory = next((o.factory for o in self.opened if o.name == value.id and not o.closed_on_return), None)
        else:
            factory = self._opens(value)
        if factory is not None:
            self.held.append(HeldSession(holder, factory))
            self._held_names.append(value.id if isinstance(value, ast.Name) else None)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.generic_visit(node)
        if isinstance(node.target, ast.Name) and node.value is not None:
            self._bind(node.target.id, node.value)

    def _returned(self, value: ast.AST) -> None:
        """What a `return` gives: a load (its model and shape), or a call's result (resolved at
        query time: ``self.repo.get``, ``app.crud.get_user``)."""
        load = load_of(value, self.loads, self.ex.facts.qualify)
        if load is not None and load.stage.instances:
            self.returns_load = self.returns_load or load
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

    def _callee(self, func: ast.AST) -> str | None:
        """A callee as the index resolves it: qualified, or ``self.<...>`` (the class's own)."""
        name = dotted_name(func)
        if name is None:
            return None
        if name.split(".")[0] in ("self", "cls"):
            return "self." + name.split(".", 1)[1] if "." in name else None
        return self.ex.facts.qualify(name)

    def _bind(self, name: str, value: ast.AST) -> None:
        if name in self.param_names:
            self.rebound_params.add(name)
        load = load_of(value, self.loads, self.ex.facts.qualify)
        if load is not None:
            self.loads[name] = load
        else:
            self.loads.pop(name, None)
        inner = strip_await(value)
        callee = self._callee(inner.func) if isinstance(inner, ast.Call) else None
        if callee is not None:
            self.local_calls[name] = callee
        else:
            self.local_calls.pop(name, None)
        self.origins[name] = self.origin(value)
        table = self._table(inner)
        if table is not None:
            self.picked[name] = table
        else:
            self.picked.pop(name, None)
        if isinstance(inner, ast.Call) and names.factory_builder(self.ex.facts.qualify(dotted_name(inner.func))) is not None:
            self.local_factory_expire[name] = const_bool(keyword_arg(inner, "expire_on_commit"))
            built = self.ex.factory_from(name, inner, inner.lineno)
            if built is not None:
                self.local_factories[name] = built
        else:
            self.local_factories.pop(name, None)
        self._bind_partial(name, inner)
        opened = self._opens(value)
        if opened is not None:
            self.session_names[name] = opened
            self.opened.append(OpenedSession(opened, closed_on_return=False, yielded=False,
                                             expire_on_commit=self._expire_kw(value), name=name))

    def _bind_partial(self, name: str, value: ast.AST) -> None:
        """``name = functools.partial(F, ...)``: calling ``name`` calls ``F``. Bound in several
        places (branches of an if), it is kept when every binding calls the same ``F``; its
        ``expire_on_commit`` is False when one binding says so (never claim an expiry that
        a binding does not make), else what they state."""
        if not (isinstance(value, ast.Call) and value.args
                and self.ex.facts.qualify(dotted_name(value.func)) == "functools.partial"):
            self.partials.pop(name, None)  # rebound to something else
            return
        target = self._opens(ast.Call(func=value.args[0], args=[], keywords=[]))
        if target is None:
            return
        expire = const_bool(keyword_arg(value, "expire_on_commit"))
        known = self.partials.get(name)
        if known is not None:
            if known[0] != target:
                del self.partials[name]  # which callable a call means depends on the path
                return
            expire = False if False in (known[1], expire) else expire if known[1] == expire else None
        self.partials[name] = (target, expire)

    def origin(self, value: ast.AST) -> Origin:
        """Where a value comes from. Which names are really sessions is decided at query
        time; here every candidate is kept: the owner of a load method (`s.get(...)`, but
        also `case_service.get(...)`), then the arguments that may be sessions."""
        value = strip_await(value)
        if isinstance(value, ast.Name):
            return self.origins.get(value.id, Origin("other"))
        if not isinstance(value, ast.Call):
            return Origin("other")
        callee = dotted_name(value.func)
        qualified = self.ex.facts.qualify(callee) if callee else None
        last = (callee or "").rsplit(".", 1)[-1]
        if last[:1].isupper():  # a constructor: a new object, whatever its arguments
            return Origin("new", callee=qualified)
        candidates = [
            dotted_name(a) for a in list(value.args) + [k.value for k in value.keywords]
            if dotted_name(a) in self.session_names
            or (isinstance(a, ast.Name) and self.origins.get(a.id, Origin("other")).kind in ("session", "param"))
        ]
        root = load_root(value)
        if root is not None:
            candidates.insert(0, root)
        if candidates:
            return Origin("loaded", via=candidates[0], callee=qualified, alt=tuple(candidates[1:]))
        if callee is not None:
            return Origin("call", callee=qualified)
        return Origin("other")

    def _keeps(self, values: list[ast.expr]) -> None:
        """Note the parameters among values stored in a container (`self._handlers.append(h)`)."""
        self.kept_params.update(v.id for v in values if isinstance(v, ast.Name) and v.id in self.param_names
                                and v.id not in ("self", "cls"))

    def visit_Call(self, node: ast.Call) -> None:
        self._called_funcs.add(id(node.func))
        self.generic_visit(node)
        self._session_end(node)
        self._getattr_read(node)
        if isinstance(node.func, ast.Attribute):
            self.methods.add(node.func.attr)
            if node.func.attr in STORE_METHODS:
                if node.func.attr != "add":  # `session.add(obj)` gives obj to a session
                    self._keeps(node.args)
                owner = dotted_name(node.func.value)
                if owner is not None:
                    self.stores.add(owner)
                    if node.func.attr == "add":
                        self.add_owners.add(owner)
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

    def _table(self, func: ast.AST) -> str | None:
        """The module-level table of functions ``func`` picks one from: ``TABLE[key]``,
        ``TABLE.get(key)``, or a local name bound to one of those."""
        if isinstance(func, ast.Subscript):
            holder = func.value
        elif isinstance(func, ast.Call) and isinstance(func.func, ast.Attribute) and func.func.attr == "get":
            holder = func.func.value
        else:
            return self.picked.get(func.id) if isinstance(func, ast.Name) else None
        if not isinstance(holder, ast.Name) or holder.id in self.param_names or holder.id in self.origins:
            return None
        return holder.id if holder.id in self.ex.facts.function_tables else None

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


def _catches_missing_greenlet(handler: ast.ExceptHandler) -> bool:
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type] if handler.type else []
    return any((dotted_name(k) or "").rsplit(".", 1)[-1] == "MissingGreenlet" for k in kinds)


def _catches_anything(handler: ast.ExceptHandler) -> bool:
    """A bare ``except:``, or a handler for ``Exception`` (or any SQLAlchemy error)."""
    if handler.type is None:
        return True
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any((dotted_name(k) or "").rsplit(".", 1)[-1] in BROAD_ERRORS for k in kinds)
