"""Sessions handed to project functions and objects: what a callee may do to the session a
caller passes it (commit, roll back, flush, use), directly or through an object built
around it (`Repo(db).save(x)`)."""

from __future__ import annotations

from .. import names
from .lookup import is_classmethod, param_at
from .returns import ReturnQueries
from .sessions import SessionQueries

# What a session end further down the calls means for the caller: a commit is the success
# path of every function on the way; a rollback in a function the callee calls is an error path
# the callee itself may well handle (it checks a result, it catches), so only its own counts.
_FOLLOWED = frozenset({"commit"})
# Session methods that need a transaction the session can use (after a failed flush they
# raise PendingRollbackError).
_NEEDS_TRANSACTION = frozenset(names.LOAD_METHODS | {"commit", "flush", "refresh"})


class HandoffQueries(ReturnQueries, SessionQueries):
    def session_ends(self, callee: str | None, passed: int | str, receiver: str | None = None,
                     depth: int = 0, deep: bool = False, binds_self: bool | None = None) -> frozenset[str]:
        """What the project function ``callee`` may do to the session a caller hands it:
        "commit" (itself, or through the project functions it hands the session on to),
        "rollback" (itself; with ``deep``, further down too), or nothing known. ``passed`` is
        where the session goes: a position of the call's arguments, a keyword, or
        ``"self.<attr>"`` for a method of the caller's own class using the same ``self``
        session; ``receiver`` is the class a ``self.`` callee is looked up in. ``binds_self``:
        whether the call fills a method's ``self`` (see :func:`lookup.positional_params`); by
        default, only a ``self.`` callee does, a callee named by its qualified name does not."""
        if not callee or depth > 8:
            return frozenset()
        target, target_receiver = self._callee_of(callee, receiver)
        if target is None:
            return frozenset()
        followed = _FOLLOWED | {"rollback"} if deep else _FOLLOWED
        bound = target_receiver is not None if binds_self is None else binds_self
        key = (target, passed, target_receiver, deep, bound)
        if key in self._ends:
            return self._ends[key]
        self._ends[key] = frozenset()  # a cycle ends nothing more
        found = self.callable_named(target)
        out: set[str] = set()
        if found is not None:
            fn, owner = found
            name = param_at(fn, passed, bound=bound) or ""
            for end in fn.session_ends if name else ():
                if end.session == "self." and name.startswith("self."):  # `self.other()`: same self
                    out |= self.session_ends(end.callee, name, target_receiver or owner, depth + 1, deep) & followed
                elif end.session != name:
                    continue
                elif end.method in ("commit", "rollback"):  # a flush ends nothing
                    out.add(end.method)
                elif end.passed is not None:
                    out |= self.session_ends(end.callee, end.passed, target_receiver or owner, depth + 1, deep,
                                             end.binds_self) & followed
        self._ends[key] = frozenset(out)
        return self._ends[key]

    def constructed_session_ends(self, cls: str | None, passed: int | str, method: str) -> frozenset[str]:
        """What calling ``method`` on an instance of the project class ``cls`` may do to the
        session handed to its constructor at ``passed`` (`Service(db).delete(item)`): its
        `__init__` keeps that parameter as `self.<attr>`, which the method (or the methods it
        calls on self) may commit or roll back, as :meth:`session_ends` says."""
        held = self._init_attrs(cls, passed) if cls else None
        if held is None:
            return frozenset()
        out: frozenset[str] = frozenset()
        for attr in held:
            out |= self.session_ends(f"{cls}.{method}", f"self.{attr}", cls)
        return out

    def built_by(self, callee: str | None, passed: int | str) -> tuple[str, int | str] | None:
        """For a call of the project class or class method ``callee`` with a session at
        ``passed``: the class of the object it builds around that session, and where its
        constructor gets it. ``Repo(db)``, or a class method that hands its parameter on to
        ``cls(...)`` and returns the instance (``Repo.from_session(db)``: ``return cls(session)``,
        annotated ``Self`` or returning that call)."""
        if not callee:
            return None
        if self._class(callee) is not None:
            return None if self.model(callee) is not None else (callee, passed)
        owner, _, _ = callee.rpartition(".")
        found = self.callable_named(callee) if owner and self._class(owner) is not None else None
        if found is None:
            return None
        fn = found[0]
        if not is_classmethod(fn):
            return None
        if not ((fn.returns_class or "").rsplit(".", 1)[-1] == "Self" or "cls" in fn.returns_calls):
            return None
        name = param_at(fn, passed, bound=True)  # a classmethod: `cls` is bound either way
        at = next((end.passed for end in fn.session_ends
                   if end.session == name and end.callee == "cls" and end.passed is not None), None)
        return (owner, at) if name and at is not None and self.model(owner) is None else None

    def constructed_flushes(self, cls: str, passed: int | str, method: str) -> str | None:
        """"commit" or "flush" when calling ``method`` on an object of ``cls`` built with a
        session at ``passed`` commits or flushes that session (its own `self.<attr>`, in the
        method itself) where a failure reaches the caller (no handler there catches every
        error); else None."""
        found = self.callable_named(f"{cls}.{method}")
        attrs = self._init_attrs(cls, passed)
        if found is None or not attrs:
            return None
        held_as = {f"self.{attr}" for attr in attrs}
        done = {end.method for end in found[0].session_ends
                if end.session in held_as and end.method in ("commit", "flush") and not end.caught}
        return "commit" if "commit" in done else "flush" if done else None

    def method_uses_session(self, cls: str, method: str, depth: int = 0) -> bool:
        """Does ``method`` of the project class ``cls`` (or a method of its own it calls on
        ``self``) call a session method that needs a usable transaction (a query, a load, a
        flush, a commit)? Read from the method names it calls: a method of an object built
        around a session, whose other methods use it."""
        found = self.callable_named(f"{cls}.{method}") if depth <= 4 else None
        if found is None:
            return False
        fn = found[0]
        if fn.methods & _NEEDS_TRANSACTION:
            return True
        return any(self.method_uses_session(cls, end.callee[len("self."):], depth + 1)
                   for end in fn.session_ends
                   if end.session == "self." and end.callee and end.callee.count(".") == 1)

    def builds_ender(self, cls: str | None, passed: int | str) -> bool:
        """Does a method of the project class ``cls`` (its own) commit or roll back the session
        its constructor is handed at ``passed``? (A cheap question before any walk.)"""
        if not cls or not self._init_attrs(cls, passed):
            return False
        return any(self.constructed_session_ends(cls, passed, key[len(local) + 1:])
                   for mod, local in self._split(cls) for key in mod.functions
                   if key.startswith(local + ".") and key.count(".") == local.count(".") + 1)

    def _init_attrs(self, cls: str, passed: int | str, depth: int = 0) -> list[str] | None:
        """The ``self.<attr>`` names the `__init__` of ``cls`` (or of the base it inherits it
        from) stores the argument given at ``passed`` in; None when ``cls`` is no project class."""
        if depth > 8:
            return None
        for mod, local in self._split(cls):
            klass = mod.classes.get(local)
            head = local.split(".")[0]
            if klass is None and head in mod.imports:  # re-exported
                return self._init_attrs(mod.imports[head] + local[len(head):], passed, depth + 1)
            if klass is None:
                continue
            init = mod.functions.get(f"{local}.__init__")
            if init is None:
                for base in klass.bases:
                    found = self._init_attrs(base, passed, depth + 1)
                    if found is not None:
                        return found
                return None
            name = param_at(init, passed, bound=True)  # `Service(db)` binds the new instance
            return [key[len(local) + 1:] for key, param in mod.init_params.items()
                    if param == name and key.startswith(local + ".")] if name else []
        return None

    def flushes_passed_session(self, qualified: str | None, position: int | None, keyword: str | None) -> str | None:
        """Calling the project function ``qualified`` with a session as the argument at
        ``position`` (or ``keyword``): "commit" or "flush" when it commits or flushes that
        session where a failure reaches the caller still needing a rollback
        (``Function.flushes_params``), and the parameter is typed as a session; else None."""
        fn = self.function(qualified)
        flushes = fn.flushes_params if fn is not None else {}
        if fn is None or not flushes:
            return None
        if keyword is not None:
            name = keyword
        elif position is not None and "." not in fn.qualname and position < len(fn.params):
            name = fn.params[position].name  # (a method's positions are shifted by self)
        else:
            return None
        param = next((p for p in fn.params if p.name == name), None)
        if param is None or param.depends or self.session_class(param.annotation) is None:
            return None
        return flushes.get(name)

    def flushing_function_names(self) -> set[str]:
        """The short names of the project functions that commit or flush a session they are
        given (see :meth:`flushes_passed_session`), and of the methods that commit or flush
        their own ``self.<attr>`` session uncaught (see :meth:`constructed_flushes`): a
        function calling none of them needs no closer look."""
        if self._flushing is None:
            self._flushing = {q.rsplit(".", 1)[-1] for mod in self.modules.values()
                              for q, fn in mod.functions.items() if fn.flushes_params} | self.self_flushing_method_names()
        return self._flushing

    def self_flushing_method_names(self) -> frozenset[str]:
        """The short names of the methods that commit or flush their own ``self.<attr>``
        session where a failure reaches the caller (see :meth:`constructed_flushes`)."""
        return self.remember(("self-flushing",), lambda: frozenset(
            q.rsplit(".", 1)[-1] for mod in self.modules.values() for q, fn in mod.functions.items()
            if any(end.session.startswith("self.") and end.method in ("commit", "flush") and not end.caught
                   for end in fn.session_ends)))
