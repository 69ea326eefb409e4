"""Extraction: one module's source -> its :class:`ModuleFacts`."""

from __future__ import annotations

import ast
import os
from collections.abc import Sequence

from .. import guard, names
from ..prefilter import INDEX_TRIGGERS  # noqa: F401  (re-exported)
from .aborts import AUTOCOMMIT, database_named
from .astutil import (
    annotation_collection,
    annotation_target,
    const_bool,
    const_str,
    decorator_callee,
    dotted_name,
    keyword_arg,
    strip_await,
    unquoted,
    walk,
)
from .body import FunctionBody
from .facts import (
    MODULE_LEVEL,
    WITH_VALUE,
    Alias,
    Attribute,
    ClassFacts,
    Factory,
    Function,
    ModuleFacts,
    Param,
    SessionDecorator,
)
from .holders import closed_holders
from .managers import EXIT_METHODS, NameType, exit_ends, returned_class
from .model_reads import method_reads
from .parse import parse_for_index
from .paths import read_paths
from .resolve import ModuleName

MODULE_SKIP = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)
# What extracting facts from a file raises when the file cannot be read as Python: a syntax
# error, null bytes, nesting too deep for a recursive parser (guard.TooDeep is a ValueError).
UNPARSABLE = (SyntaxError, ValueError, RecursionError, MemoryError)


