"""SQF007 instance-outlives-session: ORM instances and sessions kept beyond one request (report only)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

from ..lazy import lazy
from . import match as m
from .base import FileContext, Finding, Pass, visit_with
from .flow import (
    BindingKind,
    EventKind,
    SessionRef,
    attaches,
    binding_of,
    bound_through,
    events,
    functions,
    loaded_eagerly,
    mentions,
    model_for,
    project_never_expires,
    sessions,
    shape,
    with_scopes,
)
from .helpers import calls_a_scope, dotted, holds_session, names_a_model
from .instance_outlives_session_examples import EXAMPLES, PROJECT, VALID
from .scripts import HANDOFF_NAMES, single_run_script

if TYPE_CHECKING:
    import libcst as cst

    from .. import index as index_mod
else:
    cst = lazy("libcst")

_CONTAINERS = {"dict", "list", "set", "OrderedDict", "defaultdict", "WeakValueDictionary", "TTLCache", "LRUCache"}
_DETACH_METHODS = {"expunge", "expunge_all"}
_STORE_METHODS = {"append", "add", "setdefault", "insert", "appendleft"}
# Calls that run a function in another thread: qualified callables, and methods of executors.
_THREAD_CLASSES = {"threading.Thread", "threading.Timer"}
_THREAD_FUNCTIONS = {"asyncio.to_thread"}
_FIX = ("cache ids or plain data and reload with `session.get(Model, id)` in the session that "
        "uses it (or `obj = session.merge(obj)`), and use one session per request or task")


class InstanceOutlivesSession(Pass):
    code = "SQF007"
    name = "instance-outlives-session"
    summary = "an ORM instance or a session kept beyond one request: caches, module-level sessions"
    fix_safety = "none"
    triggers = (b"[", b".append(", b".add(", b"cache", b"gather", b"Session(", b"()")
    explanation = """
    ## What it does
    Reports ORM instances stored where they outlive the session that loaded them, and
    sessions shared beyond one request or task:

    - an instance stored in a module-level or class-level container (`_cache[key] = obj`,
      `CACHE.append(obj)`) that the module reads back, or in a container on `self` of an
      object the project builds once at module level (`directory = Directory()`), unless the
      class empties it on session events (`event.listens_for(session, "after_commit")`);
    - a function whose decorator keeps its results for later calls (`lru_cache`, `cache`,
      `cachetools.cached`, `alru_cache`, or a project decorator named for a cache whose code
      stores values) and that returns ORM instances without detaching them
      (`session.expunge(obj)`);
    - a session created at module level (`session = SessionLocal()`) and used by functions:
      every request or thread shares it (not in a script that one process runs once in one
      thread: a module with an `if __name__ == "__main__":` block, or whose own statements
      call its functions (`asyncio.run(main())`) and none of whose functions is decorated or
      handed on as a value (a handler registered with a framework),
      that no other module of the project imports and that starts no thread or task);
    - one session passed to several coroutines run together by `asyncio.gather`;
    - an instance handed to another thread: `Thread(target=f, args=(obj,))`,
      `executor.submit(f, obj)`, `loop.run_in_executor(None, f, obj)`,
      `asyncio.to_thread(f, obj)`, or a nested function using `obj` run that way. An
      argument counts when the code loaded it through a session or when the thread's
      function types that parameter with a model;
    - a lambda or nested function that reads an attribute of an instance, handed to a call
      that keeps it to run later: a function of the module that stores its argument on
      `self` or in a module-level container (`self.when_closed(lambda: print(user.name))`),
      `atexit.register`, an event loop's `call_later`/`call_at`. A column read is left alone
      when every session factory of the project is built with `expire_on_commit=False`.

    ## Why is this bad?
    An instance belongs to one session. Kept beyond it, it becomes detached; if its
    transaction was rolled back it is transient again, with a primary key that does not
    exist in the database. A later request that takes it from the cache and updates it
    without `add()` commits nothing (the change is silently lost), and an insert that refers
    to it fails with a foreign-key error. A rollback in one request expires or expunges the
    objects of all the others sharing the session. An `AsyncSession` is not safe for
    concurrent tasks. A session and its instances belong to one thread: another thread that
    reads an instance either loads through a session the first thread is using (two threads
    on one connection) or, once the request ended and its session closed, raises
    `DetachedInstanceError` on an expired column or an unloaded relationship. (This is not
    an engine-level identity map shared by every session: there is none; the identity map
    belongs to one session.)

    ## The fix
    Cache ids or plain data, not instances, and reload with `session.get(Model, id)` in the
    session that uses them (or `obj = session.merge(obj)`); open one session per request or
    task (a FastAPI `get_db` dependency, `async with maker() as session:` per task). Give a
    thread the ids and values it needs, and let it open its own session. Read what a kept
    callback needs before handing it over (`name = user.name`) and close over the value.
    `expunge_all()` after a rollback (SQF004) does not repair an instance kept outside the
    session.

    ## Fix safety
    No automatic fix: what to cache instead, and where sessions begin and end, is a design
    decision.
    """
    example_project = PROJECT
    examples = EXAMPLES
    valid = VALID

    @classmethod
    def wants(cls, index, facts) -> bool:
        if facts is None:
            return True
        if "gather" in facts.all_methods | facts.all_called and (calls_a_scope(index, facts) or any(
                fn.is_async and holds_session(index, fn) for fn in facts.functions.values())):
            return True  # one session handed to several coroutines (as _gather finds sessions)
        if any(index.memoizes(d) for fn in facts.functions.values() for d in fn.decorators):
            return True
        # a module-level session (`session = Session(engine)`, `db = SessionLocal()`): see _module_sessions
        if any(index.factory(q) is not None or index.opens_session(q) is not None for q in facts.assigned_calls):
            return True
        if not _may_hold_instances(index, facts):
            return False  # what is left reports ORM instances the module's own code names (see _orm_names)
        if HANDOFF_NAMES & (facts.all_methods | facts.all_called):
            return True  # an instance handed to another thread
        for fn in facts.functions.values():  # a function storing into a module/class container
            for holder in fn.stores:
                head, _, attr = holder.partition(".")
                if holder in facts.containers or (head in ("self", "cls") and any(
                        c.endswith("." + attr) for c in facts.containers)):
                    return True
        keepers = {q.rsplit(".", 1)[-1] for q, fn in facts.functions.items() if fn.kept_params}
        if (_LATER_NAMES | keepers) & (facts.all_called | facts.all_methods):
            return True  # a callback may be kept for later (by a function of this module: see _keepers)
        stored_on_self = {q.split(".")[0] for q, fn in facts.functions.items()
                          if "." in q and any(h.startswith("self.") for h in fn.stores - fn.add_owners)}
        return any(index.module_instances(f"{facts.module}.{c}") for c in stored_on_self)
        # (a container on self of an object built once at module level)

    def run(self, ctx: FileContext) -> Iterator[Finding]:
        module_containers = self._module_containers(ctx.module)
        module_sessions = self._module_sessions(ctx)
        for qualname, fn in functions(ctx.module, ctx):
            facts = ctx.function_facts(qualname) if not ctx.round else None
            found = shape(ctx, fn, qualname)
            class_containers = self._class_containers(ctx.module, qualname)
            kept_by = self._long_lived_containers(ctx, qualname)
            class_containers |= set(kept_by)
            if facts is None or any(self._holder_matches(h, module_containers | class_containers) for h in facts.stores):
                yield from self._stores(ctx, fn, qualname, module_containers, class_containers, kept_by)
            yield from self._cached_function(ctx, fn, qualname)
            if "gather" in found.methods or "gather" in found.calls:
                yield from self._gather(ctx, fn, qualname)
            if HANDOFF_NAMES & (found.methods | found.calls):
                yield from self._handoffs(ctx, fn, qualname)
            yield from self._callbacks(ctx, fn, qualname)
        yield from self._shared_session(ctx, module_sessions)

    @staticmethod
    def _holder_matches(holder: str, containers: set[str]) -> bool:
        return holder in containers

    # containers ---------------------------------------------------------------
    @staticmethod
    def _is_container(value: cst.BaseExpression | None) -> bool:
        if isinstance(value, (cst.Dict, cst.List, cst.Set)):
            return True
        if isinstance(value, cst.Call):
            name = dotted(value.func) or ""
            return name.rsplit(".", 1)[-1] in _CONTAINERS
        return False

    def _assigned_containers(self, body) -> set[str]:
        out: set[str] = set()
        for stmt in body:
            if not isinstance(stmt, cst.SimpleStatementLine):
                continue
            for small in stmt.body:
                if isinstance(small, cst.Assign) and self._is_container(small.value):
                    out.update(t.target.value for t in small.targets if isinstance(t.target, cst.Name))
                elif isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name) \
                        and self._is_container(small.value):
                    out.add(small.target.value)
        return out

    def _module_containers(self, module: cst.Module) -> set[str]:
        return self._assigned_containers(module.body)

    def _class_containers(self, module: cst.Module, qualname: str) -> set[str]:
        if "." not in qualname:
            return set()
        class_name = qualname.split(".")[0]
        for stmt in module.body:
            if isinstance(stmt, cst.ClassDef) and stmt.name.value == class_name and isinstance(stmt.body, cst.IndentedBlock):
                return {f"self.{n}" for n in self._assigned_containers(stmt.body.body)} | \
                    {f"{class_name}.{n}" for n in self._assigned_containers(stmt.body.body)} | \
                    {f"cls.{n}" for n in self._assigned_containers(stmt.body.body)}
        return set()

    @staticmethod
    def _long_lived_containers(ctx: FileContext, qualname: str) -> dict[str, str]:
        """For a method of a class the project instantiates once at module level
        (`directory = UserDirectory()`: the object lives as long as the process), the
        containers its methods put on ``self`` (`self._users = {}`), with that module-level
        name. Left out: a class that listens to session events (`event.listens_for(session,
        "after_commit")`), which is how such a cache is emptied when the session ends."""
        if "." not in qualname:
            return {}
        class_name = qualname.split(".")[0]
        return ctx.cached(("sqf007-long-lived", class_name),
                          lambda: InstanceOutlivesSession._class_long_lived_containers(ctx, class_name))

    @staticmethod
    def _class_long_lived_containers(ctx: FileContext, class_name: str) -> dict[str, str]:
        cls = next((s for s in ctx.module.body if isinstance(s, cst.ClassDef) and s.name.value == class_name), None)
        if cls is None or ctx.index is None:
            return {}
        owners = ctx.index.module_instances(ctx.qualify(class_name))
        if not owners:
            return {}
        if m.findall(cls, m.Call(func=m.Attribute(attr=m.Name("listens_for") | m.Name("listen")) | m.Name("listens_for"))):
            return {}
        out: dict[str, str] = {}
        for assign in m.findall(cls, m.Assign(targets=[m.AssignTarget(target=m.Attribute(value=m.Name("self")))])):
            if InstanceOutlivesSession._is_container(assign.value):  # type: ignore[attr-defined]
                out[f"self.{assign.targets[0].target.attr.value}"] = owners[0]  # type: ignore[attr-defined]
        return out

    def _stores(self, ctx: FileContext, fn: cst.FunctionDef, qualname: str, module_containers: set[str],
                class_containers: set[str], kept_by: dict[str, str] | None = None) -> Iterator[Finding]:
        containers = module_containers | class_containers
        if not containers:
            return
        containers -= self._locals(fn)
        stores: list[tuple[cst.CSTNode, str, str]] = []
        loaded: dict[int, str] = {}  # a load stored as it is (`cache[k] = session.get(User, k)`): its model
        for assign in m.findall(fn.body, m.Assign(targets=[m.AssignTarget(target=m.Subscript())])):
            holder = dotted(assign.targets[0].target.value)  # type: ignore[attr-defined]
            if holder not in containers:
                continue
            value = assign.value  # type: ignore[attr-defined]
            if isinstance(value, cst.Name):
                stores.append((assign, holder, value.value))
                continue
            binding = binding_of(ctx, value, _session_refs(ctx, fn, qualname))
            model = model_for(ctx, binding.model) if binding.kind in (BindingKind.LOADED, BindingKind.LIST) else None
            if model is not None:
                loaded[id(assign)] = model.name
                stores.append((assign, holder, ""))
        for call in m.findall(fn.body, m.Call(func=m.Attribute())):
            holder = dotted(call.func.value)  # type: ignore[attr-defined]
            if holder in containers and call.func.attr.value in _STORE_METHODS:  # type: ignore[attr-defined]
                for arg in call.args:  # type: ignore[attr-defined]
                    if isinstance(arg.value, cst.Name):
                        stores.append((call, holder, arg.value.value))
        if not stores:
            return
        instances = self._orm_names(ctx, fn, qualname)
        for node, holder, X in stores:
            model_name = loaded.get(id(node)) or instances.get(X)
            if model_name is None or not self._read_back(ctx.module, holder):
                continue
            owner = (kept_by or {}).get(holder)
            where = (f"`{holder}` of `{owner}`, one object for the whole process," if owner
                     else f"{'class-level' if holder.count('.') else 'module-level'} `{holder}`,")
            what = f"`{X}` ({model_name})" if X else f"loaded here ({model_name})"
            yield self.finding(node, (
                f"ORM instance {what} is stored in {where} which outlives its "
                f"session: a later request that takes it from there and changes it saves nothing, and "
                f"after a rollback it refers to a row that does not exist; {_FIX}"))

    @staticmethod
    def _locals(fn: cst.FunctionDef) -> set[str]:
        return {t.target.value for t in m.findall(fn.body, m.AssignTarget(target=m.Name()))}  # type: ignore[attr-defined]

    @staticmethod
    def _read_back(module: cst.Module, holder: str) -> bool:
        """Does the module take values out of the container (`holder[k]`, `holder.get(k)`)?"""
        base = holder.rsplit(".", 1)[-1]
        for sub in m.findall(module, m.Subscript()):
            if (dotted(sub.value) or "").rsplit(".", 1)[-1] == base:  # type: ignore[attr-defined]
                return True
        for call in m.findall(module, m.Call(func=m.Attribute(attr=m.Name("get") | m.Name("pop") | m.Name("values")))):
            if (dotted(call.func.value) or "").rsplit(".", 1)[-1] == base:  # type: ignore[attr-defined]
                return True
        for loop in m.findall(module, m.For()):
            if (dotted(loop.iter) or "").rsplit(".", 1)[-1] == base:  # type: ignore[attr-defined]
                return True
        return False

    @staticmethod
    def _orm_names(ctx: FileContext, fn: cst.FunctionDef, qualname: str) -> dict[str, str]:
        """Names of ``fn`` bound to ORM instances, with the model's name."""
        evs = events(fn, ctx)
        refs = _session_refs(ctx, fn, qualname)
        out: dict[str, str] = {}
        index = ctx.index
        facts = ctx.function_facts(qualname)
        if facts is not None:
            for p in facts.params:
                model = index.model(p.annotation)
                if model is not None:
                    out[p.name] = model.name
        scopes = []
        for e in evs:
            if e.kind == EventKind.WITH:
                scopes += with_scopes(ctx, e.node)  # type: ignore[arg-type]
            if e.kind != EventKind.ASSIGN or e.name is None:
                continue
            binding = binding_of(ctx, e.value, refs)
            if binding.kind in (BindingKind.NEW, BindingKind.LOADED) and binding.model and model_for(ctx, binding.model) is not None:
                out[e.name] = binding.model
                continue
            for name, scope in scopes:
                bound = bound_through(ctx, e, name, scope)
                if bound is not None:
                    out[e.name] = bound.model.name
        _typed_and_related(ctx, fn, out)
        return out

    # lru_cache ----------------------------------------------------------------
    def _cached_function(self, ctx: FileContext, fn: cst.FunctionDef, qualname: str) -> Iterator[Finding]:
        """A function whose decorator keeps its results (`lru_cache`, a project `@cached`) and
        that returns ORM instances it does not detach: every later call, in other requests,
        gets the instances of the first call's session."""
        index = ctx.index
        facts = ctx.function_facts(qualname)
        if facts is None:
            return
        caches = [d for d in facts.decorators if index.memoizes(d)]
        if not caches or facts.detaches or facts.methods & _DETACH_METHODS:
            return  # `session.expunge(obj)` before returning: a deliberate detach
        returned = index.returned(ctx.qualify(qualname))
        if returned is None:
            return
        at = _last_value_return(fn) or fn.name
        yield self.finding(at, (
            f"`{fn.name.value}` is cached ({', '.join(d.rsplit('.', 1)[-1] for d in caches)}) and returns "
            f"{returned.model.name} instances: every later call, in other requests, gets the instances this "
            f"call loaded, still attached to its session (or detached from it, expired) and shared "
            f"between requests; {_FIX}"))

    # sessions -------------------------------------------------------------------
    @staticmethod
    def _module_sessions(ctx: FileContext) -> dict[str, cst.CSTNode]:
        index = ctx.index
        out: dict[str, cst.CSTNode] = {}
        for stmt in ctx.module.body:
            if not isinstance(stmt, cst.SimpleStatementLine):
                continue
            for small in stmt.body:
                if isinstance(small, cst.Assign) and isinstance(small.value, cst.Call) and len(small.targets) == 1 \
                        and isinstance(small.targets[0].target, cst.Name):
                    callee = dotted(small.value.func)
                    qualified = ctx.qualify(callee) if callee else None
                    if qualified and (index.factory(qualified) is not None or index.opens_session(qualified) is not None):
                        out[small.targets[0].target.value] = small
        return out

    def _shared_session(self, ctx: FileContext, module_sessions: dict[str, cst.CSTNode]) -> Iterator[Finding]:
        if module_sessions and single_run_script(ctx):
            return
        for name, node in module_sessions.items():
            users = [q for q, fn in functions(ctx.module, ctx)
                     if m.findall(fn.body, m.Attribute(value=m.Name(name))) and not _rebinds_local(fn, name)]
            if users:
                yield self.finding(node, (
                    f"module-level session `{name}` is shared by {', '.join(f'`{u}`' for u in users[:3])}"
                    f"{' and more' if len(users) > 3 else ''}: every request and thread uses one session, "
                    f"so one request's rollback or commit expires the others' objects; open one session "
                    f"per request or task (a `get_db` dependency, `with SessionLocal() as session:`)"))

    def _gather(self, ctx: FileContext, fn: cst.FunctionDef, qualname: str) -> Iterator[Finding]:
        if fn.asynchronous is None:
            return
        gathers = [c for c in m.findall(fn.body, m.Call(func=m.Attribute(attr=m.Name("gather")) | m.Name("gather")))]
        if not gathers:
            return
        refs = sessions(ctx, fn, qualname, events(fn, ctx))
        for call in gathers:
            for S in refs:
                coros = [a for a in call.args if isinstance(a.value, cst.Call)  # type: ignore[attr-defined]
                         and any(dotted(x.value) == S for x in a.value.args)]  # type: ignore[attr-defined]
                if len(coros) > 1:
                    yield self.finding(call, (
                        f"one session `{S}` is passed to {len(coros)} coroutines run concurrently by "
                        f"`gather`: an AsyncSession is not safe for concurrent tasks; open one session "
                        f"per task (`async with maker() as session:` inside each)"))
                    break


    # threads -------------------------------------------------------------------
    def _handoffs(self, ctx: FileContext, fn: cst.FunctionDef, qualname: str) -> Iterator[Finding]:
        """ORM instances handed to a function run in another thread: `Thread(target=f,
        args=(obj,))`, `executor.submit(f, obj)`, `loop.run_in_executor(None, f, obj)`,
        `asyncio.to_thread(f, obj)`, or a nested function (or lambda) that uses `obj`, run the
        same way."""
        nested: dict[str, cst.FunctionDef] = {
            d.name.value: d for d in m.findall(fn.body, m.FunctionDef()) if isinstance(d, cst.FunctionDef)}
        inner_calls = {id(c) for d in nested.values() for c in m.findall(d.body, m.Call())}
        # a hand-off whose caller waits for the result (`await asyncio.to_thread(f, obj)`,
        # `executor.submit(f, obj).result()`) ends before the session does
        waited = {id(c) for w in m.findall(fn.body, m.Await()) for c in m.findall(w, m.Call())}
        waited |= {id(c.func.value) for c in m.findall(fn.body, m.Call(func=m.Attribute(  # type: ignore[attr-defined]
            value=m.Call(), attr=m.Name("result"))))}
        instances: dict[str, str] | None = None
        transient: frozenset[str] = frozenset()
        for call in m.findall(fn.body, m.Call()):
            if id(call) in inner_calls or id(call) in waited:
                continue
            handoff = _thread_handoff(ctx, call)  # type: ignore[arg-type]
            if handoff is None:
                continue
            target, args = handoff
            if instances is None:
                transient = _transient_names(fn)
                instances = {X: model for X, model in self._orm_names(ctx, fn, qualname).items()
                             if X not in transient}
            handed: dict[str, str] = {}
            params = self._target_models(ctx, qualname, target)
            for i, arg in enumerate(args):
                if isinstance(arg, cst.Name) and arg.value not in transient:
                    model = instances.get(arg.value) or (params[i] if i < len(params) else None)
                    if model is not None:
                        handed.setdefault(arg.value, model)
            body: cst.CSTNode | None = None
            if isinstance(target, cst.Lambda):
                body = target.body
            elif isinstance(target, cst.Name) and target.value in nested:
                body = nested[target.value].body
            if body is not None:
                for X, model in self._closure_instances(ctx, qualname, transient, body, instances).items():
                    handed.setdefault(X, model)
            if not handed:
                continue
            what = ", ".join(f"`{X}` ({model})" for X, model in sorted(handed.items()))
            lazy = self._thread_relationship_reads(ctx, qualname, target, args, handed)
            yield self.finding(call, (
                f"ORM instance{'s' if len(handed) > 1 else ''} {what} handed to another thread: the session "
                f"{'they belong' if len(handed) > 1 else 'it belongs'} to stays in this thread and ends with "
                f"this request or task, so the thread's reads (expired columns, lazy relationships) raise "
                f"DetachedInstanceError or use one session from two threads at once"
                f"{f' ({lazy})' if lazy else ''}; pass the plain values the thread needs (ids, names) and "
                f"load again in a session of its own"), subject=next(iter(sorted(handed))))

    def _thread_relationship_reads(self, ctx: FileContext, qualname: str, target: cst.BaseExpression,
                                   args: list[cst.BaseExpression], handed: dict[str, str]) -> str:
        """What the thread's function reads of the instances it is given that must load:
        "`notify` reads `review.algorithm`, a lazy relationship", or ""."""
        facts = self._callee_facts(ctx, qualname, target)
        if facts is None:
            return ""
        params = [p.name for p in facts.params if p.name not in ("self", "cls")]
        found: list[str] = []
        for i, arg in enumerate(args):
            if not isinstance(arg, cst.Name) or arg.value not in handed or i >= len(params):
                continue
            model = model_for(ctx, handed[arg.value])
            reads = sorted(facts.param_reads.get(params[i], ()))
            found += [f"`{params[i]}.{a}`" for a in reads if model is not None and a in model.relationships
                      and not loaded_eagerly(model, a)]
        if not found:
            return ""
        name = facts.qualname.rsplit(".", 1)[-1]
        return f"`{name}` reads {', '.join(found)}: {'lazy relationships' if len(found) > 1 else 'a lazy relationship'} it cannot load there"

    # callbacks kept for later ---------------------------------------------------------
    def _callbacks(self, ctx: FileContext, fn: cst.FunctionDef, qualname: str) -> Iterator[Finding]:
        """A lambda or nested function handed to a call that keeps it to run later (a method of
        this module that stores its parameter on ``self`` or in a module-level container:
        `self.add_close_handler(lambda: ...)`; `loop.call_later`, `atexit.register`) and that
        reads an attribute of an ORM instance of the enclosing function: it runs after the
        session that loaded the instance has ended."""
        keepers = ctx.cached("sqf007-keepers", lambda: _keepers(ctx))
        if not keepers and not ctx.cached("sqf007-later", lambda: _mentions_later(ctx)):
            return
        facts = ctx.function_facts(qualname) if not ctx.round else None
        if facts is not None and not (facts.methods | facts.called) & (
                {q.rsplit(".", 1)[-1] for q in keepers} | _LATER_NAMES):
            return  # it calls none of them
        walk = _walk(fn.body)
        if not walk.callables:
            return
        instances: dict[str, str] | None = None
        transient: frozenset[str] = frozenset()
        for call in walk.calls:
            kept = _kept_callbacks(ctx, qualname, call, keepers)
            for value in kept:
                body: cst.CSTNode | None = value.body if isinstance(value, cst.Lambda) else (
                    walk.nested[value.value].body if isinstance(value, cst.Name) and value.value in walk.nested else None)
                if body is None:
                    continue
                if instances is None:
                    transient = _transient_names(fn)
                    instances = {X: model for X, model in self._orm_names(ctx, fn, qualname).items()
                                 if X not in transient}
                used = self._closure_instances(ctx, qualname, transient, body, instances)
                for X in sorted(used):
                    read = self._failing_read(ctx, body, X, used[X])
                    if read is None:
                        continue
                    attr = read.attr.value
                    yield self.finding(read, (
                        f"`{X}.{attr}` ({used[X]}) is read in a callback that `{dotted(call.func)}(...)` keeps "  # type: ignore[attr-defined]
                        f"to run later: by then the session that loaded `{X}` has ended (committed, closed), "
                        f"and the read raises DetachedInstanceError; read the value now "
                        f"(`{X}_{attr} = {X}.{attr}`) and let the callback use it"), subject=X)

    @staticmethod
    def _failing_read(ctx: FileContext, body: cst.CSTNode, X: str, model_name: str) -> cst.Attribute | None:
        """The first read of an attribute of ``X`` in ``body`` that fails once its session has
        ended: a relationship always; a column unless every factory of the project keeps
        loaded columns on commit (`expire_on_commit=False`)."""
        model = model_for(ctx, model_name)
        quiet = project_never_expires(ctx)
        for read in m.findall(body, m.Attribute(value=m.Name(X))):
            attr = read.attr.value  # type: ignore[attr-defined]
            if not quiet or (model is not None and attr in model.relationships):
                return read  # type: ignore[return-value]
        return None

    def _target_models(self, ctx: FileContext, qualname: str, target: cst.BaseExpression) -> list[str | None]:
        """For a function run in a thread, the model each positional parameter is annotated with."""
        facts = self._callee_facts(ctx, qualname, target)
        if facts is None:
            return []
        params = [p for p in facts.params if p.name not in ("self", "cls")]
        out: list[str | None] = []
        for p in params:
            model = ctx.index.model(p.annotation)
            out.append(model.name if model is not None else None)
        return out

    @staticmethod
    def _callee_facts(ctx: FileContext, qualname: str, target: cst.BaseExpression):
        """The index facts of a function of this module named by ``target``: `f`,
        `self.method`, `cls.method`, `Class.method`."""
        name = dotted(target)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        if head in ("self", "cls") and rest and "." in qualname:
            name = qualname.rsplit(".", 1)[0] + "." + rest
        return ctx.function_facts(name)

    def _closure_instances(self, ctx: FileContext, qualname: str, transient: frozenset[str], body: cst.CSTNode,
                           instances: dict[str, str]) -> dict[str, str]:
        """Names a nested function (or lambda) uses from the enclosing function that hold ORM
        instances: known there, or passed inside it to a function whose parameter is typed
        with a model."""
        bound = {t.target.value for t in m.findall(body, m.AssignTarget(target=m.Name()))}  # type: ignore[attr-defined]
        out = {X: model for X, model in instances.items() if X not in bound and mentions(body, X)}
        for call in m.findall(body, m.Call()):
            params = self._target_models(ctx, qualname, call.func)  # type: ignore[attr-defined]
            for i, arg in enumerate(call.args):  # type: ignore[attr-defined]
                if arg.keyword is None and isinstance(arg.value, cst.Name) and arg.value.value not in bound \
                        and i < len(params) and params[i] is not None and arg.value.value not in transient:
                    out.setdefault(arg.value.value, params[i])  # type: ignore[arg-type]
        return out


