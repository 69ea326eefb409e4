"""Extraction of a class: its bases, mapped attributes, relationships and what its methods
read (:class:`~.facts.ClassFacts`)."""

from __future__ import annotations

import ast

from .. import names
from . import astutil
from .astutil import (
    annotation_collection,
    annotation_target,
    const_bool,
    const_str,
    decorator_callee,
    dotted_name,
    keyword_arg,
)
from .extract_base import ExtractorBase
from .facts import (
    Attribute,
    ClassFacts,
)
from .model_reads import method_reads


class ClassExtraction(ExtractorBase):
    """A class statement -> its :class:`~.facts.ClassFacts`."""

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
                        names.is_property_decorator(dotted_name(decorator_callee(d)) or "")
                        for d in stmt.decorator_list):  # (formatting the object reads what __str__ reads)
                    info.properties[stmt.name] = sorted({
                        n.attr for n in astutil.walk(stmt) if isinstance(n, ast.Attribute)
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
