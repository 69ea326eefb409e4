"""SQF003 hoist-out-of-scope: capture attributes inside the session scope that loaded the object."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..lazy import lazy
from .base import Edit, Example, FileContext, Finding, Fix, Pass, Valid
from .examples import BOT
from .flow import (
    BindingKind,
    Bound,
    Event,
    EventKind,
    binding_of,
    bound_through,
    capture_source,
    events,
    functions,
    loaded_eagerly,
    mentions,
    model_for,
    none_guard,
    reachable_only_through,
    session_scoped,
    unique_name,
    with_end,
    with_scopes,
)
from .flow import (
    eager_in as eager_of,
)
from .helpers import calls_a_scope, dotted, to_name

if TYPE_CHECKING:
    import libcst as cst

    from .. import index as index_mod
    from ..index import Scope
else:
    cst = lazy("libcst")
    index_mod = lazy("codemods.index")


class HoistOutOfScope(Pass):
    code = "SQF003"
    supersedes = ("SQF005",)  # an object only read after its scope: capturing the values is the fix
    name = "hoist-out-of-scope"
    summary = "an attribute of an ORM object read after the session scope that loaded it closed"
    fix_safety = "safe"
    triggers = (b"with",)
    explanation = """
    ## What it does
    Finds a name bound inside a session scope (`async with get_user_service() as service:`,
    `with Session(engine) as s:`, any context manager the index knows to yield a session or a
    service built around one) from a call through that scope, whose attributes are read
    after the scope closed: a column when the scope commits (on exit, or in the block) under a
    factory that expires on commit, or a relationship in any case.

    ## Why is this bad?
    When the scope closes, the session detaches the object. A column expired by the commit
    cannot be reloaded any more: `DetachedInstanceError: Instance <User> is not bound to a
    Session; attribute refresh operation cannot proceed`. A lazy relationship fails the same
    way (`lazy load operation of attribute 'balance' cannot proceed`), whatever the factory.

    ## The fix
    Capture the value inside the scope, `user_id = user.id`, and use `user_id` after it. The
    capture goes at the one point where the value is final and still loadable: after the last
    statement that assigns or may modify the object in the scope (a call that receives it
    counts), after a guard that returns or raises when it is None, and before any commit
    visible in the scope (in async code, reading after that commit raises MissingGreenlet).
    Several attributes get one capture each, in the order they are read.

    Reported without a fix: the object may be None at the capture point and the later reads
    are guarded (`if user:`); the object is changed or passed on after the scope; the scope
    is in a loop; the read is a relationship (load it eagerly with `selectinload(User.balance)`
    on the query that loads it, or have the service return the value itself).

    Left alone: plain data (ints, strings, dicts, DTOs returned by the service), captures that
    already exist, context managers that are not sessions (`open()`, locks, HTTP clients),
    and column reads that are safe by configuration (`expire_on_commit=False`, or no commit)
    or by a deliberate snapshot: an object expunged in the block before anything expired it
    (`if user is not None: session.expunge(user)`) keeps its loaded columns, and the exit's
    commit or rollback no longer reaches it.

    ## Fix safety
    Safe: the captured value is the one the object held when the scope closed.
    """
    example_project = {"bot/__init__.py": "", "bot/services.py": BOT}
    examples = (
        Example(
            title="user.id read in the block after the scope that loaded the user",
            before='''
            from bot.services import get_avatar_service, get_user_service


            async def show_avatars(telegram_id: int):
                async with get_user_service() as user_service:
                    user = await user_service.get_by_telegram_id(telegram_id)
                    if not user:
                        return None
                    await user_service.register_visit(user)

                async with get_avatar_service() as avatar_service:
                    avatars = await avatar_service.list(user.id)
                return user.name, user.visits, avatars
            ''',
            after='''
            from bot.services import get_avatar_service, get_user_service


            async def show_avatars(telegram_id: int):
                async with get_user_service() as user_service:
                    user = await user_service.get_by_telegram_id(telegram_id)
                    if not user:
                        return None
                    await user_service.register_visit(user)
                    user_id = user.id
                    user_name = user.name
                    user_visits = user.visits

                async with get_avatar_service() as avatar_service:
                    avatars = await avatar_service.list(user_id)
                return user_name, user_visits, avatars
            ''',
        ),
        Example(
            title="a read through getattr with a default: the default does not catch the error",
            before='''
            from bot.services import get_user_service


            async def greeting(telegram_id: int) -> str:
                async with get_user_service() as user_service:
                    user = await user_service.get_by_telegram_id(telegram_id)
                    if user is None:
                        return "hi"
                return f"hi {getattr(user, 'name', 'friend')}"
            ''',
            after='''
            from bot.services import get_user_service


            async def greeting(telegram_id: int) -> str:
                async with get_user_service() as user_service:
                    user = await user_service.get_by_telegram_id(telegram_id)
                    if user is None:
                        return "hi"
                    user_name = getattr(user, 'name', 'friend')
                return f"hi {user_name}"
            ''',
        ),
        Example(
            title="a lazy relationship after the scope: reported",
            before='''
            from bot.services import get_user_service


            async def balance_of(user_id: int):
                async with get_user_service() as user_service:
                    user = await user_service.get(user_id)
                return user.balance
            ''',
        ),
        Example(
            title="a list loaded in the scope, its elements read in a loop after it: reported",
            before='''
            from sqlalchemy import select

            from bot.services import User, get_avatar_service


            async def rename_all(prefix: str) -> list[str]:
                async with get_avatar_service() as session:
                    users = (await session.scalars(select(User))).all()
                    for user in users:
                        user.name = prefix + user.name
                    await session.commit()
                names = []
                for user in users:
                    names.append(user.name)
                return names
            ''',
        ),
        Example(
            title="expunged only after the commit expired it: detached expired, reported",
            before='''
            from bot.services import User, get_avatar_service


            async def rename(user_id: int, name: str) -> str:
                async with get_avatar_service() as session:
                    user = await session.get(User, user_id)
                    user.name = name
                    await session.commit()
                    session.expunge(user)
                return user.name
            ''',
        ),
        Example(
            title="may be None, and the later reads are guarded: reported",
            before='''
            from bot.services import get_user_service


            async def greet(telegram_id: int) -> str:
                async with get_user_service() as user_service:
                    user = await user_service.get_by_telegram_id(telegram_id)
                if user:
                    return f"hi {user.name}"
                return "who?"
            ''',
        ),
    )
    valid = (
        Valid(
            '''
            from sqlalchemy import create_engine
            from sqlalchemy.orm import Session

            from bot.services import User


            def balance_of(user_id: int):
                with Session(create_engine("sqlite://")) as session:
                    user = session.get(User, user_id)
                    if user.balance is None:
                        return None
                return user.balance
            ''',
            "sync: the relationship was read (so loaded) in the block, after anything that expired it",
        ),
        Valid(
            '''
            from bot.services import get_quiet_user_service


            async def name_of(user_id: int) -> str:
                async with get_quiet_user_service() as user_service:
                    user = await user_service.get(user_id)
                return user.name
            ''',
            "a factory built with expire_on_commit=False: loaded columns stay readable",
        ),
        Valid(
            '''
            from bot.services import get_user_service


            async def name_of(telegram_id: int) -> str:
                async with get_user_service() as user_service:
                    data = await user_service.summary(telegram_id)
                return data["name"]
            ''',
            "plain data returned by the service",
        ),
        Valid(
            '''
            from bot.services import get_user_service


            async def name_of(user_id: int) -> str:
                async with get_user_service() as user_service:
                    user = await user_service.get(user_id)
                    user_name = user.name
                return user_name
            ''',
            "the capture is already there",
        ),
        Valid(
            '''
            from sqlalchemy import select

            from bot.services import User, get_avatar_service


            async def names() -> list[str]:
                async with get_avatar_service() as session:
                    users = (await session.scalars(select(User))).all()
                out = []
                for user in users:
                    out.append(user.name)
                return out
            ''',
            "a list loaded and never committed: its columns stay loaded after the scope closes",
        ),
        Valid(
            '''
            import httpx


            async def fetch(url: str) -> int:
                async with httpx.AsyncClient() as client:
                    response = await client.get(url)
                return response.status_code
            ''',
            "a context manager that is not a session",
        ),
        Valid(
            '''
            from bot.services import User, get_avatar_service


            async def rename(user_id: int, name: str) -> str:
                async with get_avatar_service() as session:
                    user = await session.get(User, user_id)
                    if user is not None:
                        session.expunge(user)
                    session.add(User(name=name))
                    await session.commit()
                if user is None:
                    return name
                return user.name
            ''',
            "detached in the block before anything expired it (a deliberate snapshot): its loaded "
            "columns stay readable, and the commit no longer reaches it",
        ),
        Valid(
            '''
            def first_line(path: str) -> str:
                with open(path) as fh:
                    line = fh.readline()
                return line.strip()
            ''',
            "a file",
        ),
    )

    @classmethod
    def wants(cls, index, facts) -> bool:
        return facts is None or calls_a_scope(index, facts)

    def run(self, ctx: FileContext) -> Iterator[Finding]:
        for qualname, fn in functions(ctx.module, ctx):
            if not session_scoped(ctx, fn, qualname):
                continue
            evs = events(fn, ctx)
            for w in evs:
                if w.kind != EventKind.WITH:
                    continue
                for name, scope in with_scopes(ctx, w.node):  # type: ignore[arg-type]
                    yield from self._scope(ctx, fn, evs, w, name, scope)

    def _scope(self, ctx: FileContext, fn: cst.FunctionDef, evs: list[Event], w: Event, N: str,
               scope: Scope) -> Iterator[Finding]:
        end = with_end(evs, w.node)
        if not isinstance(w.node, cst.With) or not isinstance(w.node.body, cst.IndentedBlock):
            return
        region = [e for e in evs if w.index < e.index < end]
        seen: set[str] = set()
        for ev in reversed(region):  # the last binding of each name in the scope
            if ev.kind != EventKind.ASSIGN or ev.name is None or ev.name in seen:
                continue
            seen.add(ev.name)
            bound = bound_through(ctx, ev, N, scope)
            if bound is not None:
                for finding in self._check(ctx, fn, evs, w, end, region, N, scope, bound):
                    finding.subject = bound.event.name
                    yield finding
                continue
            listed = _list_through(ctx, ev, N, scope, region)
            if listed is None:
                continue
            for loop in evs[end + 1:]:  # `for x in rows:` after the scope: each x is one of them
                if loop.kind == EventKind.ASSIGN and loop.name == ev.name:
                    break
                if loop.kind == EventKind.ASSIGN and loop.value is None and loop.args[:1] == (ev.name,) and loop.name:
                    element = Bound(loop, listed.model, False, listed.eager)
                    for finding in self._check(ctx, fn, evs, w, end, region, N, scope, element, of=ev.name):
                        finding.subject = ev.name
                        yield finding

    def _check(self, ctx, fn, evs, w: Event, end: int, region: list[Event], N: str, scope: Scope,
               bound: Bound, of: str | None = None) -> Iterator[Finding]:
        """Reads of ``X`` after the scope; ``of``: X is the loop variable over that list."""
        X = bound.event.name
        if X is None:  # bound through an assignment, which names its target
            return
        model = bound.model
        loaded_at = bound.event.index if of is None else max(
            e.index for e in region if e.kind == EventKind.ASSIGN and e.name == of)
        after: list[Event] = []
        for e in evs[(bound.event.index if of else end) + 1:]:
            if e.kind == EventKind.ASSIGN and e.name == X:
                break
            after.append(e)
        reads = [e for e in after if e.kind == EventKind.READ and e.owner == X and reachable_only_through(e, evs[end])]
        if not reads:
            return
        commits_in_block = [e for e in region if e.kind == EventKind.CALL and e.name == "commit"
                            and (e.owner == N or (e.owner or "").startswith(N + "."))
                            and e.index > loaded_at]
        expired = scope.expires_on_exit or (scope.expire_on_commit and bool(commits_in_block))
        if expired and of is None and _expunged_loaded(region, w, N, X, loaded_at):
            expired = False  # detached in the block with its columns loaded: the exit cannot expire it
        # a relationship read in the block after its last expiry loaded it (sync code: the read loads)
        since = max([loaded_at, *(e.index for e in commits_in_block)]) if scope.expire_on_commit else loaded_at
        loaded_here = set() if scope.expires_on_exit else \
            {e.name for e in region if e.kind == EventKind.READ and e.owner == X and e.index > since}
        rel_reads = [r for r in reads if r.name in model.relationships and not loaded_eagerly(model, r.name, bound.eager)
                     and r.name not in loaded_here]
        col_reads = [r for r in reads if r.name not in model.relationships] if expired else []
        if rel_reads:
            r = rel_reads[0]
            yield self.finding(r.node, (
                f"`{X}.{r.name}` is a relationship read after the `{N}` scope closed: the lazy load "
                f"raises DetachedInstanceError; load it eagerly (selectinload({model.name}.{r.name})) "
                f"where `{X}` is loaded, or ask the service for the value inside the scope"))
        if not col_reads:
            return
        attrs = [a for a in dict.fromkeys(r.name for r in col_reads) if a is not None]
        listed = ", ".join(f"`{X}.{a}`" for a in attrs)
        why = ("its session rolled back on exit and expired it" if scope.rolls_back_on_exit
               else "its session committed on exit and expired it" if scope.commits_on_exit
               else "a commit in the block expired it")
        message = (f"{listed} read after the `{N}` scope closed, and {why}: DetachedInstanceError; "
                   f"capture the value{'s' if len(attrs) > 1 else ''} inside the scope")
        if of is not None:
            yield self.finding(col_reads[0].node, (
                f"{listed} read after the `{N}` scope closed, on an element of `{of}` loaded in it, and "
                f"{why}: DetachedInstanceError; build the values the loop needs (tuples, dicts) inside "
                f"the scope (report only: no automatic fix for a list)"))
            return
        reason = self._no_fix_reason(fn, evs, w, end, region, after, X, bound, commits_in_block)
        if reason is not None:
            yield self.finding(col_reads[0].node, f"{message} ({reason}: no automatic fix)")
            return
        yield self.finding(col_reads[0].node, message, self._fix(fn, w, region, X, bound, col_reads, attrs))

    def _no_fix_reason(self, fn, evs, w: Event, end: int, region, after, X: str, bound: Bound,
                       commits_in_block: list[Event]) -> str | None:
        if any(e.kind == EventKind.LOOP and any(p is e.node for p in w.path) for e in evs[: w.index]):
            return "the scope is in a loop"
        if any((e.kind in (EventKind.WRITE, EventKind.METHOD) and e.owner == X) or (e.kind in (EventKind.USE, EventKind.ESCAPE, EventKind.NESTED) and e.name == X)
               for e in after):
            return f"`{X}` is changed or passed on after the scope"
        top = w.node.body.body  # type: ignore[attr-defined]
        point = self._capture_point(region, X, top)
        if point is None:
            return "no statement of the scope's block to put the capture after"
        guarded_in_scope = any(e.kind == EventKind.IF and any(s is e.node for s in top) and none_guard(e.node, X)  # type: ignore[arg-type]
                               for e in region)
        if bound.optional and not guarded_in_scope:
            if any(e.kind == EventKind.IF and mentions(e.node.test, X) for e in after):  # type: ignore[attr-defined]
                return f"`{X}` may be None inside the scope and the later reads are guarded"
        position = _position(top, point)
        if fn.asynchronous is not None and any(_position(top, _top(c, top)) <= position for c in commits_in_block):
            return "a commit in the scope comes before the value is final; reading after it needs a refresh"
        return None

    @staticmethod
    def _capture_point(region: list[Event], X: str, top) -> cst.BaseStatement | None:
        """The last statement of the scope's block that binds, guards or may modify X."""
        last = None
        for e in region:
            relevant = ((e.kind == EventKind.ASSIGN and e.name == X) or (e.kind in (EventKind.WRITE, EventKind.METHOD) and e.owner == X)
                        or (e.kind == EventKind.USE and e.name == X) or (e.kind == EventKind.IF and none_guard(e.node, X)))  # type: ignore[arg-type]
            if relevant:
                stmt = _top(e, top)
                if stmt is not None:
                    last = stmt
        return last

    def _fix(self, fn, w: Event, region, X: str, bound: Bound, reads: list[Event], attrs: list[str]) -> Fix | None:
        top = w.node.body.body  # type: ignore[attr-defined]
        point = self._capture_point(region, X, top)
        if point is None:
            return None
        taken: set[str] = set()
        locals_: dict[str, str] = {}
        for a in attrs:
            locals_[a] = unique_name(fn, f"{X}_{a}", taken)
            taken.add(locals_[a])
        captures = [cst.parse_statement(f"{local} = {capture_source(X, a, reads)}") for a, local in locals_.items()]
        edits = [Edit(point, after=captures)]
        for r in reads:
            assert r.name is not None  # a read event names its attribute
            edits.append(Edit(r.node, replace=to_name(locals_[r.name])))
        return Fix(edits)


