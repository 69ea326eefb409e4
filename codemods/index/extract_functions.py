"""Extraction of a function: its parameters, what it returns, the session decorator it wears
and its body's facts (:class:`~.facts.Function`, the body read by :mod:`.body`)."""

from __future__ import annotations

import ast

from .. import names
from . import astutil
from .astutil import (
    decorator_callee,
    dotted_name,
    first_argument,
    strip_await,
    unquoted,
)
from .body import FunctionBody
from .extract_base import ExtractorBase
from .facts import (
    Function,
    Param,
    SessionDecorator,
)
from .managers import EXIT_METHODS, exit_ends, returned_class
from .middlewares import injections
from .paths import read_paths


class FunctionExtraction(ExtractorBase):
    """A function statement -> its :class:`~.facts.Function`."""

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
            inline_opens=body.inline_opens,
            called=body.called,
            add_owners=body.add_owners,
            added_params=body.added_params,
            yield_sources=body.yield_sources,
            stores=body.stores,
            registers=dict(body.registers) if body.handed_out and not body.handed_unregistered else {},
            built_factories=body.built_factories,
            kept_params=body.kept_params,
            session_ends=body.session_ends,
            param_reads={p: sorted(attrs) for p, attrs in body.param_reads.items()},
            param_statements=sorted(body.param_statements),
            held=body.held,
            injects=injections(fn),
        )
        if isinstance(fn.returns, ast.Subscript) and self.q(fn.returns.value) in names.ITERATOR_TYPES:
            inner = first_argument(fn.returns)
            info.returns = self.q(inner) if inner is not None else None
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
        earlier = self.facts.functions.get(info.qualname)
        if earlier is not None:  # defined twice (`if`/`else`): the gates ask of either definition
            info.added_params |= earlier.added_params
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
            inner = first_argument(ann)
            if inner is None:
                return None, None  # `EventType[()]`, `tuple[()]`: no element type
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
            calls = [c for c in astutil.walk(nested) if isinstance(c, ast.Call)
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
    for node in astutil.walk(wrapper):
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
        for child in astutil.children(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((child, params))
                walk(child, params | {a.arg for a in child.args.posonlyargs + child.args.args})
            elif not isinstance(child, (ast.ClassDef, ast.Lambda)):
                walk(child, params)

    walk(fn, frozenset(a.arg for a in fn.args.posonlyargs + fn.args.args))
    return out