def _thread_handoff(ctx: FileContext, call: cst.Call) -> tuple[cst.BaseExpression, list[cst.BaseExpression]] | None:
    """(the function run in another thread, the positional values it receives) for a call that
    starts one, else None."""
    name = dotted(call.func)
    if name is None:
        return None
    qualified = ctx.qualify(name) or name
    positional = [a.value for a in call.args if a.keyword is None and a.star == ""]
    keywords = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
    if qualified in _THREAD_CLASSES:
        target = keywords.get("target" if qualified.endswith("Thread") else "function")
        if target is None and qualified.endswith("Timer") and len(positional) > 1:
            target = positional[1]
        if target is None:
            return None
        packed = keywords.get("args")
        values = [e.value for e in packed.elements] if isinstance(packed, (cst.Tuple, cst.List)) else []
        extra = keywords.get("kwargs")
        if isinstance(extra, cst.Dict):
            values += [e.value for e in extra.elements if isinstance(e, cst.DictElement)]
        return target, values
    if qualified in _THREAD_FUNCTIONS and positional:
        return positional[0], positional[1:]
    if not isinstance(call.func, cst.Attribute):
        return None
    method = call.func.attr.value
    receiver = (dotted(call.func.value) or "").lower()
    if method == "run_in_executor" and len(positional) > 1:
        return positional[1], positional[2:]
    if method == "submit" and positional and ("executor" in receiver or "pool" in receiver) \
            and isinstance(positional[0], (cst.Name, cst.Attribute, cst.Lambda)):
        return positional[0], positional[1:]
    return None


