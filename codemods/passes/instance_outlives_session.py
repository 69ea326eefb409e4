"""SQF007 instance-outlives-session: ORM instances and sessions kept beyond one request (report only)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..lazy import lazy
from .base import Example, FileContext, Finding, Pass, Valid
from .examples import SYNC_DB
from .flow import binding_of, bound_through, events, functions, model_for, sessions, shape, with_scopes
from .helpers import dotted

if TYPE_CHECKING:
    import libcst as cst
    import libcst.matchers as m
else:
    cst = lazy("libcst")
    m = lazy("libcst.matchers")

_CONTAINERS = {"dict", "list", "set", "OrderedDict", "defaultdict", "WeakValueDictionary", "TTLCache", "LRUCache"}
_CACHES = {"functools.lru_cache", "functools.cache", "cachetools.cached", "async_lru.alru_cache",
           "cachetools.func.lru_cache", "cachetools.func.ttl_cache"}
_STORE_METHODS = {"append", "add", "setdefault", "insert", "appendleft"}
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
      `CACHE.append(obj)`) that the module reads back;
    - a function decorated with `lru_cache`/`cache` that returns ORM instances;
    - a session created at module level (`session = SessionLocal()`) and used by functions:
      every request or thread shares it;
    - one session passed to several coroutines run together by `asyncio.gather`.

    ## Why is this bad?
    An instance belongs to one session. Kept beyond it, it becomes detached; if its
    transaction was rolled back it is transient again, with a primary key that does not
    exist in the database. A later request that takes it from the cache and updates it
    without `add()` commits nothing (the change is silently lost), and an insert that refers
    to it fails with a foreign-key error. A rollback in one request expires or expunges the
    objects of all the others sharing the session. An `AsyncSession` is not safe for
    concurrent tasks. (This is not an engine-level identity map shared by every session:
    there is none; the identity map belongs to one session.)

    ## The fix
    Cache ids or plain data, not instances, and reload with `session.get(Model, id)` in the
    session that uses them (or `obj = session.merge(obj)`); open one session per request or
    task (a FastAPI `get_db` dependency, `async with maker() as session:` per task).
    `expunge_all()` after a rollback (SQF004) does not repair an instance kept outside the
    session.

    ## Fix safety
    No automatic fix: what to cache instead, and where sessions begin and end, is a design
    decision.
    """
    example_project = {"app/__init__.py": "", "app/db.py": SYNC_DB}
    examples = (
        Example(
            title="a module-level cache of instances",
            before='''
            from sqlalchemy.orm import Session
            from app.db import Message

            _messages: dict[int, Message] = {}


            def get_or_create(session: Session, message_id: int) -> Message:
                if message_id in _messages:
                    return _messages[message_id]
                message = Message(id=message_id, content="")
                session.add(message)
                _messages[message_id] = message
                return message
            ''',
        ),
        Example(
            title="an lru_cache that returns instances",
            before='''
            from functools import lru_cache
            from app.db import SessionLocal, User


            @lru_cache(maxsize=128)
            def load_user(user_id: int) -> User:
                with SessionLocal() as session:
                    return session.get(User, user_id)
            ''',
        ),
        Example(
            title="a session shared by every request",
            before='''
            from app.db import SessionLocal, User

            session = SessionLocal()


            def handler(user_id: int) -> str:
                return session.get(User, user_id).name
            ''',
        ),
        Example(
            title="one AsyncSession for concurrent tasks",
            before='''
            import asyncio
            from sqlalchemy.ext.asyncio import AsyncSession


            async def refresh_all(session: AsyncSession, ids: list[int]) -> None:
                await asyncio.gather(load(session, ids[0]), load(session, ids[1]))
            ''',
        ),
    )
    valid = (
        Valid(
            '''
            from sqlalchemy.orm import Session
            from app.db import Message

            _message_ids: dict[str, int] = {}


            def remember(session: Session, key: str, content: str) -> int:
                message = Message(content=content)
                session.add(message)
                session.flush()
                _message_ids[key] = message.id
                return message.id
            ''',
            "a cache of ids, not instances",
        ),
        Valid(
            '''
            from app.db import Message, SessionLocal


            def batch(contents: list[str]) -> None:
                pending = []
                with SessionLocal() as session:
                    for content in contents:
                        message = Message(content=content)
                        pending.append(message)
                    session.add_all(pending)
                    session.commit()
            ''',
            "a local list inside one session scope",
        ),
        Valid(
            '''
            from app.db import SessionLocal


            def handler(user_id: int):
                with SessionLocal() as session:
                    return session.get(object, user_id) is not None
            ''',
            "one session per request",
        ),
    )

    @classmethod
    def wants(cls, index, facts) -> bool:
        if facts is None or "gather" in facts.all_methods | facts.all_called:
            return True
        for fn in facts.functions.values():  # a function storing into a module/class container
            for holder in fn.stores:
                head, _, attr = holder.partition(".")
                if holder in facts.containers or (head in ("self", "cls") and any(
                        c.endswith("." + attr) for c in facts.containers)):
                    return True
        if any(d in _CACHES for fn in facts.functions.values() for d in fn.decorators):
            return True
        return any(index.opens_session(f"{facts.module}.{name}") is None and f.via is not None
                   and index.opens_session(f.via) is not None for name, f in facts.factories.items())

    def run(self, ctx: FileContext) -> Iterator[Finding]:
        module_containers = self._module_containers(ctx.module)
        module_sessions = self._module_sessions(ctx)
        for qualname, fn in functions(ctx.module, ctx):
            facts = ctx.function_facts(qualname) if not ctx.round else None
            found = shape(ctx, fn, qualname)
            class_containers = self._class_containers(ctx.module, qualname)
            if facts is None or any(self._holder_matches(h, module_containers | class_containers) for h in facts.stores):
                yield from self._stores(ctx, fn, qualname, module_containers, class_containers)
            yield from self._cached_function(ctx, fn, qualname)
            if "gather" in found.methods or "gather" in found.calls:
                yield from self._gather(ctx, fn, qualname)
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

    def _stores(self, ctx: FileContext, fn: cst.FunctionDef, qualname: str, module_containers: set[str],
                class_containers: set[str]) -> Iterator[Finding]:
        containers = module_containers | class_containers
        if not containers:
            return
        containers -= self._locals(fn)
        stores: list[tuple[cst.CSTNode, str, str]] = []
        for assign in m.findall(fn.body, m.Assign(targets=[m.AssignTarget(target=m.Subscript())], value=m.Name())):
            holder = dotted(assign.targets[0].target.value)  # type: ignore[attr-defined]
            if holder in containers:
                stores.append((assign, holder, assign.value.value))  # type: ignore[attr-defined]
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
            if X not in instances or not self._read_back(ctx.module, holder):
                continue
            kind = "class-level" if holder.count(".") else "module-level"
            yield self.finding(node, (
                f"ORM instance `{X}` ({instances[X]}) is stored in {kind} `{holder}`, which outlives its "
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
        refs = sessions(ctx, fn, qualname, evs)
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
            if e.kind == "with":
                scopes += with_scopes(ctx, e.node)  # type: ignore[arg-type]
            if e.kind != "assign" or e.name is None:
                continue
            binding = binding_of(ctx, e.value, refs)
            if binding.kind in ("new", "loaded") and binding.model and model_for(ctx, binding.model) is not None:
                out[e.name] = binding.model
                continue
            for name, scope in scopes:
                bound = bound_through(ctx, e, name, scope)
                if bound is not None:
                    out[e.name] = bound.model.name
        return out

    # lru_cache ----------------------------------------------------------------
    def _cached_function(self, ctx: FileContext, fn: cst.FunctionDef, qualname: str) -> Iterator[Finding]:
        index = ctx.index
        facts = ctx.function_facts(qualname)
        if facts is None or not any(d in _CACHES for d in facts.decorators):
            return
        returned = index.returned(ctx.qualify(qualname))
        if returned is None:
            return
        model = returned.model
        yield self.finding(fn.name, (
            f"`{fn.name.value}` is cached ({', '.join(d.rsplit('.', 1)[-1] for d in facts.decorators if d in _CACHES)}) "
            f"and returns {model.name} instances: every caller gets the same instance, detached from its "
            f"session and shared between requests; {_FIX}"))

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


def _rebinds_local(fn: cst.FunctionDef, name: str) -> bool:
    return bool(m.findall(fn.body, m.AssignTarget(target=m.Name(name))))
