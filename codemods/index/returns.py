"""What a project function or method returns when it is an ORM instance: read from its
annotation, else inferred from its body (a load, another call it returns), across modules."""

from __future__ import annotations

from .facts import (
    Model,
    Returned,
)
from .infer import CLASS_ITSELF, Stage
from .lookup import param_at
from .models import ModelQueries


class ReturnQueries(ModelQueries):
    def returned(self, qualified: str | None, receiver: str | None = None, depth: int = 0) -> Returned | None:
        """What calling the project function or method ``qualified`` gives, when it is an ORM
        instance (or a list of them): its return annotation; else its body, a load
        (``session.get(User, id)``, ``select(self.model)`` of a generic repository) or the
        result of another call it returns (``return await self.repo.get(id)``), followed across
        modules. ``receiver`` is the class a method is called on, when it is not the class
        defining it (``UserRepository(BaseRepository[User])``)."""
        if not qualified or depth > 8:
            return None
        found = self.callable_named(qualified)
        if found is None:
            return None
        fn, owner = found
        receiver = receiver or owner
        if fn.returns_class is not None:  # annotated: the annotation is the answer
            model = self.model(fn.returns_class)
            return Returned(model, Stage(fn.returns_shape), fn) if model and fn.returns_shape else None
        if fn.returns_load is not None:
            expr, stage = fn.returns_load
            model = self.model_of_expr(expr, receiver)
            if model is not None:
                return Returned(model, Stage(stage), fn)
        for callee in fn.returns_calls:
            target, target_receiver = self._callee_of(callee, receiver)
            if target is not None and target != qualified:
                inner = self.returned(target, target_receiver, depth + 1)
                if inner is not None:
                    return inner
        return None

    def built_and_committed(self, qualified: str | None, passed: int | str) -> Model | None:
        """The model of the instance the project function ``qualified`` builds (``User(...)``)
        and returns, when it commits the session a caller hands it at ``passed`` itself (not in
        a handler, and not through another function): that commit expired what the instance
        was given, so, under a session that expires on commit, its relationships come back
        unloaded."""
        found = self.callable_named(qualified) if qualified else None
        if found is None:
            return None
        fn = found[0]
        name = param_at(fn, passed, bound=False)
        if not name or not any(end.session == name and end.method == "commit" and end.callee is None
                               for end in fn.session_ends):
            return None
        models = [self.model(callee) for callee in fn.returns_calls]
        if len(models) != 1 or models[0] is None or fn.returns_load is not None:
            return None
        return models[0]

    def model_of_expr(self, expr: str, receiver: str | None, depth: int = 0) -> Model | None:
        """The model a load names: a class, or ``self.<attr>`` of the receiver's class (a class
        attribute ``model = User``, or the argument of a generic base ``Repo[User]``)."""
        if not expr.startswith("self."):
            return self.model(expr)
        if expr == CLASS_ITSELF:  # `select(cls)`: the class the method is called on
            return self.model(receiver) if receiver else None
        cls = self._class(receiver) if receiver else None
        if cls is None or depth > 8:
            return None
        attr = expr[len("self."):]
        if attr in cls.values:
            return self.model(cls.values[attr])
        for arg in cls.generic_args:
            model = self.model(arg)
            if model is not None:
                return model
        for base in cls.bases:
            model = self.model_of_expr(expr, base, depth + 1)
            if model is not None:
                return model
        return None

    def _callee_of(self, callee: str, receiver: str | None) -> tuple[str | None, str | None]:
        """(qualified function, the class it is called on) for a returned call as the body
        spells it: ``app.crud.get_user``, ``self.get`` or ``self.repo.get``."""
        if not callee.startswith("self."):
            return callee, None
        if receiver is None:
            return None, None
        parts = callee.split(".")[1:]
        if len(parts) == 1:
            return f"{receiver}.{parts[0]}", receiver
        if len(parts) != 2:
            return None, None
        attr, method = parts
        for mod, local in self._split(receiver):
            value = self._self_value(mod, local, attr)
            if value is None:
                continue
            kind, what = value
            if kind in ("type", "call") and not what.endswith("()") and not what.startswith("self."):
                return f"{what}.{method}", what
        return None, None