def _session_refs(ctx: FileContext, fn: cst.FunctionDef, qualname: str) -> dict[str, SessionRef]:
    """The sessions of ``fn``: its own (see :func:`flow.sessions`), and for a method the
    sessions its object holds (`self.session`, when the class stores a session there)."""
    refs = sessions(ctx, fn, qualname, events(fn, ctx))
    facts = ctx.facts
    if "." not in qualname or facts is None:
        return refs
    class_qualname = qualname.rsplit(".", 1)[0]
    held: dict[str, SessionRef] = {}
    for call in m.findall(fn.body, m.Call(func=m.Attribute(value=m.Attribute(value=m.Name("self"))))):
        attr = call.func.value.attr.value  # type: ignore[attr-defined]
        name = f"self.{attr}"
        if name not in refs and name not in held and ctx.index.self_session(facts, class_qualname, attr):
            settings = ctx.index.self_session_settings(facts, class_qualname, attr)
            held[name] = SessionRef(name, settings[0] if settings else None,
                                    settings[1] if settings else ctx.index.assume_expire_on_commit)
    return {**refs, **held} if held else refs


def _keepers(ctx: FileContext) -> dict[str, set[int]]:
    """The functions of this module that keep a parameter they are given beyond the call, by
    qualname: the positions (``self``/``cls`` not counted) of the parameters they store on
    ``self`` or in a module-level name (`self._handlers.append(handler)`,
    `_listeners[key] = callback`)."""
    out: dict[str, set[int]] = {}
    for qualname, fn in functions(ctx.module, ctx):
        params = [p.name.value for p in fn.params.params if p.name.value not in ("self", "cls")]
        facts = ctx.function_facts(qualname) if not ctx.round else None
        if not params or (facts is not None and not facts.kept_params):
            continue
        walk = _walk(fn.body)
        kept: set[int] = set()
        for holder, values in walk.stores:
            while isinstance(holder, (cst.Subscript, cst.Call)):  # `self._by_topic[topic].append(h)`
                holder = holder.value if isinstance(holder, cst.Subscript) else holder.func
                if isinstance(holder, cst.Attribute) and holder.attr.value in _STORE_METHODS:
                    holder = holder.value  # `self._by.setdefault(k, []).append(h)`
            head = (dotted(holder) or "").split(".")[0]
            if not head or not (head in ("self", "cls") or head not in walk.locals | set(params)):
                continue
            kept.update(params.index(v.value) for v in values if isinstance(v, cst.Name) and v.value in params)
        if kept:
            out[qualname] = kept
    return out