class Extractor:
    def __init__(self, facts: ModuleFacts) -> None:
        self.facts = facts
        # the typed parameters of the function whose returned class is being read (its
        # methods use them as closure names: `database` in `self.session = database.session()`)
        self.enclosing_types: dict[str, NameType] = {}

    def q(self, node: ast.AST | None) -> str | None:
        return self.facts.qualify(dotted_name(node)) if node is not None else None

    # imports ----------------------------------------------------------------
    def imports(self, tree: ast.Module) -> None:
        """The module's imports: local name -> qualified name. Imports at module level (also
        under `if`/`try`) win; an import inside a function only adds a name the module does
        not bind itself (a deferred import of the same module, as Flask apps do against
        import cycles), so one function's import never changes what another name means."""
        pkg_parts = self.facts.module.split(".") if self.facts.module else []
        is_pkg = os.path.basename(self.facts.path) == "__init__.py"
        nested: list[ast.Import | ast.ImportFrom] = []

        def bindings(node: ast.Import | ast.ImportFrom):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        yield alias.asname, alias.name
                    else:
                        head = alias.name.split(".")[0]
                        yield head, head
                return
            base = node.module or ""
            if node.level:
                keep = len(pkg_parts) - node.level + (1 if is_pkg else 0)
                prefix = pkg_parts[: max(keep, 0)]
                base = ".".join(prefix + ([base] if base else []))
            for alias in node.names:
                if alias.name != "*":
                    yield alias.asname or alias.name, f"{base}.{alias.name}" if base else alias.name

        def module_level(body: list[ast.stmt]) -> None:
            for stmt in body:
                if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                    self.facts.imports.update(bindings(stmt))
                elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    nested.extend(n for n in walk(stmt) if isinstance(n, (ast.Import, ast.ImportFrom)))
                else:  # if / try / with / for at module level
                    for field in ("body", "orelse", "finalbody"):
                        module_level(getattr(stmt, field, None) or [])
                    for handler in getattr(stmt, "handlers", None) or []:
                        module_level(handler.body)

        module_level(tree.body)
        for node in nested:
            for local, target in bindings(node):
                self.facts.imports.setdefault(local, target)

    # module level -------------------------------------------------------------
    def module_level(self, tree: ast.Module) -> None:
        for stmt in tree.body:
            self.statement(stmt, prefix="")
        # The module's own statements (a script, an `if __name__ == "__main__":` block) are
        # a function body too: they open sessions, load, commit and call project functions.
        body = [s for s in tree.body if not isinstance(s, MODULE_SKIP)]
        if any(not isinstance(s, (ast.Assign, ast.AnnAssign, ast.Expr)) or isinstance(s, ast.Expr)
               and isinstance(s.value, (ast.Call, ast.Await)) for s in body):
            fn = ast.FunctionDef(name=MODULE_LEVEL, args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[],
                                                                       kw_defaults=[], defaults=[]),
                                 body=body, decorator_list=[], returns=None, lineno=1, col_offset=0)
            self.function(fn, prefix="")

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
                elif isinstance(target, ast.Tuple) and isinstance(stmt.value, ast.Call):
                    self.unpacked(target, stmt.value, stmt.lineno)
        elif isinstance(stmt, ast.Expr) and not prefix and isinstance(stmt.value, ast.Call):
            func = stmt.value.func
            if isinstance(func, ast.Attribute) and func.attr == "configure":
                configured = dotted_name(func.value)
                if configured:
                    self.facts.configure_calls[configured] = {
                        "expire_on_commit": const_bool(keyword_arg(stmt.value, "expire_on_commit"))
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

    def unpacked(self, target: ast.Tuple, value: ast.Call, line: int) -> None:
        """``SessionLocal, engine = setup(url)``: each name may be an item of the tuple a project
        function returns (decided at query time, as for ``SessionLocal = make_factory()``)."""
        callee = self.q(value.func)
        if callee is None or callee.startswith(("sqlalchemy.", "builtins.")):
            return
        for i, el in enumerate(target.elts):
            if isinstance(el, ast.Name):
                self.facts.factories.setdefault(el.id, Factory(el.id, callee, None, None, line, via=callee, via_index=i))

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
            bases=[b for b in (self.q(base.value if isinstance(base, ast.Subscript) else base)
                               for base in node.bases) if b],
            keywords={k.arg: ast.unparse(k.value) for k in node.keywords if k.arg},
        )
        for deco in node.decorator_list:
            callee = dotted_name(decorator_callee(deco)) or ""
            if callee.rsplit(".", 1)[-1] in names.MAPPING_DECORATORS:
                info.mapped_by_decorator = True
        for base in node.bases:  # class UserRepository(BaseRepository[User])
            if isinstance(base, ast.Subscript):
                args = base.slice.elts if isinstance(base.slice, ast.Tuple) else [base.slice]
                info.generic_args.extend(q for q in (self.q(a) for a in args) if q)
        for stmt in node.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                attribute = self.declared_attr(stmt, info)
                if attribute is not None:
                    info.attributes[stmt.name] = attribute
                elif stmt.name in ("__str__", "__repr__") or any(
                        (dotted_name(decorator_callee(d)) or "").rsplit(".", 1)[-1] in names.PROPERTY_DECORATORS
                        for d in stmt.decorator_list):  # (formatting the object reads what __str__ reads)
                    info.properties[stmt.name] = sorted({
                        n.attr for n in ast.walk(stmt) if isinstance(n, ast.Attribute)
                        and isinstance(n.value, ast.Name) and n.value.id == "self"})
                elif (reads := method_reads(stmt)):
                    info.properties[names.method_key(stmt.name)] = reads
                continue
            target, value, annotation = None, None, None
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                target, value = stmt.targets[0].id, stmt.value
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                target, value, annotation = stmt.target.id, stmt.value, stmt.annotation
            if target is None:
                continue
            if isinstance(value, (ast.Name, ast.Attribute)):
                qualified = self.q(value)
                if qualified:
                    info.values[target] = qualified
            if target == "__abstract__":
                info.abstract = const_bool(value) is True
                continue
            if target == "__tablename__":
                info.tablename = True
                continue
            if target == "__mapper_args__" and isinstance(value, ast.Dict):
                info.eager_defaults = any(const_str(k) == "eager_defaults" and const_bool(v) is True
                                          for k, v in zip(value.keys, value.values))
                continue
            attribute = self.mapped_attribute(value, annotation, info, target)
            if attribute is not None:
                attribute.line = stmt.lineno
                info.attributes[target] = attribute
        self.facts.classes[info.qualname] = info

    def declared_attr(self, fn: ast.FunctionDef | ast.AsyncFunctionDef, info: ClassFacts) -> Attribute | None:
        """``@declared_attr def owner(cls): return relationship("User")`` (mixins do this)."""
        decorators = {self.q(decorator_callee(d)) for d in fn.decorator_list}
        if not decorators & names.DECLARED_ATTR and not any(
                (d or "").endswith("declared_attr") for d in decorators):
            return None
        returned = next((s.value for s in fn.body if isinstance(s, ast.Return) and s.value is not None), None)
        attribute = self.mapped_attribute(returned, None, info, fn.name) if returned is not None else None
        if attribute is not None:
            attribute.line = fn.lineno
        return attribute

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
            lazy = const_str(keyword_arg(call, "lazy"))
            if lazy is None:  # SQLModel: Relationship(sa_relationship_kwargs={"lazy": ...})
                kwargs = keyword_arg(call, "sa_relationship_kwargs")
                if isinstance(kwargs, ast.Dict):
                    for k, v in zip(kwargs.keys, kwargs.values):
                        if const_str(k) == "lazy":
                            lazy = const_str(v)
            target = const_str(call.args[0]) if call.args else None
            if target is None and call.args:
                target = dotted_name(call.args[0])
            if target is None and annotation is not None:
                target = annotation_target(annotation)
            backref = keyword_arg(call, "backref")
            if backref is not None and target:
                ref_name = const_str(backref)
                ref_lazy = "select"
                if isinstance(backref, ast.Call) and backref.args:
                    ref_name = const_str(backref.args[0])
                    ref_lazy = const_str(keyword_arg(backref, "lazy")) or "select"
                if ref_name:
                    info.backrefs.append((target, ref_name, ref_lazy))
            uselist = const_bool(keyword_arg(call, "uselist"))
            collection = uselist if uselist is not None else annotation_collection(annotation)
            if collection is None and keyword_arg(call, "secondary") is not None:
                collection = True  # many-to-many: a list unless uselist=False says otherwise
            return Attribute("relationship", lazy=lazy or "select", target=target, collection=collection,
                             join_depth=keyword_arg(call, "join_depth") is not None)
        if call is not None and sqla and last in names.COLUMN_CALLS:
            deferred = last in ("deferred",) or const_bool(keyword_arg(call, "deferred")) is True
            # a SQL expression (`func.now()`) the database evaluates, not a Python callable
            refetched = isinstance(keyword_arg(call, "onupdate"), ast.Call) or keyword_arg(call, "server_onupdate") is not None
            raises = any(const_bool(keyword_arg(call, k)) is True for k in ("raiseload", "deferred_raiseload"))
            return Attribute("deferred" if deferred else "column", refetched=refetched,
                             lazy="raise" if deferred and raises else None)
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
        ann = unquoted(ann)  # `session: "AsyncSession"`
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
        body = FunctionBody(self, fn, class_prefix=prefix)
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
            decorators=[d for d in (self.q(decorator_callee(dec)) for dec in fn.decorator_list) if d],
            commits=body.commits,
            commits_after_yield=body.commits_after_yield,
            rolls_back_after_yield=body.rolls_back_after_yield,
            closes_after_yield=body.closes_after_yield,
            returns_self_attr=body.returns_self_attr,
            yield_in_begin=body.yield_in_begin,
            yields_kind=body.yields_kind,
            yields_class=body.yields_class,
            returns_factory=body.returns_factory,
            returns_factories_at=body.returns_factories_at,
            session_decorator=self.session_decorator(fn, body.partials) if body.has_nested else None,
            detaches=body.detaches,
            with_callees=body.with_callees,
            methods=body.methods,
            called=body.called,
            add_owners=body.add_owners,
            yield_sources=body.yield_sources,
            stores=body.stores,
            kept_params=body.kept_params,
            session_ends=body.session_ends,
            param_reads={p: sorted(attrs) for p, attrs in body.param_reads.items()},
            param_statements=sorted(body.param_statements),
            held=body.held,
        )
        if isinstance(fn.returns, ast.Subscript) and self.q(fn.returns.value) in names.ITERATOR_TYPES:
            inner = fn.returns.slice.elts[0] if isinstance(fn.returns.slice, ast.Tuple) else fn.returns.slice
            info.returns = self.q(inner)
        if fn.returns is not None:
            cls, shape = self.annotated_class(fn.returns)
            info.returns_class, info.returns_shape = cls, shape
        info.eager = body.eager
        info.opaque_options = body.opaque_options
        info.checks_loads = body.checks_loads
        info.rebound_params = body.rebound_params
        paths = read_paths(fn, self.facts.qualify)
        info.param_paths, info.param_handoffs, info.param_paths_guarded = paths.paths, paths.handoffs, paths.guarded
        if body.returns_load is not None:
            info.returns_load = (body.returns_load.model, body.returns_load.stage.value)
        info.returns_calls = body.returns_calls
        if body.keyed_returns:
            info.returns_keys = {k: (load.model, load.stage.value) for k, load in body.returned_keys.items() if load}
        if body.returned_new and len(set(body.returned_new)) == 1:
            info.returns_built = body.returned_new[0]
        self.facts.functions[info.qualname] = info
        nested = _returned_function(fn)
        if nested is not None:  # `def require(...): async def dependency(...): ...; return dependency`
            info.returns_function = nested.name
            self.function(nested, prefix=f"{info.qualname}.")
        if prefix and fn.name in EXIT_METHODS:
            info.exit_ends = exit_ends(fn)
        self.returned_instance(fn, info, body)

    def returned_instance(self, fn: ast.FunctionDef | ast.AsyncFunctionDef, info: Function,
                          body: FunctionBody) -> None:
        """``def transaction(db): class Tx: ...; return Tx()`` (or ``return UnitOfWork()`` of a
        class defined elsewhere): note the class, and index one defined here as
        ``<qualname>.<Class>``, its methods seeing the function's typed parameters."""
        returned = returned_class(fn)
        if returned is None:
            return
        name, node = returned
        if node is None:
            info.returns_instance_of = self.facts.qualify(name)
            return
        info.returns_instance_of = self.facts.qualify(f"{info.qualname}.{name}")
        outer = self.enclosing_types
        self.enclosing_types = {**outer, **body.name_types}
        try:
            self.statement(node, prefix=f"{info.qualname}.")
        finally:
            self.enclosing_types = outer

    def annotated_class(self, ann: ast.AST, depth: int = 0) -> tuple[str | None, str | None]:
        """(qualified class, shape) of a return annotation: ``User`` -> one, ``User | None`` /
        ``Optional[User]`` -> optional, ``list[User]`` / ``Sequence[User]`` -> list."""
        if depth > 4:
            return None, None
        parsed = unquoted(ann)
        if parsed is None:
            return None, None
        ann = parsed
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
        if isinstance(ann, ast.Name) and ann.id in _BARE_CONTAINERS:
            return None, None  # `-> list`: of what, the body says
        name = self.q(ann)
        return (name, "one") if name else (None, None)


    def session_decorator(self, fn: ast.FunctionDef | ast.AsyncFunctionDef,
                          closure: dict[str, tuple[str, bool | None]] | None = None) -> SessionDecorator | None:
        """``fn`` is a decorator when it (or a decorator factory inside it) defines a wrapper
        that opens a session and calls the decorated function with it: as an argument, or put
        into the wrapper's ``**kwargs`` (``kwargs["session"] = session; func(**kwargs)``).
        ``closure`` holds the ``functools.partial`` factories ``fn`` binds for its wrapper."""
        for nested, outer_params in _nested_functions(fn):
            own = {a.arg for a in nested.args.posonlyargs + nested.args.args}
            calls = [c for c in ast.walk(nested) if isinstance(c, ast.Call)
                     and dotted_name(strip_await(c.func)) in outer_params]
            if not calls:
                continue
            body = FunctionBody(self, nested, closure=closure)
            packed = _packed_keywords(nested)
            for call in calls:
                passed: list[tuple[int | None, str | None, str | None]] = [
                    (i, None, dotted_name(a)) for i, a in enumerate(call.args)]
                passed += [(None, kw.arg, dotted_name(kw.value)) for kw in call.keywords if kw.arg]
                if any(kw.arg is None and isinstance(kw.value, ast.Name) and kw.value.id == nested.args.kwarg.arg
                       for kw in call.keywords if nested.args.kwarg is not None):
                    passed += [(None, key, name) for key, name in packed]
                for position, keyword, name in passed:
                    if name in body.session_names and name not in own:
                        opened = next((o for o in body.opened if body.session_names[name] == o.factory), None)
                        return SessionDecorator(body.session_names[name],
                                                opened.expire_on_commit if opened else None,
                                                body.commits or bool(opened and opened.begin), position, keyword)
        return None