def _list_through(ctx: FileContext, ev: Event, N: str, scope: Scope, region: list[Event]) -> Bound | None:
    """A list of ORM instances loaded through the scope's session: ``N.scalars(select(M)).all()``,
    ``(await N.execute(select(M))).scalars().all()``, ``result.scalars().all()`` where
    ``result = await N.execute(select(M))`` in the scope, each maybe wrapped in ``list(...)``;
    or a project function given the scope's name that returns a list of them."""
    value = ev.value
    while isinstance(value, cst.Await):
        value = value.expression
    if isinstance(value, cst.Call) and dotted(value.func) in ("list", "tuple", "sorted") and len(value.args) == 1:
        value = value.args[0].value
    if not isinstance(value, cst.Call):
        return None
    if scope.yields == "session":
        binding = binding_of(ctx, value, {N: None})  # type: ignore[dict-item]
        model = model_for(ctx, binding.model) if binding.kind == BindingKind.LIST else None
        if model is not None:
            return Bound(ev, model, False, eager_of(value))
        chain: list[str] = []
        current: cst.BaseExpression = value
        while isinstance(current, cst.Call) and isinstance(current.func, cst.Attribute):
            chain.insert(0, current.func.attr.value)
            current = current.func.value
        if isinstance(current, cst.Name) and chain[:1] == ["scalars"] and chain[1:] in ([], ["all"]):
            source = next((e for e in reversed(region) if e.kind == EventKind.ASSIGN and e.name == current.value
                           and e.index < ev.index), None)
            if source is not None and source.value is not None:
                inner = binding_of(ctx, source.value, {N: None})  # type: ignore[dict-item]
                model = model_for(ctx, inner.model) if inner.kind == BindingKind.LOADED else None
                if model is not None:
                    return Bound(ev, model, False, eager_of(source.value))
    if any(isinstance(a.value, cst.Name) and a.value.value == N for a in value.args):
        returned = ctx.index.returned(ctx.qualify(dotted(value.func)))
        if returned is not None and returned.shape is index_mod.Stage.LIST:
            return Bound(ev, returned.model, False, frozenset(returned.function.eager))
    return None