@dataclass
class _Walked:
    """What one walk of a function body finds for the callback checks."""

    locals: set[str] = field(default_factory=set)  # names it assigns
    stores: list[tuple[cst.BaseExpression, list[cst.BaseExpression]]] = field(default_factory=list)  # (holder, values)
    nested: dict[str, cst.FunctionDef] = field(default_factory=dict)  # functions defined in it
    callables: bool = False  # it holds a lambda or a nested function
    calls: list[cst.Call] = field(default_factory=list)  # calls given a lambda or a name


def _walk(body: cst.CSTNode) -> _Walked:
    return visit_with(body, lambda: _walker_type()(_Walked())).found


@cache
def _walker_type() -> type:
    class Walker(cst.CSTVisitor):
        def __init__(self, found: _Walked) -> None:
            super().__init__()
            self.found = found

        def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
            self.found.nested.setdefault(node.name.value, node)
            self.found.callables = True

        def visit_Lambda(self, node: cst.Lambda) -> None:
            self.found.callables = True

        def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
            if isinstance(node.target, cst.Name):
                self.found.locals.add(node.target.value)

        def visit_Assign(self, node: cst.Assign) -> None:
            if len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Subscript):
                self.found.stores.append((node.targets[0].target.value, [node.value]))

        def visit_Call(self, node: cst.Call) -> None:
            if isinstance(node.func, cst.Attribute) and node.func.attr.value in _STORE_METHODS:
                self.found.stores.append((node.func.value, [a.value for a in node.args]))
            if any(isinstance(a.value, (cst.Lambda, cst.Name)) for a in node.args):
                self.found.calls.append(node)

    return Walker


