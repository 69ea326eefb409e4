"""Extraction: one module's source -> its :class:`ModuleFacts`.

:class:`Extractor` reads the module's imports and module-level statements; its layers read
classes (:mod:`.extract_classes`) and functions (:mod:`.extract_functions`) on a common base
(:mod:`.extract_base`); :mod:`.extract_shapes` reads the module-wide shapes."""

from __future__ import annotations

import ast
import os
from collections.abc import Sequence

from .. import guard, names
from ..prefilter import INDEX_TRIGGERS  # noqa: F401  (re-exported)
from .astutil import (
    const_bool,
    dotted_name,
    keyword_arg,
    walk,
)
from .extract_classes import ClassExtraction
from .extract_functions import FunctionExtraction
from .extract_shapes import _aggregate, _function_tables
from .facts import (
    MODULE_LEVEL,
    Alias,
    Factory,
    ModuleFacts,
)
from .holders import closed_holders
from .parse import parse_for_index
from .resolve import ModuleName

MODULE_SKIP = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)
# What extracting facts from a file raises when the file cannot be read as Python: a syntax
# error, null bytes, nesting too deep for a recursive parser (guard.TooDeep is a ValueError).
UNPARSABLE = (SyntaxError, ValueError, RecursionError, MemoryError)


class ExtractionBug(ValueError):
    """A module Python parses but the index's extraction failed on (a bug of sqla-fix, not of
    the code): one of UNPARSABLE, so every caller goes on without the module's facts, and the
    file is reported with this one-line reason."""


class Extractor(ClassExtraction, FunctionExtraction):
    """The module's imports and statements; classes and functions through its layers."""

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
                else:
                    self.facts.star_imports = True

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
        if isinstance(value, ast.Call) and (called := self.q(value.func)) is not None:
            self.facts.assigned_calls.add(called)
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
    try:
        _fill(tree, facts)
    except (RecursionError, MemoryError):
        raise
    except Exception as exc:
        raise ExtractionBug(guard.one_line(f"internal error in the index: {exc.__class__.__name__}: {exc}")) from exc
    return facts


def _fill(tree: ast.Module, facts: ModuleFacts) -> None:
    ex = Extractor(facts)
    ex.imports(tree)
    _function_tables(tree, facts)
    ex.module_level(tree)
    nodes = walk(tree)  # one walk for the module-wide questions
    _aggregate(tree, nodes, facts)
    facts.closed_holders = closed_holders(nodes)
    for qualname, fn in facts.functions.items():
        fn.registers = {s: o for s, o in fn.registers.items() if _container_of(facts, qualname, o)}
    for target, opts in facts.configure_calls.items():
        if target in facts.factories and opts.get("expire_on_commit") is not None:
            facts.factories[target].expire_on_commit = opts["expire_on_commit"]


def _container_of(facts: ModuleFacts, qualname: str, owner: str) -> bool:
    """Is ``owner``, where function ``qualname`` stores a session, a container of the module
    (`_opened = set()`) or of the function's class (`self._opened`)? A local list is not."""
    head, _, attr = owner.partition(".")
    cls = qualname.rsplit(".", 1)[0] if "." in qualname else None
    return owner in facts.containers or bool(cls and head in ("self", "cls") and f"{cls}.{attr}" in facts.containers)