def _top(e: Event, top) -> cst.BaseStatement | None:
    """The statement of the scope's own block that holds event ``e``."""
    ids = {id(s) for s in top}
    for node in e.path:
        if id(node) in ids:
            return node  # type: ignore[return-value]
    if id(e.node) in ids:
        return e.node  # type: ignore[return-value]
    return None


def _position(top, stmt) -> int:
    return next(i for i, s in enumerate(top) if s is stmt)


def _expunged_loaded(region: list[Event], w: Event, N: str, X: str, loaded_at: int) -> bool:
    """Is ``X`` expunged from ``N`` in the block after it was loaded, with no commit or
    rollback of ``N`` in between, on every way to the reads (the expunge under no condition
    but ``X`` itself: `if X is not None: N.expunge(X)`)? A detached instance keeps the columns
    it had loaded, and the exit's commit or rollback no longer reaches it."""
    for e in region:
        if e.index <= loaded_at:
            continue
        if e.kind == EventKind.CALL and e.owner == N and e.name in ("commit", "rollback", "expire", "expire_all"):
            return False
        if e.kind == EventKind.CALL and e.owner == N and e.name == "expunge" and e.args[:1] == (X,):
            inner = e.path[next((i for i, p in enumerate(e.path) if p is w.node), len(e.path)):]
            return all(not isinstance(p, cst.If) or mentions(p.test, X) for p in inner)
    return False
