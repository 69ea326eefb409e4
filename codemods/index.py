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
from dataclasses import dataclass, field
from typing import Iterable, Iterator

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
        return Factory(name, builder, is_async, expire, line, scoped=scoped)

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
        body = _FunctionBody(self, fn)
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
        )
        if isinstance(fn.returns, ast.Subscript) and self.q(fn.returns.value) in names.ITERATOR_TYPES:
            inner = fn.returns.slice.elts[0] if isinstance(fn.returns.slice, ast.Tuple) else fn.returns.slice
            info.returns = self.q(inner)
        self.facts.functions[info.qualname] = info


class _FunctionBody(ast.NodeVisitor):
    """Facts about one function body (nested functions and classes are not entered)."""

    def __init__(self, ex: _Extractor, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.ex = ex
        self.fn = fn
        self.is_generator = False
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

    def visit_FunctionDef(self, node: ast.AST) -> None:  # nested: not ours
        return

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
        return self.ex.facts.qualify(callee)

    def _with(self, node: ast.With | ast.AsyncWith) -> None:
        bound: list[str] = []
        for item in node.items:
            target = item.optional_vars
            if isinstance(target, ast.Name):
                factory = self._opens(item.context_expr)
                if factory is not None:
                    self.session_names[target.id] = factory
                    self.origins[target.id] = Origin("session", callee=factory)
                    bound.append(target.id)
                    self.opened.append(OpenedSession(factory, closed_on_return=True, yielded=False))
            self.visit(item.context_expr)
        self._with_stack.extend(bound)
        for stmt in node.body:
            self.visit(stmt)
        for _ in bound:
            self._with_stack.pop()

    visit_With = _with
    visit_AsyncWith = _with

    def _yield_or_return(self, value: ast.AST | None) -> None:
        if value is None:
            return
        value = strip_await(value)
        if isinstance(value, ast.Name):
            if value.id in self.param_names:
                self.yields_param = value.id
            for opened in self.opened:
                if self.session_names.get(value.id) == opened.factory:
                    opened.yielded = True
                    if self.is_generator and value.id in self._with_stack:
                        # yielded inside the with-block: open while the caller uses it
                        opened.closed_on_return = False
        factory = self._opens(value)
        if factory is not None and isinstance(value, ast.Call):
            self.opened.append(OpenedSession(factory, closed_on_return=False, yielded=True))

    def visit_Yield(self, node: ast.Yield) -> None:
        self.is_generator = True
        self._yield_or_return(node.value)
        self.generic_visit(node)

    def visit_YieldFrom(self, node: ast.YieldFrom) -> None:
        self.is_generator = True
        self.generic_visit(node)

    def visit_Return(self, node: ast.Return) -> None:
        self._yield_or_return(node.value)
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.generic_visit(node)
        for target in node.targets:
            if isinstance(target, ast.Name):
                self._bind(target.id, node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.generic_visit(node)
        if isinstance(node.target, ast.Name) and node.value is not None:
            self._bind(node.target.id, node.value)

    def _bind(self, name: str, value: ast.AST) -> None:
        self.origins[name] = self.origin(value)
        opened = self._opens(value)
        if opened is not None:
            self.session_names[name] = opened
            self.opened.append(OpenedSession(opened, closed_on_return=False, yielded=False))

    def origin(self, value: ast.AST) -> Origin:
        value = strip_await(value)
        root = load_root(value)
        if root is not None:
            return Origin("loaded", via=root)
        if isinstance(value, ast.Name):
            return self.origins.get(value.id, Origin("other"))
        if isinstance(value, ast.Call):
            callee = dotted_name(value.func)
            if callee is not None:
                last = callee.rsplit(".", 1)[-1]
                session_args = [
                    dotted_name(a) for a in list(value.args) + [k.value for k in value.keywords]
                    if dotted_name(a) in self.session_names
                    or (isinstance(a, ast.Name) and self.origins.get(a.id, Origin("other")).kind == "session")
                ]
                if session_args:
                    return Origin("loaded", via=session_args[0], callee=self.ex.facts.qualify(callee))
                if last[:1].isupper():
                    return Origin("new", callee=self.ex.facts.qualify(callee))
                return Origin("call", callee=self.ex.facts.qualify(callee))
        return Origin("other")

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        callee = dotted_name(node.func)
        if callee is None or "." in callee and callee.split(".")[0] in ("self", "cls"):
            return
        qualified = self.ex.facts.qualify(callee)
        if qualified is None:
            return
        self.calls.append(
            CallSite(
                callee=qualified,
                line=node.lineno,
                args=[self.origin(a) for a in node.args],
                kwargs={k.arg: self.origin(k.value) for k in node.keywords if k.arg},
                arg_names=[dotted_name(a) for a in node.args],
                kwarg_names={k.arg: dotted_name(k.value) for k in node.keywords if k.arg},
            )
        )


def extract(path: str, source: str | bytes, module: str) -> ModuleFacts:
    """Facts for one module. Raises SyntaxError (or ValueError) when ``ast`` cannot parse it."""
    tree = ast.parse(source, filename=path)
    facts = ModuleFacts(path=path, module=module)
    ex = _Extractor(facts)
    ex.imports(tree)
    ex.module_level(tree)
    for target, opts in facts.configure_calls.items():
        if target in facts.factories and opts.get("expire_on_commit") is not None:
            facts.factories[target].expire_on_commit = opts["expire_on_commit"]
    return facts


# --------------------------------------------------------------------------- the index


@dataclass
class SessionOrigin:
    """Which session an injected value belongs to."""

    provider: str | None  # canonical session provider (FastAPI dependency) or None for own sessions
    open: bool  # still open while the endpoint runs
    use_cache: bool = True


class ProjectIndex:
    def __init__(self, modules: Iterable[ModuleFacts] = (), config_factories: dict | None = None) -> None:
        self.modules: dict[str, ModuleFacts] = {}
        self.by_path: dict[str, ModuleFacts] = {}
        for facts in modules:
            self.add(facts)
        self.config_factories = dict(config_factories or {})
        self._callers: dict[str, list[tuple[ModuleFacts, Function, CallSite]]] | None = None
        self._relevance: tuple[bytes, ...] | None = None
        self._suffixes: dict[str, list[ModuleFacts]] | None = None

    def add(self, facts: ModuleFacts) -> None:
        self.modules[facts.module] = facts
        self.by_path[os.path.abspath(facts.path)] = facts
        self._callers = None
        self._suffixes = None
        self._relevance = None

    def relevance(self) -> tuple[bytes, ...]:
        """Bytes that make a file worth parsing: SQLAlchemy's own names, and the names of the
        project's session factories, Annotated aliases and FastAPI providers. (A `bytes in`
        test per token is much faster than one regex alternation of them.)"""
        if self._relevance is None:
            tokens = {"session", "Session"} | {t.decode() for t in INDEX_TRIGGERS}
            for mod in self.modules.values():
                tokens.update(mod.factories)
                tokens.update(mod.aliases)
                for fn in mod.functions.values():
                    if "." not in fn.qualname and (
                        fn.is_generator and fn.opened or any(p.depends for p in fn.params)
                    ):
                        tokens.add(fn.qualname)
            tokens.update(n.rsplit(".", 1)[-1] for n in self.config_factories)
            # Drop tokens that contain a shorter token: the shorter one already matches.
            kept = sorted(t for t in tokens if t)
            kept = [t for t in kept if not any(o != t and o in t for o in kept)]
            self._relevance = tuple(t.encode() for t in sorted(kept, key=len))
        return self._relevance

    def module_for_path(self, path: str) -> ModuleFacts | None:
        return self.by_path.get(os.path.abspath(path))

    # name resolution --------------------------------------------------------
    def _module(self, dotted: str) -> ModuleFacts | None:
        """The module named ``dotted``; else the one module whose name ends with it (a
        project checked from above its import root: ``src.app.db`` for ``app.db``)."""
        if dotted in self.modules:
            return self.modules[dotted]
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
        found = self._resolve(qualified, "factories")
        if found is None and qualified in self.config_factories:
            return self.config_factories[qualified]
        return found

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
        return None

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
            return qualified
        if names.session_class(fn.returns) is not None and (fn.opened or fn.is_generator):
            return qualified
        return None

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
            found.append(SessionOrigin(None, open=not opened.closed_on_return))
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