def _mentions_later(ctx: FileContext) -> bool:
    """Does the module call something that keeps a callable to run later (`atexit.register`,
    `loop.call_later`)? Without index facts: maybe."""
    facts = ctx.facts
    if facts is None or ctx.round:
        return True
    return bool(_LATER_NAMES & (facts.all_called | facts.all_methods))


_LATER = {"atexit.register": 0}  # library calls that keep a callable to run later: its position
_LATER_METHODS = {"call_later": 1, "call_at": 1}  # event loop methods
_LATER_NAMES = {n.rsplit(".", 1)[-1] for n in _LATER} | set(_LATER_METHODS)  # as a call spells them


def _kept_callbacks(ctx: FileContext, qualname: str, call: cst.Call, keepers: dict[str, set[int]]) -> list[cst.BaseExpression]:
    """The arguments of ``call`` that the callee keeps to run later."""
    name = dotted(call.func)
    if name is None:
        return []
    positional = [a.value for a in call.args if a.keyword is None and a.star == ""]
    qualified = ctx.qualify(name) or name
    if qualified in _LATER:
        positions = {_LATER[qualified]}
    elif isinstance(call.func, cst.Attribute) and call.func.attr.value in _LATER_METHODS \
            and "loop" in (dotted(call.func.value) or "").lower():
        positions = {_LATER_METHODS[call.func.attr.value]}
    else:
        head, _, rest = name.partition(".")
        if head in ("self", "cls") and rest and "." in qualname:
            name = qualname.rsplit(".", 1)[0] + "." + rest
        positions = keepers.get(name, set())
    return [positional[i] for i in sorted(positions) if i < len(positional)]


