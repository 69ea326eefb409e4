"""The project index: what the project's own code says about its sessions.

Built once per run, before any pass runs, from every Python file of the project whose bytes
mention SQLAlchemy (or FastAPI's ``Depends``, or a configured name). It uses the standard
library's ``ast`` (an order of magnitude faster than a libcst parse) and keeps plain, picklable
facts, so it can be built in worker processes and handed to the workers that run the passes.

What it knows:
- session factories (``sessionmaker``, ``async_sessionmaker``, ``scoped_session``, ...) held by
  module globals, with ``expire_on_commit`` and whether they make ``AsyncSession`` objects;
- functions: FastAPI ``Depends`` parameters (directly or through ``Annotated`` aliases), whether
  they open, yield or return a session and whether that session is closed before they return,
  and call sites of project functions with where each argument came from;
- ``Annotated[..., Depends(...)]`` aliases.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from . import names

INDEX_TRIGGERS = (b"sqlalchemy", b"sqlmodel", b"Depends", b"flask_sqlalchemy")


# --------------------------------------------------------------------------- facts


@dataclass
class Factory:
    name: str
    builder: str  # qualified name of what built it
    is_async: bool | None
    expire_on_commit: bool | None  # None: not stated (SQLAlchemy's default is True)
    line: int
    scoped: bool = False
    bind: str | None = None  # the engine expression it is bound to, as written
    via: str | None = None  # built by calling this project function (which returns a factory)


@dataclass
class Param:
    name: str
    depends: str | None = None  # qualified name of the Depends target
    use_cache: bool = True
    annotation: str | None = None  # qualified name of the annotation's head
    alias: str | None = None  # qualified name of an Annotated alias used as annotation


@dataclass
class Origin:
    """Where a local value came from."""

    kind: str  # "new" (constructed), "loaded" (through session `via`), "call" (project call), "param", "other"
    via: str | None = None  # the session expression it was loaded through / a session argument
    callee: str | None = None
    alt: tuple[str | None, ...] = ()  # further candidates for `via` (arguments that may be sessions)


@dataclass
class CallSite:
    callee: str
    line: int
    args: list[Origin]
    kwargs: dict[str, Origin]
    arg_names: list[str | None]
    kwarg_names: dict[str, str | None]


@dataclass
class OpenedSession:
    factory: str  # qualified name called to open it
    closed_on_return: bool  # opened in a with-block that the function leaves before returning
    yielded: bool  # the function yields (or returns) this session
    expire_on_commit: bool | None = None  # stated in the call itself: Session(e, expire_on_commit=False)
    begin: bool = False  # opened as `factory.begin()`: commits when the block exits
    name: str | None = None  # the local name holding it


@dataclass
class SessionDecorator:
    """A decorator whose wrapper opens a session, passes it to the decorated function and
    (maybe) commits after it returns."""

    factory: str
    expire_on_commit: bool | None
    commits: bool
    position: int | None  # positional index the session is passed at
    keyword: str | None  # or the keyword it is passed as


@dataclass
class Attribute:
    kind: str  # "column", "deferred", "relationship"
    lazy: str | None = None  # relationship loader strategy ("select" is SQLAlchemy's default)
    target: str | None = None  # relationship target class, as written
    line: int = 0


@dataclass
class ClassFacts:
    qualname: str
    line: int
    bases: list[str]
    keywords: dict[str, str]
    attributes: dict[str, Attribute] = field(default_factory=dict)
    backrefs: list[tuple[str, str, str]] = field(default_factory=list)  # (target, name, lazy)
    abstract: bool = False
    tablename: bool = False


@dataclass
class Function:
    qualname: str
    line: int
    is_async: bool
    is_generator: bool
    params: list[Param]
    returns: str | None
    opened: list[OpenedSession] = field(default_factory=list)
    yields_param: str | None = None  # yields/returns one of its own parameters as is
    calls: list[CallSite] = field(default_factory=list)
    session_names: dict[str, str] = field(default_factory=dict)  # local name -> factory called
    decorators: list[str] = field(default_factory=list)
    commits: bool = False  # calls .commit() on a session it holds
    commits_after_yield: bool = False  # ... after its yield (a context manager committing on exit)
    yield_in_begin: bool = False  # yields inside `with session.begin()` / `factory.begin()`
    yields_kind: str | None = None  # "session" or "service" (an object built around a session)
    yields_class: str | None = None  # qualified name of that object's class
    returns_factory: Factory | None = None
    session_decorator: SessionDecorator | None = None
    yield_sources: list[str] = field(default_factory=list)  # what made the yielded session(s)
    returns_class: str | None = None  # the class a return annotation names (User | None -> User)
    returns_shape: str | None = None  # "one", "optional" or "list"
    eager: set[str] = field(default_factory=set)  # attributes named in selectinload(...) & co
    detaches: bool = False  # expunges objects from its sessions (what it returns is detached)
    with_callees: list[str] = field(default_factory=list)  # qualified callees of its with-items
    methods: set[str] = field(default_factory=set)  # x.method(...) names it calls
    called: set[str] = field(default_factory=set)  # name(...) it calls
    add_owners: set[str] = field(default_factory=set)  # X in `X.add(name)` calls
    stores: set[str] = field(default_factory=set)  # X in `X[k] = v`, `X.append(v)`, `X.setdefault(k, v)`...


@dataclass
class Alias:
    name: str
    depends: str | None
    use_cache: bool
    annotation: str | None


@dataclass
class ModuleFacts:
    path: str
    module: str
    imports: dict[str, str] = field(default_factory=dict)
    factories: dict[str, Factory] = field(default_factory=dict)
    functions: dict[str, Function] = field(default_factory=dict)
    aliases: dict[str, Alias] = field(default_factory=dict)
    configure_calls: dict[str, dict[str, bool | None]] = field(default_factory=dict)
    classes: dict[str, ClassFacts] = field(default_factory=dict)
    declarative_bases: set[str] = field(default_factory=set)  # Base = declarative_base()
    flask_dbs: set[str] = field(default_factory=set)  # db = SQLAlchemy(app)
    session_types: dict[str, str] = field(default_factory=dict)  # DB = NewType("DB", AsyncSession)
    # Class.attr -> what `self.attr = ...` holds: "type:<annotation>" for a parameter,
    # "call:<callee>" for a call result, "call:self.<other attr>" for `self.factory()`
    self_values: dict[str, str] = field(default_factory=dict)
    # The whole module, nested functions included (for the engine's decision to parse):
    all_methods: set[str] = field(default_factory=set)  # x.method(...) names called anywhere
    all_called: set[str] = field(default_factory=set)  # name(...) called anywhere
    all_with_callees: set[str] = field(default_factory=set)  # qualified callees of with-items
    has_async: bool = False
    containers: set[str] = field(default_factory=set)  # module-level `X = {}`, class-level "Class.X"

    def qualify(self, dotted: str | None) -> str | None:
        """The qualified name a dotted expression of this module refers to."""
        if not dotted:
            return None
        head, _, rest = dotted.partition(".")
        if head in self.imports:
            target = self.imports[head]
            return f"{target}.{rest}" if rest else target
        if head in ("self", "cls"):
            return None
        return f"{self.module}.{dotted}" if self.module else dotted


# --------------------------------------------------------------------------- extraction


def dotted_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted_name(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def module_name_for(path: str, root: str) -> str:
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    parts = rel.replace(os.sep, "/").split("/")
    if parts and parts[0] in ("src", "lib") and len(parts) > 1:
        parts = parts[1:]
    if parts[-1].endswith(".py"):
        parts[-1] = parts[-1][:-3]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(p for p in parts if p and p != "..")


def _const_bool(node: ast.AST | None) -> bool | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return node.value
    return None


def _kw(call: ast.Call, name: str) -> ast.AST | None:
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def strip_await(node: ast.AST) -> ast.AST:
    while isinstance(node, ast.Await):
        node = node.value
    return node


def load_root(node: ast.AST) -> str | None:
    """``S`` when ``node`` is ``S.get(...)``, ``(await S.execute(q)).scalar_one()``, ``S.query(M).first()``..."""
    node = strip_await(node)
    while isinstance(node, (ast.Call, ast.Attribute, ast.Subscript, ast.Await)):
        if isinstance(node, ast.Await):
            node = node.value
            continue
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in names.LOAD_METHODS:
                owner = dotted_name(node.func.value)
                if owner is not None:
                    return owner
            node = node.func.value
            continue
        if isinstance(node, ast.Call):
            return None
        node = node.value
    return None


class _Extractor:
    def __init__(self, facts: ModuleFacts) -> None:
        self.facts = facts

    def q(self, node: ast.AST | None) -> str | None:
        return self.facts.qualify(dotted_name(node)) if node is not None else None

    # imports ----------------------------------------------------------------
    def imports(self, tree: ast.Module) -> None:
        pkg_parts = self.facts.module.split(".") if self.facts.module else []
        is_pkg = os.path.basename(self.facts.path) == "__init__.py"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.facts.imports[alias.asname] = alias.name
                    else:
                        head = alias.name.split(".")[0]
                        self.facts.imports[head] = head
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    keep = len(pkg_parts) - node.level + (1 if is_pkg else 0)
                    prefix = pkg_parts[: max(keep, 0)]
                    base = ".".join(prefix + ([base] if base else []))
                for alias in node.names:
                    if alias.name == "*":
                        continue
                    local = alias.asname or alias.name
                    self.facts.imports[local] = f"{base}.{alias.name}" if base else alias.name

    # module level -------------------------------------------------------------
    def module_level(self, tree: ast.Module) -> None:
        for stmt in tree.body:
            self.statement(stmt, prefix="")

    def statement(self, stmt: ast.stmt, prefix: str) -> None:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.function(stmt, prefix)
        elif isinstance(stmt, ast.ClassDef):
            self.klass(stmt, prefix)
            for sub in stmt.body:
                self.statement(sub, prefix=f"{prefix}{stmt.name}.")
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)) and not prefix:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if stmt.value is None:
                return
            for target in targets:
                if isinstance(target, ast.Name):
                    self.assignment(target.id, stmt.value, stmt.lineno)
        elif isinstance(stmt, ast.Expr) and not prefix and isinstance(stmt.value, ast.Call):
            func = stmt.value.func
            if isinstance(func, ast.Attribute) and func.attr == "configure":
                target = dotted_name(func.value)
                if target:
                    self.facts.configure_calls[target] = {
                        "expire_on_commit": _const_bool(_kw(stmt.value, "expire_on_commit"))
                    }
        elif isinstance(stmt, (ast.If, ast.Try)) and not prefix:
            for sub in getattr(stmt, "body", []) + getattr(stmt, "orelse", []):
                self.statement(sub, prefix)

    def assignment(self, name: str, value: ast.AST, line: int) -> None:
        factory = self.factory_from(name, value, line)
        if factory is not None:
            self.facts.factories[name] = factory
            return
        alias = self.alias_from(name, value)
        if alias is not None:
            self.facts.aliases[name] = alias
            return
        target = value
        if isinstance(value, ast.Call) and self.q(value.func) in ("typing.NewType", "typing_extensions.NewType") \
                and len(value.args) == 2:
            target = value.args[1]
        if isinstance(target, (ast.Name, ast.Attribute)):
            qualified = self.q(target)
            if qualified is not None and qualified != f"{self.facts.module}.{name}":
                # a candidate: whether it names a session class is decided at query time
                self.facts.session_types[name] = qualified
        if isinstance(value, ast.Call):
            callee = self.q(value.func)
            if callee in names.DECLARATIVE_BASE_FACTORIES or (
                isinstance(value.func, ast.Attribute) and value.func.attr == "generate_base"
            ):
                self.facts.declarative_bases.add(name)
            elif callee in names.FLASK_SQLALCHEMY:
                self.facts.flask_dbs.add(name)
            elif callee is not None and not callee.startswith(("sqlalchemy.", "builtins.")):
                # `SessionLocal = make_session_factory(engine)`: a factory if that project
                # function returns one (decided at query time).
                self.facts.factories.setdefault(
                    name, Factory(name, callee, None, None, line, via=callee))

    def factory_from(self, name: str, value: ast.AST, line: int) -> Factory | None:
        if not isinstance(value, ast.Call):
            return None
        builder = self.q(value.func)
        if builder is None:
            return None
        is_async = names.factory_builder(builder)
        if is_async is None:
            return None
        expire = _const_bool(_kw(value, "expire_on_commit"))
        bind_node = _kw(value, "bind") or (value.args[0] if value.args and builder not in names.SCOPED else None)
        bind = ast.unparse(bind_node) if bind_node is not None else None
        scoped = builder in names.SCOPED
        class_ = self.q(_kw(value, "class_"))
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
        target = node.args[0] if node.args else _kw(node, "dependency")
        use_cache = _const_bool(_kw(node, "use_cache"))
        return (self.q(target) or "", use_cache is not False)

    def alias_from(self, name: str, value: ast.AST) -> Alias | None:
        if not isinstance(value, ast.Subscript) or self.q(value.value) not in names.ANNOTATED:
            return None
        elts = value.slice.elts if isinstance(value.slice, ast.Tuple) else [value.slice]
        annotation = self.q(elts[0]) if elts else None
        for meta in elts[1:]:
            dep = self.depends_of(meta)
            if dep is not None:
                return Alias(name, dep[0] or None, dep[1], annotation)
        return None

    # classes ------------------------------------------------------------------
    def klass(self, node: ast.ClassDef, prefix: str) -> None:
        info = ClassFacts(
            qualname=prefix + node.name,
            line=node.lineno,
            bases=[b for b in (self.q(base) for base in node.bases) if b],
            keywords={k.arg: ast.unparse(k.value) for k in node.keywords if k.arg},
        )
        for stmt in node.body:
            target, value, annotation = None, None, None
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                target, value = stmt.targets[0].id, stmt.value
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                target, value, annotation = stmt.target.id, stmt.value, stmt.annotation
            if target is None:
                continue
            if target == "__abstract__":
                info.abstract = _const_bool(value) is True
                continue
            if target == "__tablename__":
                info.tablename = True
                continue
            attribute = self.mapped_attribute(value, annotation, info, target)
            if attribute is not None:
                attribute.line = stmt.lineno
                info.attributes[target] = attribute
        self.facts.classes[info.qualname] = info

    def mapped_attribute(self, value, annotation, info: ClassFacts, name: str) -> Attribute | None:
        """Column, deferred column or relationship declared by a class-level statement."""
        call = value if isinstance(value, ast.Call) else None
        func = call.func if call is not None else None
        last = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        callee = self.q(func) if func is not None else None
        # `relationship(...)` imported from SQLAlchemy/SQLModel, or `db.relationship(...)` of a
        # Flask-SQLAlchemy object (often imported from the app package, so not known here:
        # any `x.relationship(...)` counts; only classes that turn out to be models matter).
        sqla = callee is not None and callee.startswith(("sqlalchemy.", "sqlmodel.")) or isinstance(func, ast.Attribute)
        if call is not None and sqla and last in names.RELATIONSHIP_CALLS:
            lazy = _const_str(_kw(call, "lazy"))
            if lazy is None:  # SQLModel: Relationship(sa_relationship_kwargs={"lazy": ...})
                kwargs = _kw(call, "sa_relationship_kwargs")
                if isinstance(kwargs, ast.Dict):
                    for k, v in zip(kwargs.keys, kwargs.values):
                        if _const_str(k) == "lazy":
                            lazy = _const_str(v)
            target = _const_str(call.args[0]) if call.args else None
            if target is None and call.args:
                target = dotted_name(call.args[0])
            if target is None and annotation is not None:
                target = _annotation_target(annotation)
            backref = _kw(call, "backref")
            if backref is not None and target:
                ref_name = _const_str(backref)
                ref_lazy = "select"
                if isinstance(backref, ast.Call) and backref.args:
                    ref_name = _const_str(backref.args[0])
                    ref_lazy = _const_str(_kw(backref, "lazy")) or "select"
                if ref_name:
                    info.backrefs.append((target, ref_name, ref_lazy))
            return Attribute("relationship", lazy=lazy or "select", target=target)
        if call is not None and sqla and last in names.COLUMN_CALLS:
            deferred = last in ("deferred",) or _const_bool(_kw(call, "deferred")) is True
            return Attribute("deferred" if deferred else "column")
        if call is not None and sqla and last in ("Field",):  # SQLModel field
            return Attribute("column")
        if annotation is not None and value is None:
            head = annotation.value if isinstance(annotation, ast.Subscript) else annotation
            if self.q(head) in names.MAPPED:  # Mapped[X] alone is always a column
                return Attribute("column")
            if self.q(head) not in names.NOT_COLUMNS and not name.startswith("_"):
                # SQLModel plain annotations (`name: str`) are columns of table models.
                return Attribute("column")
        return None

    # functions ----------------------------------------------------------------
    def annotation_info(self, ann: ast.AST | None) -> tuple[str | None, str | None, tuple[str, bool] | None]:
        """(annotation head, alias name, Depends in Annotated) for a parameter annotation."""
        if ann is None:
            return None, None, None
        if isinstance(ann, ast.Subscript) and self.q(ann.value) in names.ANNOTATED:
            elts = ann.slice.elts if isinstance(ann.slice, ast.Tuple) else [ann.slice]
            dep = None
            for meta in elts[1:]:
                dep = self.depends_of(meta) or dep
            return (self.q(elts[0]) if elts else None), None, dep
        if isinstance(ann, ast.Subscript):
            return self.q(ann.value), None, None
        qualified = self.q(ann)
        return qualified, qualified, None

    def function(self, fn: ast.FunctionDef | ast.AsyncFunctionDef, prefix: str) -> None:
        params: list[Param] = []
        args = fn.args
        positional = args.posonlyargs + args.args
        defaults: list[ast.AST | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
        pairs = list(zip(positional, defaults)) + list(zip(args.kwonlyargs, args.kw_defaults))
        for arg, default in pairs:
            annotation, alias, dep = self.annotation_info(arg.annotation)
            dep = self.depends_of(default) or dep
            params.append(
                Param(
                    name=arg.arg,
                    depends=dep[0] or None if dep else None,
                    use_cache=dep[1] if dep else True,
                    annotation=annotation,
                    alias=alias,
                )
            )
        body = _FunctionBody(self, fn, class_prefix=prefix)
        info = Function(
            qualname=prefix + fn.name,
            line=fn.lineno,
            is_async=isinstance(fn, ast.AsyncFunctionDef),
            is_generator=body.is_generator,
            params=params,
            returns=self.q(fn.returns.value if isinstance(fn.returns, ast.Subscript) else fn.returns),
            opened=body.opened,
            yields_param=body.yields_param,
            calls=body.calls,
            session_names=body.session_names,
            decorators=[d for d in (self.q(_decorator_callee(dec)) for dec in fn.decorator_list) if d],
            commits=body.commits,
            commits_after_yield=body.commits_after_yield,
            yield_in_begin=body.yield_in_begin,
            yields_kind=body.yields_kind,
            yields_class=body.yields_class,
            returns_factory=body.returns_factory,
            session_decorator=self.session_decorator(fn) if body.has_nested else None,
            detaches=body.detaches,
            with_callees=body.with_callees,
            methods=body.methods,
            called=body.called,
            add_owners=body.add_owners,
            yield_sources=body.yield_sources,
            stores=body.stores,
        )
        if isinstance(fn.returns, ast.Subscript) and self.q(fn.returns.value) in names.ITERATOR_TYPES:
            inner = fn.returns.slice.elts[0] if isinstance(fn.returns.slice, ast.Tuple) else fn.returns.slice
            info.returns = self.q(inner)
        if fn.returns is not None:
            cls, shape = self.annotated_class(fn.returns)
            info.returns_class, info.returns_shape = cls, shape
        info.eager = body.eager
        self.facts.functions[info.qualname] = info

    def annotated_class(self, ann: ast.AST, depth: int = 0) -> tuple[str | None, str | None]:
        """(qualified class, shape) of a return annotation: ``User`` -> one, ``User | None`` /
        ``Optional[User]`` -> optional, ``list[User]`` / ``Sequence[User]`` -> list."""
        if depth > 4:
            return None, None
        if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
            try:
                ann = ast.parse(ann.value, mode="eval").body
            except SyntaxError:
                return None, None
        if isinstance(ann, ast.BinOp) and isinstance(ann.op, ast.BitOr):
            sides = [x for x in (ann.left, ann.right) if not (isinstance(x, ast.Constant) and x.value is None)]
            if len(sides) == 1:
                cls, shape = self.annotated_class(sides[0], depth + 1)
                return cls, "optional" if shape == "one" else shape
            return None, None
        if isinstance(ann, ast.Subscript):
            head = self.q(ann.value) or ""
            last = head.rsplit(".", 1)[-1]
            inner = ann.slice.elts[0] if isinstance(ann.slice, ast.Tuple) else ann.slice
            if last == "Optional":
                cls, shape = self.annotated_class(inner, depth + 1)
                return cls, "optional" if shape == "one" else shape
            if last in ("list", "List", "Sequence", "Iterable", "set", "Set", "tuple", "Tuple"):
                cls, _ = self.annotated_class(inner, depth + 1)
                return cls, "list"
            return None, None
        name = self.q(ann)
        return (name, "one") if name else (None, None)


    def session_decorator(self, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> SessionDecorator | None:
        """``fn`` is a decorator when it (or a decorator factory inside it) defines a wrapper
        that opens a session and calls the decorated function with it."""
        for nested, outer_params in _nested_functions(fn):
            own = {a.arg for a in nested.args.posonlyargs + nested.args.args}
            calls = [c for c in ast.walk(nested) if isinstance(c, ast.Call)
                     and dotted_name(strip_await(c.func)) in outer_params]
            if not calls:
                continue
            body = _FunctionBody(self, nested)
            for call in calls:
                passed = [(i, None, dotted_name(a)) for i, a in enumerate(call.args)]
                passed += [(None, kw.arg, dotted_name(kw.value)) for kw in call.keywords if kw.arg]
                for position, keyword, name in passed:
                    if name in body.session_names and name not in own:
                        opened = next((o for o in body.opened if body.session_names[name] == o.factory), None)
                        return SessionDecorator(body.session_names[name],
                                                opened.expire_on_commit if opened else None,
                                                body.commits or bool(opened and opened.begin), position, keyword)
        return None


def _nested_functions(fn: ast.FunctionDef | ast.AsyncFunctionDef):
    """(nested function, the parameter names of the functions enclosing it), in one walk."""
    out = []

    def walk(node: ast.AST, params: frozenset[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((child, params))
                walk(child, params | {a.arg for a in child.args.posonlyargs + child.args.args})
            elif not isinstance(child, (ast.ClassDef, ast.Lambda)):
                walk(child, params)

    walk(fn, frozenset(a.arg for a in fn.args.posonlyargs + fn.args.args))
    return out


EAGER_LOADERS = {"selectinload", "joinedload", "subqueryload", "immediateload", "contains_eager"}


def eager_names(node: ast.AST) -> set[str]:
    """Relationship names a function loads eagerly: selectinload(User.posts), joinedload("posts")."""
    out: set[str] = set()
    for call in ast.walk(node):
        if not isinstance(call, ast.Call):
            continue
        func = call.func
        last = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if last not in EAGER_LOADERS:
            continue
        for arg in call.args:
            if isinstance(arg, ast.Attribute):
                out.add(arg.attr)
            elif isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                out.add(arg.value.rsplit(".", 1)[-1])
    return out


def _decorator_callee(node: ast.AST) -> ast.AST:
    return node.func if isinstance(node, ast.Call) else node


def _const_str(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _annotation_target(annotation: ast.AST) -> str | None:
    """The class a Mapped[...] annotation names: Mapped["User"], Mapped[list["Item"]],
    Mapped[Optional[User]] -> its innermost name."""
    node = annotation
    while isinstance(node, ast.Subscript):
        inner = node.slice
        if isinstance(inner, ast.Tuple):
            inner = inner.elts[0]
        node = inner
    if isinstance(node, ast.BinOp):  # X | None
        node = node.left
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value.strip()
        for wrapper in ("list[", "List[", "set[", "Set[", "Optional["):
            if text.startswith(wrapper):
                text = text[len(wrapper):].rstrip("]")
        return text.split("|")[0].strip().strip("'\"") or None
    name = dotted_name(node)
    if name in ("int", "str", "float", "bool", "bytes", "datetime", "date", "dict", "Any", "None"):
        return None
    return name


class _FunctionBody(ast.NodeVisitor):
    """Facts about one function body (nested functions and classes are not entered)."""

    def __init__(self, ex: _Extractor, fn: ast.FunctionDef | ast.AsyncFunctionDef, class_prefix: str = "") -> None:
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
        self._seen_yield = False
        self._begin_depth = 0
        self.closed_names: set[str] = set()
        self.detaches = False
        self.with_callees: list[str] = []
        self.methods: set[str] = set()
        self.called: set[str] = set()
        self.eager: set[str] = set()
        self.yield_sources: list[str] = []
        self.globals: set[str] = set()
        self.add_owners: set[str] = set()
        self.stores: set[str] = set()
        self.has_nested = False
        self.opened: list[OpenedSession] = []
        self.yields_param: str | None = None
        self.calls: list[CallSite] = []
        self.origins: dict[str, Origin] = {}
        self.session_names: dict[str, str] = {}
        all_args = fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
        self.param_names = {a.arg for a in all_args}
        self.param_annotations: dict[str, str] = {}
        for a in all_args:
            self.origins[a.arg] = Origin("param")
            head = a.annotation.value if isinstance(a.annotation, ast.Subscript) else a.annotation
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
        callee = dotted_name(value.func)
        if callee is None:
            return None
        if callee in self.param_annotations:
            return self.param_annotations[callee] + "()"  # an instance of that type, called
        if callee in self.session_names and names.factory_builder(self.session_names[callee]) is not None:
            return self.session_names[callee] + "()"  # a factory built in this function, called
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
            if isinstance(target, ast.Name):
                if begin:  # `with factory.begin() as s`: opens a session that commits on exit
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

    @staticmethod
    def _expire_kw(value: ast.AST) -> bool | None:
        value = strip_await(value)
        return _const_bool(_kw(value, "expire_on_commit")) if isinstance(value, ast.Call) else None

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
            if isinstance(target, ast.Name):
                self._bind(target.id, node.value)
            elif (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                  and target.value.id == "self" and self.class_prefix):
                # `self.session_factory = async_sessionmaker(...)` in a method
                name = self.class_prefix + target.attr
                factory = self.ex.factory_from(name, node.value, node.lineno)
                if factory is not None:
                    self.ex.facts.factories[name] = factory
                value = strip_await(node.value)
                if isinstance(value, ast.Name) and value.id in self.param_annotations:
                    self.ex.facts.self_values[name] = "type:" + self.param_annotations[value.id]
                elif isinstance(value, ast.Call) and dotted_name(value.func):
                    callee = dotted_name(value.func)
                    if callee in self.param_annotations:
                        callee = self.param_annotations[callee] + "()"
                    elif not callee.startswith("self."):
                        callee = self.ex.facts.qualify(callee) or callee
                    self.ex.facts.self_values[name] = "call:" + callee

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.generic_visit(node)
        if isinstance(node.target, ast.Name) and node.value is not None:
            self._bind(node.target.id, node.value)

    def _bind(self, name: str, value: ast.AST) -> None:
        self.origins[name] = self.origin(value)
        opened = self._opens(value)
        if opened is not None:
            self.session_names[name] = opened
            self.opened.append(OpenedSession(opened, closed_on_return=False, yielded=False,
                                             expire_on_commit=self._expire_kw(value), name=name))

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

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        if isinstance(node.func, ast.Attribute):
            self.methods.add(node.func.attr)
            if node.func.attr in STORE_METHODS:
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
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("close", "expunge", "expunge_all"):
            owner = dotted_name(node.func.value)
            if owner in self.session_names:
                if node.func.attr == "close":
                    self.closed_names.add(owner)
                else:
                    self.detaches = True
        if isinstance(node.func, ast.Attribute) and node.func.attr == "commit":
            owner = dotted_name(node.func.value)
            if owner in self.session_names or (owner or "").startswith("self."):
                self.commits = True
                if self._seen_yield:
                    self.commits_after_yield = True
        callee = dotted_name(node.func)
        if callee is None or "." in callee and callee.split(".")[0] in ("self", "cls"):
            return
        qualified = self.ex.facts.qualify(callee)
        if qualified is None or len(node.args) + len(node.keywords) < 2:
            return
        args = [self.origin(a) for a in node.args]
        kwargs = {k.arg: self.origin(k.value) for k in node.keywords if k.arg}
        # Kept only when it may pass an ORM object and a session side by side: what the
        # callers of a function that takes both are asked (and what the cache has to store).
        if not any(o.kind in ("new", "loaded", "session") for o in (*args, *kwargs.values())):
            return
        self.calls.append(
            CallSite(
                callee=qualified,
                line=node.lineno,
                args=args,
                kwargs=kwargs,
                arg_names=[dotted_name(a) for a in node.args],
                kwarg_names={k.arg: dotted_name(k.value) for k in node.keywords if k.arg},
            )
        )


def parse_for_index(source: str | bytes, path: str = "<unknown>") -> ast.Module:
    """``ast.parse``, and for syntax newer than the running Python (PEP 695 generics and
    `type` aliases, Python 3.14's unparenthesised `except A, B:`), a parse of the same code
    with those constructs rewritten to older equivalents by libcst, line numbers kept. The
    index does not care about type parameters or how an except clause is spelled."""
    try:
        return ast.parse(source, filename=path)
    except SyntaxError as first:
        try:
            import libcst as cst

            text = source.decode("utf-8") if isinstance(source, bytes) else source
            module = cst.parse_module(text)
            return ast.parse(module.visit(_Downgrade()).code, filename=path)
        except Exception:
            raise first from None


def _downgrade_class():
    import libcst as cst

    class Downgrade(cst.CSTTransformer):
        def leave_FunctionDef(self, original, updated):
            return updated.with_changes(type_parameters=None) if updated.type_parameters else updated

        def leave_ClassDef(self, original, updated):
            return updated.with_changes(type_parameters=None) if updated.type_parameters else updated

        def leave_TypeAlias(self, original, updated):
            return cst.Assign(targets=[cst.AssignTarget(updated.name)], value=updated.value)

        def leave_ExceptHandler(self, original, updated):
            if isinstance(updated.type, cst.Tuple) and not updated.type.lpar:
                return updated.with_changes(type=updated.type.with_changes(
                    lpar=[cst.LeftParen()], rpar=[cst.RightParen()]))
            return updated

    return Downgrade


class _LazyDowngrade:
    _cls = None

    def __call__(self):
        if _LazyDowngrade._cls is None:
            _LazyDowngrade._cls = _downgrade_class()
        return _LazyDowngrade._cls()


_Downgrade = _LazyDowngrade()


STORE_METHODS = {"add", "append", "setdefault", "insert", "appendleft"}
CONTAINER_CALLS = {"dict", "list", "set", "OrderedDict", "defaultdict", "WeakValueDictionary", "TTLCache", "LRUCache"}


def _is_container(value: ast.AST | None) -> bool:
    if isinstance(value, (ast.Dict, ast.List, ast.Set)):
        return True
    if isinstance(value, ast.Call):
        return (dotted_name(value.func) or "").rsplit(".", 1)[-1] in CONTAINER_CALLS
    return False


def _containers(body: list[ast.stmt], prefix: str, out: set[str]) -> None:
    for stmt in body:
        if isinstance(stmt, ast.Assign) and _is_container(stmt.value):
            out.update(prefix + t.id for t in stmt.targets if isinstance(t, ast.Name))
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and _is_container(stmt.value):
            out.add(prefix + stmt.target.id)
        elif isinstance(stmt, ast.ClassDef) and not prefix:
            _containers(stmt.body, stmt.name + ".", out)


def _aggregate(tree: ast.Module, facts: ModuleFacts) -> None:
    """Module-wide shapes, over-approximate: every call and with-item anywhere."""
    _containers(tree.body, "", facts.containers)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute):
                facts.all_methods.add(node.func.attr)
            elif isinstance(node.func, ast.Name):
                facts.all_called.add(node.func.id)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                expr = strip_await(item.context_expr)
                if isinstance(expr, ast.Call):
                    func = expr.func.value if isinstance(expr.func, ast.Attribute) and expr.func.attr == "begin" else expr.func
                    callee = dotted_name(func)
                    if callee is not None:
                        facts.all_with_callees.add(facts.qualify(callee) or callee)
        if isinstance(node, (ast.AsyncFunctionDef, ast.Await, ast.AsyncWith, ast.AsyncFor)):
            facts.has_async = True


def extract(path: str, source: str | bytes, module: str) -> ModuleFacts:
    """Facts for one module. Raises SyntaxError (or ValueError) when it cannot be parsed."""
    tree = parse_for_index(source, path)
    facts = ModuleFacts(path=path, module=module)
    ex = _Extractor(facts)
    ex.imports(tree)
    ex.module_level(tree)
    _aggregate(tree, facts)
    for target, opts in facts.configure_calls.items():
        if target in facts.factories and opts.get("expire_on_commit") is not None:
            facts.factories[target].expire_on_commit = opts["expire_on_commit"]
    return facts


# --------------------------------------------------------------------------- the index


def minimal_tokens(tokens: Iterable[str]) -> tuple[bytes, ...]:
    """The tokens, less those that contain a shorter one (the shorter already matches)."""
    kept = sorted({t for t in tokens if t}, key=len)
    out: list[str] = []
    for t in kept:
        if not any(o in t for o in out):
            out.append(t)
    return tuple(t.encode() for t in out)


@dataclass
class SessionOrigin:
    """Which session an injected value belongs to."""

    provider: str | None  # canonical session provider (FastAPI dependency) or None for own sessions
    open: bool  # still open while the endpoint runs
    use_cache: bool = True
    opener: str | None = None  # for own sessions: the provider that opens it


@dataclass
class Model:
    qualified: str
    columns: set[str]
    deferred: set[str]
    relationships: dict[str, str]  # name -> lazy strategy
    targets: dict[str, str]  # relationship name -> target class as written

    @property
    def name(self) -> str:
        return self.qualified.rsplit(".", 1)[-1]


@dataclass
class Scope:
    """What `with X(...) as name:` opens."""

    kind: str  # "session", "begin", "context-manager", "configured"
    name: str
    is_async: bool | None
    expire_on_commit: bool  # effective: stated, or the factory's, or the configured assumption
    commits_on_exit: bool
    yields: str  # "session" or "service"
    factory: str | None = None


class ProjectIndex:
    def __init__(self, modules: Iterable[ModuleFacts] = (), config_factories: dict | None = None,
                 config_scopes: Iterable[str] = (), assume_expire_on_commit: bool = True) -> None:
        self.modules: dict[str, ModuleFacts] = {}
        self.by_path: dict[str, ModuleFacts] = {}
        self.duplicates: list[tuple[str, str, str]] = []  # (module, one path, another path)
        for facts in modules:
            self.add(facts)
        self.config_factories = dict(config_factories or {})
        self.config_scopes = tuple(config_scopes)
        self.assume_expire_on_commit = assume_expire_on_commit
        self._models: dict[str, Model] | None = None
        self._mapped_memo: dict[str, str | None] = {}
        self._relationship_names: dict[str, set[str]] | None = None
        self._defined: dict[int, str] | None = None
        self._returning: set[str] = set()  # guards _returns_session against cycles
        self._models_by_class: dict[int, Model] = {}
        self._models_by_name: dict[str, list[Model]] = {}
        self._callers: dict[str, list[tuple[ModuleFacts, Function, CallSite]]] | None = None
        self._relevance: tuple[bytes, ...] | None = None
        self._names: set[str] | None = None
        self._suffixes: dict[str, list[ModuleFacts]] | None = None

    def add(self, facts: ModuleFacts) -> None:
        other = self.modules.get(facts.module)
        if other is not None and other.path != facts.path:
            self.duplicates.append((facts.module, other.path, facts.path))
        self.modules[facts.module] = facts
        self.by_path[os.path.abspath(facts.path)] = facts
        self._callers = None
        self._suffixes = None
        self._relevance = None
        self._names = None
        self._models = None
        self._mapped_memo = {}
        self._relationship_names = None
        self._defined = None

    def names(self) -> set[str]:
        """The project's own session-related names: factories, Annotated aliases, FastAPI
        providers, context managers and decorators that handle sessions. A file that mentions
        one of them is indexed too, and is worth parsing for the passes."""
        if self._names is None:
            self._names = self._session_names()
        return self._names

    def _session_names(self) -> set[str]:
        found: set[str] = set()
        for mod in self.modules.values():
            # Only what resolves to a session factory: `factories` also holds every value a call
            # returned (`T = TypeVar("T")`, `logger = get_logger()`) until it is resolved.
            found.update(n for n in mod.factories if self.factory(f"{mod.module}.{n}" if mod.module else n))
            found.update(mod.aliases)
            for fn in mod.functions.values():
                if "." in fn.qualname:
                    continue
                if fn.session_decorator is not None or fn.yields_kind or any(p.depends for p in fn.params):
                    found.add(fn.qualname)
                elif (fn.is_generator or fn.returns_class) and any(
                        self.opens_session(o.factory) is not None for o in fn.opened):
                    found.add(fn.qualname)  # a provider, or a function returning what it loaded
            # Flask-SQLAlchemy's `db` and declarative bases are short, common words: match
            # them in the shapes that use them.
            for db in mod.flask_dbs:
                found.update({f"{db}.Model", f"{db}.session", f"{db}.relationship"})
            found.update(f"({base})" for base in mod.declarative_bases)
        found.update(n.rsplit(".", 1)[-1] for n in self.config_factories)
        found.update(n.rsplit(".", 1)[-1] for n in self.config_scopes)
        return {n for n in found if n}

    def relevance(self) -> tuple[bytes, ...]:
        """Bytes that make a file worth parsing: SQLAlchemy's own names and the project's
        session-related names. (A `bytes in` test per token is much faster than one regex
        alternation of them.)"""
        if self._relevance is None:
            tokens = {"session", "Session"} | {t.decode() for t in INDEX_TRIGGERS} | self.names()
            self._relevance = minimal_tokens(tokens)
        return self._relevance

    def ambiguous_imports(self) -> list[tuple[str, list[str]]]:
        """Imports that match several modules of the tree by suffix (several projects with
        the same package names checked at once): they cannot be resolved."""
        self._module("x.x")  # builds the suffix table
        out: dict[str, list[str]] = {}
        for mod in self.modules.values():
            for target in mod.imports.values():
                parts = target.split(".")
                for cut in range(len(parts), 1, -1):
                    name = ".".join(parts[:cut])
                    if name in self.modules:
                        break
                    candidates = (self._suffixes or {}).get(name, [])
                    if len(candidates) > 1:
                        out.setdefault(name, sorted(m.path for m in candidates))
                        break
        return sorted(out.items())

    def add_transient(self, facts: ModuleFacts) -> None:
        """Make a file's facts findable by path only (a worker looking at a file the index did
        not take), leaving every cache of the project as it is."""
        self.by_path[os.path.abspath(facts.path)] = facts

    def module_for_path(self, path: str) -> ModuleFacts | None:
        return self.by_path.get(os.path.abspath(path))

    # name resolution --------------------------------------------------------
    def _module(self, dotted: str) -> ModuleFacts | None:
        """The module named ``dotted``; else the one module whose name ends with it (a
        project checked from above its import root: ``src.app.db`` for ``app.db``)."""
        if dotted in self.modules:
            return self.modules[dotted]
        if "." not in dotted:
            return None  # `import logging` is the standard library, not `myapp.logging`
        if self._suffixes is None:
            table: dict[str, list[ModuleFacts]] = {}
            for name, mod in self.modules.items():
                parts = name.split(".")
                for i in range(1, len(parts)):
                    table.setdefault(".".join(parts[i:]), []).append(mod)
            self._suffixes = table
        matches = self._suffixes.get(dotted, ())
        return matches[0] if len(matches) == 1 else None

    def _split(self, qualified: str) -> Iterator[tuple[ModuleFacts, str]]:
        parts = qualified.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            mod = self._module(".".join(parts[:cut]))
            if mod is not None:
                yield mod, ".".join(parts[cut:])

    def _resolve(self, qualified: str | None, kind: str, depth: int = 0):
        if not qualified or depth > 8:
            return None
        for mod, local in self._split(qualified):
            table = getattr(mod, kind)
            if local in table:
                return table[local]
            head = local.split(".")[0]
            if head in mod.imports:  # re-exported
                rest = local[len(head):]
                return self._resolve(mod.imports[head] + rest, kind, depth + 1)
        return None

    def function(self, qualified: str | None) -> Function | None:
        return self._resolve(qualified, "functions")

    def alias(self, qualified: str | None) -> Alias | None:
        return self._resolve(qualified, "aliases")

    def factory(self, qualified: str | None) -> Factory | None:
        if qualified in self.config_factories:
            return self.config_factories[qualified]
        found = self._resolve(qualified, "factories")
        if found is not None and found.via is not None:
            maker = self.function(found.via)
            if maker is None or maker.returns_factory is None:
                return None
            inner = maker.returns_factory
            return Factory(found.name, inner.builder, inner.is_async, inner.expire_on_commit,
                           found.line, inner.scoped, inner.bind, via=found.via)
        return found

    def expire_on_commit(self, factory: str | None, stated: bool | None = None) -> bool:
        """Does a session opened by calling ``factory`` expire its instances on commit?"""
        if stated is not None:
            return stated
        if factory is not None and factory.endswith("()"):
            return self.assume_expire_on_commit  # a parameter typed as a factory: unknown
        if names.session_class(factory) is not None:
            return True  # Session(engine) with no option: SQLAlchemy's default
        found = self.factory(factory)
        if found is not None and found.expire_on_commit is not None:
            return found.expire_on_commit
        if found is None and factory is not None and self._returns_session(factory) is not None:
            # `def session(): return Session(...)`/`return maker()`: that session's setting
            fn = self.function(factory)
            for o in fn.opened if fn is not None else ():
                if o.yielded and o.factory != factory and self.opens_session(o.factory) is not None:
                    return self.expire_on_commit(o.factory, o.expire_on_commit)
        return self.assume_expire_on_commit

    def is_session_name(self, fn: Function, name: str) -> bool:
        """Does the local ``name`` of function ``fn`` hold a session: one it opened from a
        factory (or a session class), or a parameter typed as a session?"""
        factory = fn.session_names.get(name)
        if factory is not None and self.opens_session(factory) is not None:
            return True
        return any(p.name == name and self.session_class(p.annotation) is not None for p in fn.params)

    def function_expires(self, fn: Function, name: str) -> bool:
        """Does the session held by local ``name`` of ``fn`` expire on commit?"""
        factory = fn.session_names.get(name)
        stated = next((o.expire_on_commit for o in fn.opened if o.factory == factory
                       and o.expire_on_commit is not None), None)
        return self.expire_on_commit(factory, stated)

    # scopes -------------------------------------------------------------------
    def scope(self, qualified: str | None, begin: bool = False, stated_expire: bool | None = None) -> Scope | None:
        """What ``with <qualified>(...)`` (or ``with <qualified>.begin()``) opens, if it is a
        session scope: a session class, a factory, a project context manager yielding a
        session or a service built around one, or a configured scope."""
        if qualified is None:
            return None
        is_async = self.opens_session(qualified)
        if is_async is not None:
            factory = self.factory(qualified)
            return Scope("begin" if begin else "session", qualified, is_async,
                         self.expire_on_commit(qualified, stated_expire), commits_on_exit=begin,
                         yields="session", factory=factory.name if factory else qualified)
        if qualified in self.config_scopes:
            return Scope("configured", qualified, None, self.assume_expire_on_commit,
                         commits_on_exit=True, yields="service")
        fn = self.function(qualified)
        if fn is None or fn.yields_kind is None:
            return None
        if not any(d in names.CONTEXT_MANAGER_DECORATORS for d in fn.decorators):
            return None
        if not any(self.opens_session(src) is not None or self.session_class(src) is not None
                   for src in fn.yield_sources):
            return None  # it yields something made by a call that is not a session (a temp dir, a timer)
        opened = next((o for o in fn.opened if self.opens_session(o.factory) is not None), None)
        if opened is None:
            # a service built around a session the context manager received (a parameter
            # typed as a session): its factory's settings are unknown.
            return Scope("context-manager", qualified, None, self.assume_expire_on_commit,
                         fn.commits_after_yield or fn.yield_in_begin, fn.yields_kind)
        return Scope("context-manager", qualified, self.opens_session(opened.factory),
                     self.expire_on_commit(opened.factory, opened.expire_on_commit),
                     commits_on_exit=fn.commits_after_yield or fn.yield_in_begin or opened.begin,
                     yields=fn.yields_kind, factory=opened.factory)

    def any_scope(self, callees) -> bool:
        """Is one of these with-item callees a session scope? A name the module does not
        define or import (a parameter, a local) may be one: True."""
        for q in callees:
            if self.scope(q) is not None:
                return True
            if "." not in q:
                return True
        return False

    def self_session(self, module: ModuleFacts, class_qualname: str, attr: str, depth: int = 0) -> bool:
        """Does ``self.<attr>`` of that class hold a session?"""
        value = module.self_values.get(f"{class_qualname}.{attr}")
        if value is None or depth > 4:
            return False
        kind, _, what = value.partition(":")
        if kind == "type":
            return self.session_class(what) is not None
        if what.startswith("self."):  # self.session = self.factory()
            other = module.self_values.get(f"{class_qualname}.{what[5:]}")
            if other is None:
                return False
            okind, _, owhat = other.partition(":")
            return okind == "type" and (names.factory_builder(owhat) is not None or self.factory(owhat) is not None)
        return self.opens_session(what) is not None

    def flask_session(self, qualified: str | None) -> bool:
        """``db.session`` of a Flask-SQLAlchemy ``db = SQLAlchemy()``."""
        if not qualified or not qualified.endswith(".session"):
            return False
        return self._is_flask_db(qualified[: -len(".session")])

    def _is_flask_db(self, qualified: str, depth: int = 0) -> bool:
        if depth > 6:
            return False
        for mod, local in self._split(qualified):
            if local in mod.flask_dbs:
                return True
            if local in mod.imports and mod.imports[local] != qualified:
                return self._is_flask_db(mod.imports[local], depth + 1)
        return False

    def decorator(self, qualified: str | None) -> SessionDecorator | None:
        """The session decorator ``qualified``, when what its wrapper passes on really is a
        session (not any object the wrapper built)."""
        fn = self.function(qualified)
        d = fn.session_decorator if fn is not None else None
        if d is None or self.opens_session(d.factory) is None:
            return None
        return d

    # models -------------------------------------------------------------------
    def _class(self, qualified: str | None) -> ClassFacts | None:
        return self._resolve(qualified, "classes")

    def _mapped(self, qualified: str, depth: int = 0) -> str | None:
        """"model", "base" (a declarative base, or an abstract mapped class) or None."""
        if depth > 12:
            return None
        key = qualified
        if key in self._mapped_memo:
            return self._mapped_memo[key]
        self._mapped_memo[key] = None  # cycles (class A(B), class B(A)) end here
        result = self._mapped_uncached(qualified, depth)
        self._mapped_memo[key] = result
        return result

    def _mapped_uncached(self, qualified: str, depth: int) -> str | None:
        cls = self._class(qualified)
        if cls is None:
            return None
        kind = None
        for base in cls.bases:
            if base in names.DECLARATIVE_BASE_CLASSES:
                kind = kind or "base"
            elif base in names.SQLMODEL:
                if cls.keywords.get("table") == "True":
                    return "model"
            elif self._is_declarative_name(base):
                kind = "model"
            else:
                inner = self._mapped(base, depth + 1)
                if inner is not None:
                    kind = "model" if inner in ("model", "base") else kind
        if kind == "base" and cls.tablename and not cls.abstract:
            return "model"
        if kind == "model" and cls.abstract:
            return "base"
        return kind

    def _is_declarative_name(self, qualified: str, depth: int = 0) -> bool:
        """``app.db.Base`` where ``Base = declarative_base()``; ``app.db.db.Model`` for
        Flask-SQLAlchemy's ``db = SQLAlchemy()``."""
        if depth > 8:
            return False
        for mod, local in self._split(qualified):
            if local in mod.declarative_bases:
                return True
            head, _, rest = local.partition(".")
            if rest == "Model" and head in mod.flask_dbs:
                return True
            if head in mod.imports and (rest or local != head):
                target = mod.imports[head] + ("." + rest if rest else "")
                return target != qualified and self._is_declarative_name(target, depth + 1)
        return False

    def models(self) -> dict[str, Model]:
        if self._models is None:
            found: dict[str, Model] = {}
            for mod in self.modules.values():
                for qualname in mod.classes:
                    qualified = f"{mod.module}.{qualname}" if mod.module else qualname
                    if self._mapped(qualified) == "model":
                        found[qualified] = self._build_model(qualified)
            by_name = {q.rsplit(".", 1)[-1]: m for q, m in found.items()}
            for mod in self.modules.values():  # backrefs declare relationships on their target
                for cls in mod.classes.values():
                    for target, ref, lazy in cls.backrefs:
                        model = by_name.get(target.rsplit(".", 1)[-1])
                        if model is not None:
                            model.relationships.setdefault(ref, lazy)
            self._models = found
            self._models_by_class = {}
            self._models_by_name = {}
            for q, model in found.items():
                cls = self._class(q)
                if cls is not None:
                    self._models_by_class[id(cls)] = model
                self._models_by_name.setdefault(q.rsplit(".", 1)[-1], []).append(model)
        return self._models

    def _build_model(self, qualified: str) -> Model:
        model = Model(qualified, set(), set(), {}, {})
        chain, seen = [qualified], set()
        while chain:
            current = chain.pop()
            if current in seen:
                continue
            seen.add(current)
            cls = self._class(current)
            if cls is None:
                continue
            for name, attr in cls.attributes.items():
                if attr.kind == "relationship":
                    model.relationships.setdefault(name, attr.lazy or "select")
                    model.targets.setdefault(name, attr.target or "")
                elif attr.kind == "deferred":
                    model.deferred.add(name)
                else:
                    model.columns.add(name)
            chain.extend(cls.bases)
        return model

    def model(self, qualified: str | None) -> Model | None:
        if qualified is None:
            return None
        models = self.models()
        if qualified in models:
            return models[qualified]
        cls = self._class(qualified)
        return self._models_by_class.get(id(cls)) if cls is not None else None

    def model_named(self, name: str) -> Model | None:
        """The one model whose class name is ``name`` (None when unknown or ambiguous)."""
        self.models()
        matches = self._models_by_name.get(name, [])
        return matches[0] if len(matches) == 1 else None

    def relationship_names(self) -> dict[str, set[str]]:
        """attribute name -> lazy strategies it has on any model (for untyped objects)."""
        if self._relationship_names is None:
            out: dict[str, set[str]] = {}
            for model in self.models().values():
                for name, lazy in model.relationships.items():
                    out.setdefault(name, set()).add(lazy)
            self._relationship_names = out
        return self._relationship_names

    def session_class(self, qualified: str | None, depth: int = 0) -> bool | None:
        """Is ``qualified`` a session class (SQLAlchemy's, SQLModel's, or a project alias or
        NewType of one)? Returns its async-ness, or None."""
        kind = names.session_class(qualified)
        if kind is not None or qualified is None or depth > 6:
            return kind
        for mod, local in self._split(qualified):
            if local in mod.session_types:
                return self.session_class(mod.session_types[local], depth + 1)
            head = local.split(".")[0]
            if head in mod.imports and mod.imports[head] != qualified:
                return self.session_class(mod.imports[head] + local[len(head):], depth + 1)
        return None

    def opens_session(self, qualified: str | None) -> bool | None:
        """Is calling ``qualified`` opening a session? Returns its async-ness, or None."""
        if qualified is None:
            return None
        cls = names.session_class(qualified)
        if cls is not None:
            return cls
        if qualified.endswith("()"):  # calling a value annotated with a factory type
            return names.factory_builder(qualified[:-2])
        factory = self.factory(qualified)
        if factory is not None:
            return bool(factory.is_async)
        return self._returns_session(qualified)

    def _returns_session(self, qualified: str, depth: int = 0) -> bool | None:
        """``def session_factory(): return SessionLocal()``: calling it opens a session."""
        fn = self.function(qualified)
        if fn is None or fn.is_generator or depth > 4 or qualified in self._returning:
            return None
        self._returning.add(qualified)
        try:
            for o in fn.opened:
                if o.yielded and not o.closed_on_return and o.factory != qualified:
                    kind = self.opens_session(o.factory)
                    if kind is not None:
                        return kind
            return None
        finally:
            self._returning.discard(qualified)

    def param_dependency(self, param: Param) -> tuple[str | None, bool]:
        if param.depends:
            return param.depends, param.use_cache
        alias = self.alias(param.alias) if param.alias else None
        if alias is not None:
            return alias.depends, alias.use_cache
        return None, True

    # FastAPI providers --------------------------------------------------------
    def session_provider(self, qualified: str | None, depth: int = 0) -> str | None:
        """The canonical session provider when ``qualified`` is a dependency that provides a
        session (yields or returns one), following providers that pass their own injected
        session through. None when it does not provide a session."""
        fn = self.function(qualified)
        if fn is None or depth > 8:
            return None
        if fn.yields_param is not None:
            for p in fn.params:
                if p.name == fn.yields_param:
                    dep, cache = self.param_dependency(p)
                    if dep and cache:
                        inner = self.session_provider(dep, depth + 1)
                        if inner is not None:
                            return inner
        if any(o.yielded and self.opens_session(o.factory) is not None for o in fn.opened):
            return self.canonical(qualified)
        if self.session_class(fn.returns) is not None and (fn.opened or fn.is_generator):
            return self.canonical(qualified)
        return None

    def canonical(self, qualified: str | None) -> str | None:
        """Where the function ``qualified`` is defined (``app.db.get_db`` for a re-export
        ``app.deps.get_db``), so that two spellings of one provider compare equal."""
        fn = self.function(qualified)
        if fn is None:
            return qualified
        if self._defined is None:
            self._defined = {id(f): f"{m.module}.{q}" if m.module else q
                             for m in self.modules.values() for q, f in m.functions.items()}
        return self._defined.get(id(fn), qualified)

    def value_sessions(self, qualified: str | None, depth: int = 0) -> list[SessionOrigin] | None:
        """The sessions the value of dependency ``qualified`` may belong to.

        None when the provider is not in the project (nothing can be said)."""
        fn = self.function(qualified)
        if fn is None or depth > 8:
            return None
        found: list[SessionOrigin] = []
        for p in fn.params:
            dep, cache = self.param_dependency(p)
            if not dep:
                continue
            provider = self.session_provider(dep)
            if provider is not None:
                found.append(SessionOrigin(provider, open=True, use_cache=cache))
                continue
            inner = self.value_sessions(dep, depth + 1)
            if inner:
                found.extend(inner)
        for opened in fn.opened:
            if self.opens_session(opened.factory) is None:
                continue
            found.append(SessionOrigin(None, open=not opened.closed_on_return, opener=self.canonical(qualified)))
        if fn.detaches:  # it expunges what it hands over: a detached object re-attaches on add()
            found = [SessionOrigin(o.provider, False, o.use_cache, o.opener) for o in found]
        return found

    # call sites ---------------------------------------------------------------
    def callers(self, qualified: str) -> list[tuple[ModuleFacts, Function, CallSite]]:
        """Call sites of the project function ``qualified``, across modules."""
        if self._callers is None:
            table: dict[str, list] = {}
            for mod in self.modules.values():
                for fn in mod.functions.values():
                    for call in fn.calls:
                        table.setdefault(call.callee.rsplit(".", 1)[-1], []).append((mod, fn, call))
            self._callers = table
        target = self.function(qualified)
        if target is None:
            return []
        out = []
        resolved: dict[str, bool] = {}
        for row in self._callers.get(qualified.rsplit(".", 1)[-1], ()):
            callee = row[2].callee
            if callee not in resolved:
                resolved[callee] = callee == qualified or self.function(callee) is target
            if resolved[callee]:
                out.append(row)
        return out


