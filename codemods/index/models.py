"""Which project classes are mapped models, and what each maps: columns, relationships and
their loader strategies, deferred and server-refetched columns, properties."""

from __future__ import annotations

from .. import names
from .facts import (
    Model,
)
from .lookup import IndexLookup


class ModelQueries(IndexLookup):
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
        if kind is None and cls.tablename and not cls.abstract and (
                cls.mapped_by_decorator or self._external_base(qualified)):
            # `@registry.mapped`, or a declarative base from an installed package (a framework's
            # `Model`): `__tablename__` is SQLAlchemy's own word.
            return "model"
        return kind

    def _external_base(self, qualified: str, depth: int = 0) -> bool:
        """Does the class derive, through project classes, from a class defined outside the
        project (other than ``object`` and typing's helpers)?"""
        cls = self._class(qualified)
        if cls is None or depth > 8:
            return False
        for base in cls.bases:
            if base.split(".")[0] in ("typing", "typing_extensions", "abc", "builtins", "object", "enum"):
                continue
            if self._class(base) is None or self._external_base(base, depth + 1):
                return True
        return False

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
                    qualified = mod.own(qualname)
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
                found_cls = self._class(q)
                if found_cls is not None:
                    self._models_by_class[id(found_cls)] = model
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
            for name, reads in cls.properties.items():
                model.properties.setdefault(name, set(reads))
            for name, attr in cls.attributes.items():
                if attr.kind == "relationship":
                    if name not in model.relationships and not attr.join_depth:
                        model.shallow.add(name)
                    model.relationships.setdefault(name, attr.lazy or "select")
                    model.targets.setdefault(name, attr.target or "")
                    if attr.collection:
                        model.collections.add(name)
                elif attr.kind == "deferred":
                    model.deferred.add(name)
                    if attr.lazy == "raise":
                        model.raising.add(name)
                else:
                    model.columns.add(name)
                if attr.refetched and not self._eager_defaults(qualified):
                    model.refetched.add(name)
            chain.extend(cls.bases)
        return model

    def _eager_defaults(self, qualified: str, depth: int = 0) -> bool:
        """Does the mapper of ``qualified`` (or a base) fetch server-set values on flush?"""
        cls = self._class(qualified)
        if cls is None or depth > 8:
            return False
        return cls.eager_defaults or any(self._eager_defaults(b, depth + 1) for b in cls.bases)

    def model(self, qualified: str | None) -> Model | None:
        if qualified is None:
            return None
        models = self.models()
        if qualified in models:
            return models[qualified]
        cls = self._class(qualified)
        return self._models_by_class.get(id(cls)) if cls is not None else None

    def instance_model(self, qualified: str | None) -> Model | None:
        """What an instance of the project class ``qualified`` maps (``self`` in its methods):
        its model; for an abstract mapped class (`__abstract__ = True` under a declarative
        base) the columns and relationships it and its bases declare, which every concrete
        subclass maps."""
        model = self.model(qualified)
        if model is not None or qualified is None or self._mapped(qualified) != "base":
            return model
        cls = self._class(qualified)
        if cls is None or not cls.abstract:
            return None
        return self._build_model(qualified)

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

    def module_instances(self, qualified: str | None) -> list[str]:
        """The module-level names of the project bound to an instance of the class
        ``qualified``, built when the module is imported (`directory = UserDirectory()`):
        objects that live as long as the process."""
        cls = self._class(qualified)
        if cls is None:
            return []
        if self._instances is None:
            self._instances = {}
            for mod in self.modules.values():
                for name, f in mod.factories.items():
                    built = self._class(f.builder) if f.builder and f.builder[-1:] != ")" else None
                    if built is not None:
                        self._instances.setdefault(id(built), []).append(f"{mod.module}.{name}")
        return self._instances.get(id(cls), [])