# A return annotation naming a container without its element type.
_BARE_CONTAINERS = {"list", "List", "Sequence", "tuple", "Tuple", "Iterable", "set", "Set"}


def _packed_keywords(wrapper: ast.FunctionDef | ast.AsyncFunctionDef) -> list[tuple[str, str | None]]:
    """``kwargs["key"] = value`` in a wrapper whose ``**kwargs`` is ``kwargs``: (key, the value's
    dotted name), for the call that passes ``**kwargs`` on."""
    if wrapper.args.kwarg is None:
        return []
    packed = wrapper.args.kwarg.arg
    out = []
    for node in ast.walk(wrapper):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) and target.value.id == packed \
                    and isinstance(target.slice, ast.Constant) and isinstance(target.slice.value, str):
                out.append((target.slice.value, dotted_name(node.value)))
    return out


def _returned_function(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The function defined in ``fn``'s own body that ``fn`` returns (`return dependency`)."""
    defined = {s.name: s for s in fn.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}
    if not defined:
        return None
    for stmt in fn.body:
        if isinstance(stmt, ast.Return) and isinstance(stmt.value, ast.Name) and stmt.value.id in defined:
            return defined[stmt.value.id]
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


def _function_tables(tree: ast.Module, facts: ModuleFacts) -> None:
    """Module-level ``NAME = {key: function, ...}`` (or a list or tuple of functions): every
    value a plain name, bound once. What those names are is decided at query time."""
    bound: dict[str, int] = {}
    for stmt in tree.body:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] \
            if isinstance(stmt, (ast.AnnAssign, ast.AugAssign)) else []
        for target in targets:
            if isinstance(target, ast.Name):
                bound[target.id] = bound.get(target.id, 0) + 1
        value = getattr(stmt, "value", None)
        members = value.values if isinstance(value, ast.Dict) else value.elts \
            if isinstance(value, (ast.List, ast.Tuple)) else None
        if not members or len(targets) != 1 or not isinstance(targets[0], ast.Name) \
                or not all(isinstance(v, (ast.Name, ast.Attribute)) for v in members) \
                or isinstance(value, ast.Dict) and None in value.keys:
            continue
        qualified = [facts.qualify(dotted_name(v)) for v in members]
        facts.function_tables[targets[0].id] = sorted({q for q in qualified if q})
    for name, times in bound.items():
        if times > 1:
            facts.function_tables.pop(name, None)


