"""What a function's names hold: sessions, factories, partials, loads and call results bound
by assignments, the holders a session is stored in, and the origin of a value handed on."""

from __future__ import annotations

import ast

from .. import names
from .astutil import (
    const_bool,
    dotted_name,
    keyword_arg,
    load_root,
    strip_await,
)
from .body_opens import SessionOpens
from .facts import HeldSession, OpenedSession, Origin
from .holders import stored_holder
from .infer import load_of
from .managers import receiver_class


class Bindings(SessionOpens):
    """Assignments: what each local name holds."""

    def visit_Global(self, node: ast.Global) -> None:
        self.globals.update(node.names)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.generic_visit(node)
        if any(isinstance(t, (ast.Attribute, ast.Subscript)) for t in node.targets):
            self.hands_out_factory(node.value)  # `app.state.maker = async_sessionmaker(engine)`
        for target in node.targets:
            self.local_names.update(n.id for n in ([target] if isinstance(target, ast.Name) else getattr(target, "elts", []))
                                    if isinstance(n, ast.Name))
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
        if isinstance(node.target, ast.Name):
            self.local_names.add(node.target.id)
        if isinstance(node.target, ast.Name) and node.value is not None:
            self._bind(node.target.id, node.value)

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
        if isinstance(value, ast.BoolOp) and isinstance(value.op, ast.Or) and len(value.values) == 2 \
                and isinstance(value.values[0], ast.Name) and value.values[0].id == name:
            value = value.values[1]  # `session = session or Maker()`: a new one when none was given
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