# --------------------------------------------------------------------------- describing


def describe(index: ProjectIndex) -> dict:
    """What the index found, for `sqla-fix index`: plain data, sorted."""
    factories, scopes, decorators, providers, aliases = [], [], [], [], []
    where_defined = {id(fn): f"{m.module}.{q}" if m.module else q
                     for m in index.modules.values() for q, fn in m.functions.items()}
    targets = set()  # every Depends target, named where it is defined
    for mod in index.modules.values():
        deps = [index.param_dependency(p)[0] for fn in mod.functions.values() for p in fn.params]
        deps += [a.depends for a in mod.aliases.values()]
        for dep in filter(None, deps):
            found = index.function(dep)
            targets.add(where_defined.get(id(found), dep))
    for mod in sorted(index.modules.values(), key=lambda m: m.module):
        where = lambda line, mod=mod: f"{mod.path}:{line}"  # noqa: E731
        for name, f in sorted(mod.factories.items()):
            qualified = f"{mod.module}.{name}" if mod.module else name
            resolved = index.factory(qualified)
            if resolved is None:
                continue
            factories.append({
                "name": qualified, "at": where(f.line), "builder": resolved.builder,
                "async": resolved.is_async, "expire_on_commit": index.expire_on_commit(qualified),
                "expire_on_commit_stated": resolved.expire_on_commit is not None,
                "scoped": resolved.scoped, "bind": resolved.bind,
            })
        for qualname, fn in sorted(mod.functions.items()):
            qualified = f"{mod.module}.{qualname}" if mod.module else qualname
            scope = index.scope(qualified)
            if scope is not None:
                scopes.append({"name": qualified, "at": where(fn.line), "yields": scope.yields,
                               "service": fn.yields_class, "factory": scope.factory,
                               "async": scope.is_async, "expire_on_commit": scope.expire_on_commit,
                               "commits_on_exit": scope.commits_on_exit})
            d = index.decorator(qualified)
            if d is not None:
                decorators.append({"name": qualified, "at": where(fn.line), "factory": d.factory,
                                   "expire_on_commit": index.expire_on_commit(d.factory, d.expire_on_commit),
                                   "commits": d.commits,
                                   "passes_session_as": d.keyword or f"argument {d.position}"})
            provider = index.session_provider(qualified)
            depends = [index.param_dependency(p)[0] for p in fn.params]
            depends = [d for d in depends if d]
            if provider is not None or depends or qualified in targets:
                origins = index.value_sessions(qualified) or []
                providers.append({
                    "name": qualified, "at": where(fn.line),
                    "provides_session": provider is not None and provider == qualified,
                    "session_from": provider if provider not in (None, qualified) else None,
                    "depends_on": depends,
                    "value_sessions": [
                        {"provider": o.provider, "open": o.open, "use_cache": o.use_cache} for o in origins
                    ] if provider is None else [],
                })
        for name, a in sorted(mod.aliases.items()):
            aliases.append({"name": f"{mod.module}.{name}" if mod.module else name,
                            "type": a.annotation, "depends": a.depends, "use_cache": a.use_cache})
    models = [
        {"name": q, "columns": sorted(m.columns), "deferred": sorted(m.deferred),
         "relationships": {k: m.relationships[k] for k in sorted(m.relationships)}}
        for q, m in sorted(index.models().items())
    ]
    return {"factories": factories, "scopes": scopes, "decorators": decorators,
            "providers": providers, "aliases": aliases, "models": models}