def _typed_and_related(ctx: FileContext, fn: cst.FunctionDef, out: dict[str, str]) -> None:
    """Add to ``out`` the names annotated with a model (`algorithm: Algorithm = ...`), bound to
    a relationship of a known instance (`team = user.team`), or looping over one
    (`for review in algorithm.reviews`)."""
    index = ctx.index
    for ann in m.findall(fn.body, m.AnnAssign(target=m.Name())):
        model = index.model(ctx.qualify(dotted(ann.annotation.annotation)))  # type: ignore[attr-defined]
        if model is not None:
            out.setdefault(ann.target.value, model.name)  # type: ignore[attr-defined]
    pairs: list[tuple[str, cst.BaseExpression]] = []
    for loop in m.findall(fn.body, m.For(target=m.Name(), iter=m.Attribute(value=m.Name()))):
        pairs.append((loop.target.value, loop.iter))  # type: ignore[attr-defined]
    for assign in m.findall(fn.body, m.Assign(targets=[m.AssignTarget(target=m.Name())], value=m.Attribute(value=m.Name()))):
        pairs.append((assign.targets[0].target.value, assign.value))  # type: ignore[attr-defined]
    for _ in range(2):  # a name bound through one found in the first round
        for X, expr in pairs:
            owner = out.get(expr.value.value)  # type: ignore[attr-defined]
            model = model_for(ctx, owner) if owner else None
            target = model.targets.get(expr.attr.value) if model is not None else None  # type: ignore[attr-defined]
            if target is not None and model_for(ctx, target) is not None:
                out.setdefault(X, target)