def _aggregate(tree: ast.Module, nodes: list[ast.AST], facts: ModuleFacts) -> None:
    """Module-wide shapes, over-approximate: every call and with-item anywhere (``nodes``:
    every node of ``tree``)."""
    _containers(tree.body, "", facts.containers)
    for node in nodes:
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
                elif dotted_name(expr) is not None:
                    facts.all_with_callees.add(WITH_VALUE + (dotted_name(expr) or ""))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) < 2048:
            database = database_named(node.value)
            if database is not None:
                facts.databases.add(database)
            facts.autocommit = facts.autocommit or node.value == AUTOCOMMIT
        if isinstance(node, (ast.AsyncFunctionDef, ast.Await, ast.AsyncWith, ast.AsyncFor)):
            facts.has_async = True


def extract(path: str, source: str | bytes, module: str | Sequence[ModuleName]) -> ModuleFacts:
    """Facts for one module, known by ``module`` (its name, or every name it can be imported
    as, strongest first: :func:`resolve.module_names`). Raises SyntaxError (or ValueError)
    when it cannot be parsed: one of UNPARSABLE."""
    guard.check_depth(source)
    with guard.quiet():
        tree = parse_for_index(source, path)
    if isinstance(module, str):
        facts = ModuleFacts(path=path, module=module)
    else:
        own = module[0]
        facts = ModuleFacts(path=path, module=own.name, import_root=own.root, root_kind=own.kind.value,
                            other_names=[n.name for n in module[1:] if not n.kind.weak],
                            weak_names=[n.name for n in module[1:] if n.kind.weak])
    ex = Extractor(facts)
    ex.imports(tree)
    _function_tables(tree, facts)
    ex.module_level(tree)
    nodes = walk(tree)  # one walk for the module-wide questions
    _aggregate(tree, nodes, facts)
    facts.closed_holders = closed_holders(nodes)
    for target, opts in facts.configure_calls.items():
        if target in facts.factories and opts.get("expire_on_commit") is not None:
            facts.factories[target].expire_on_commit = opts["expire_on_commit"]
    return facts