def render_description(data: dict) -> str:
    lines: list[str] = []

    def section(title: str, rows: list[str]) -> None:
        lines.append(f"{title} ({len(rows)})")
        lines.extend(f"  {r}" for r in rows)
        lines.append("")

    section("Session factories", [
        f"{f['name']}  [{f['at']}]  {'async' if f['async'] else 'sync' if f['async'] is False else 'sync/async unknown'}, "
        f"expire_on_commit={f['expire_on_commit']}{'' if f['expire_on_commit_stated'] else ' (default)'}"
        + (", scoped" if f["scoped"] else "") + (f", bind={f['bind']}" if f["bind"] else "")
        for f in data["factories"]
    ])
    section("Session scopes (context managers)", [
        f"{s['name']}  [{s['at']}]  yields a {s['yields']}"
        + (f" ({s['service']})" if s["service"] else "")
        + f", factory={s['factory'] or 'unknown'}, expire_on_commit={s['expire_on_commit']}, "
        f"commits on exit: {'yes' if s['commits_on_exit'] else 'no'}"
        for s in data["scopes"]
    ])
    section("Session decorators", [
        f"{d['name']}  [{d['at']}]  factory={d['factory']}, passes the session as {d['passes_session_as']}, "
        f"expire_on_commit={d['expire_on_commit']}, commits: {'yes' if d['commits'] else 'no'}"
        for d in data["decorators"]
    ])
    rows = []
    for p in data["providers"]:
        if p["provides_session"]:
            rows.append(f"{p['name']}  [{p['at']}]  provides a session")
        elif p["session_from"]:
            rows.append(f"{p['name']}  [{p['at']}]  passes on the session of {p['session_from']}")
        else:
            sessions = ", ".join(
                (o["provider"] or "its own session") + ("" if o["open"] else " (closed before use)")
                + ("" if o["use_cache"] else " (use_cache=False)")
                for o in p["value_sessions"]) or "no session"
            rows.append(f"{p['name']}  [{p['at']}]  depends on {', '.join(p['depends_on'])}; value from: {sessions}")
    section("FastAPI providers", rows)
    section("Annotated aliases", [
        f"{a['name']} = Annotated[{a['type']}, Depends({a['depends']}{'' if a['use_cache'] else ', use_cache=False'})]"
        for a in data["aliases"]
    ])
    section("Models", [
        f"{m['name']}: columns {', '.join(m['columns']) or '-'}"
        + (f"; deferred {', '.join(m['deferred'])}" if m["deferred"] else "")
        + "; relationships " + (", ".join(f"{k} (lazy={v})" for k, v in m["relationships"].items()) or "-")
        for m in data["models"]
    ])
    return "\n".join(lines)