def _transient_names(fn: cst.FunctionDef) -> frozenset[str]:
    """The names that only ever hold a new object the function built (`X = Model(...)`) and
    never gave to a session (`add`, `merge`, `add_all`). A transient object belongs to no
    session: handing it on is harmless. One walk of the body."""
    values: dict[str, list[cst.BaseExpression]] = {}
    given: set[str] = set()
    for node in m.findall(fn.body, m.Assign(targets=[m.AssignTarget(target=m.Name())]) | m.Call(func=m.Attribute())):
        if isinstance(node, cst.Assign):
            values.setdefault(node.targets[0].target.value, []).append(node.value)  # type: ignore[attr-defined]
        elif isinstance(node, cst.Call) and attaches(node.func.attr.value):  # type: ignore[attr-defined]
            given.update(a.value.value for a in node.args if isinstance(a.value, cst.Name))
    return frozenset(X for X, vs in values.items() if X not in given and all(
        isinstance(v, cst.Call) and (dotted(v.func) or "").rsplit(".", 1)[-1][:1].isupper() for v in vs))


def _last_value_return(fn: cst.FunctionDef) -> cst.Return | None:
    """The last `return <value>` of ``fn`` (not of a function nested in it), `return None` aside."""
    nested = {id(r) for d in m.findall(fn.body, m.FunctionDef() | m.Lambda()) for r in m.findall(d, m.Return())}
    found = [r for r in m.findall(fn.body, m.Return()) if id(r) not in nested and isinstance(r, cst.Return)
             and r.value is not None and not (isinstance(r.value, cst.Name) and r.value.value == "None")]
    return found[-1] if found else None


def _rebinds_local(fn: cst.FunctionDef, name: str) -> bool:
    return bool(m.findall(fn.body, m.AssignTarget(target=m.Name(name))))


def _may_hold_instances(index: index_mod.ProjectIndex, facts: index_mod.ModuleFacts) -> bool:
    """Can the module's own code know a name for an ORM instance, as :meth:`_orm_names` finds
    them (and :meth:`_target_models`, for a function of this module a thread runs)? Each way
    names a model here (:func:`~.helpers.names_a_model`): a load (`session.get(User, 1)`), a
    constructor (`User(...)`), an annotation, or a related object of one of those; or it comes
    through a `with` scope of the project's (`bound_through`)."""
    return names_a_model(index, facts) or calls_a_scope(index, facts)
