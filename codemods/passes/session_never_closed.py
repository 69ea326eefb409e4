"""SQF011 session-never-closed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING  # noqa: I001

from ..lazy import lazy
from ..names import ADVANCE
from . import match as m
from . import never_closed_examples_w3 as w3
from .base import Edit, Example, FileContext, Finding, Fix, Pass, Valid
from .examples import BOT, SYNC_DB
from .flow import Event, EventKind, events, functions, handler_block, in_finally
from .helpers import dotted
from .holders import held_in, holder_of, unowned_holder, unowned_message
from .inline_sessions import (
    advanced_provider,
    dropped_providers,
    inline_sessions,
    on_a_connection,
    opens_new,
    without_engine,
)
from .scripts import is_command, runs_once

if TYPE_CHECKING:
    import libcst as cst

    from .. import index as index_mod
else:
    cst = lazy("libcst")
    index_mod = lazy("codemods.index")


# Calls that keep what they are given (a container, a task, a callback, an exit stack).
_KEEPERS = {
    "append", "appendleft", "add", "extend", "insert", "put", "put_nowait", "setdefault", "update",
    "register", "partial", "setattr", "create_task", "ensure_future", "submit", "run_in_executor",
    "enter_context", "enter_async_context", "push", "callback", "push_async_callback", "set",
    "closing", "aclosing", "contextmanager", "asynccontextmanager", "cast",
}
# Decorators of command-line commands: the function runs once per process.
# Calls that only look at their arguments (what the wrap-in-`with` fix may let values reach).
_LOOKERS = {
    "print", "len", "str", "int", "float", "bool", "repr", "format", "sum", "min", "max", "sorted",
    "list", "tuple", "set", "dict", "enumerate", "zip", "range", "isinstance", "any", "all",
}



class Outcome(Enum):
    """What happens to a session a function creates."""

    CLOSED = "closed"  # close() in finally, or a with block
    HANDED_OVER = "handed over"  # returned, yielded, stored, kept by a callee, used by a closure
    CLOSED_ON_SUCCESS = "closed on success"  # close() outside finally: not on the exception path
    NEVER_CLOSED = "never closed"


@dataclass
class _Created:
    event: Event  # the assignment `S = factory(...)`
    name: str
    call: cst.Call
    factory: str  # as written
    is_async: bool


# Session helpers of a project that builds its factory in a function returning a tuple.
_SETUP = '''
from sqlalchemy import create_engine
from sqlalchemy.orm import scoped_session, sessionmaker


def init(url: str):
    engine = create_engine(url)
    maker = sessionmaker(bind=engine)
    return maker, engine


SessionMaker, engine = init("sqlite://")
Registry = scoped_session(SessionMaker)


def create_session():
    return SessionMaker()


def current_session():
    return Registry()
'''


class SessionNeverClosed(Pass):
    code = "SQF011"
    name = "session-never-closed"
    summary = "a session created in a function and not closed on every path, nor handed to an owner"
    fix_safety = "safe"
    triggers = (b"= ", b").")  # an assignment; a call's result used at once (`Maker().query(...)`)
    explanation = """
    ## What it does
    Reports `session = SessionLocal()`, `session = Session(engine)` or `session = maker()`
    (any factory or session class the project index knows) assigned in a function when the
    session is neither closed on every path (`close()` in a `finally`, or a `with` block)
    nor handed to something that owns it: returned, yielded (a FastAPI/generator provider),
    stored on an attribute or in a container, passed to a constructor or a call that keeps
    it (`stack.enter_context(...)`, `functools.partial(...)`), or used by a nested function.

    A session kept in a request's holder (`context["db_session"] = SessionLocal()` in a
    middleware, `request.state.db = session`, Flask's `g.db = SessionLocal()`) is owned only
    when some code of the project reads a value back under that key or attribute name and
    closes it (`request.state.db.close()` in a `finally`, a teardown hook that pops `g.db`
    and closes it, `with ctx["db"]:`, a `close_session(g.db)` helper, an object whose own
    `close()` closes `self.session`). When none does, it is reported where it is stored.
    The holder must belong to the request: a parameter of the function (not `self`) or
    Flask's `g`, neither returned by the function nor handed to a call other than a
    middleware's `next()`/`call_next()`.

    Also reported: a session made when the caller gives none (`if session is None: session =
    SessionLocal()`, `session = session or SessionLocal()`) and closed on no path; a session
    made and used in one expression that no name holds (`SessionLocal().query(User).all()`,
    `store.session_factory().execute(...)` where a property hands out the factory the class
    keeps), which nothing can close; and a session taken out of a project provider generator
    that no name holds (`db = next(get_db())`, `await anext(provide_session())`, where the
    provider closes the session after its `yield`): the generator is finalized at once, so
    its cleanup closes the session before it is used (a plain generator) or at the caller's
    next `await` (an async one), and the use that follows checks out a connection that
    nothing returns. These are reported without a fix.

    ## Why is this bad?
    A session holds a pooled connection from its first query until its transaction ends
    (commit, rollback) or it is closed. A session that is never closed after a read, or that
    an exception leaves between its first query and `close()`, keeps that connection checked
    out until the garbage collector happens to collect it (a session is part of a reference
    cycle, so that is not when the function returns). A few such calls in a row exhaust the
    pool: the next checkout waits and raises `TimeoutError: QueuePool limit of size 5
    overflow 10 reached`. An `AsyncSession` left open also leaves its connection to be
    cleaned up without an event loop.

    ## The fix
    `with SessionLocal() as session:` (`async with` for an `AsyncSession`) around the uses.
    sqla-fix writes it only where that is mechanical and provably changes nothing but when
    the session is closed: the session is a plain local, created by a statement at the top
    level of the function body, used only through its own methods by the statements that
    follow it in that block, never closed by hand, and nothing the function loads can
    outlive it (no return value, no generator, no stores outside the function's own new
    locals, no calls that could keep a loaded object, no nested functions). The `with` then
    spans the rest of the body. Elsewhere the finding is reported without a fix: use `with`,
    or `try: ... finally: session.close()`.

    Left alone: providers that yield the session (and close it in `finally`); scoped
    registries (`scoped_session`, Flask-SQLAlchemy's `db.session`: `remove()` handles them);
    sessions handed to an owner (a holder some code closes, or one returned or handed on); sessions on a connection the caller owns
    (`Session(bind=op.get_bind())` in a migration); code that runs once per process:
    command-line commands (`@cli.command()`), a script's `if __name__ == "__main__":` block
    and the module's other statements (a module-level session is SQF007's), and the functions
    a script (a module no other imports, starting no thread; with a `__main__` block, or
    whose own statements call its functions and none of whose functions is decorated or
    handed on as a value) calls
    only from there, outside any loop, directly or through its `main()`, none of them decorated
    (a command-line entry point aside); a session a project helper
    keeps in a module- or class-level container as it hands it out (`_opened.add(session)`,
    for code that closes them all), which that registry owns; a session taken
    out of a provider generator only for its engine (`Session(next(get_db()).bind)`), or by
    `next()` into a name the function closes itself.

    ## Fix safety
    Safe where it is offered: the session is closed when the function ends instead of when
    the garbage collector finds it, and the conditions above mean no object it loaded is
    used after that, so nothing can notice the difference except the pool.
    """
    example_project = {"app/__init__.py": "", "app/db.py": SYNC_DB, "bot/__init__.py": "", "bot/services.py": BOT,
                       "app/setup.py": _SETUP, **w3.PROJECT}
    examples = (
        Example(
            title="a read that leaves its connection checked out",
            before='''
            from sqlalchemy import func, select
            from app.db import SessionLocal, User


            def report() -> None:
                session = SessionLocal()
                total = session.scalar(select(func.count()).select_from(User))
                print(f"{total} users")
            ''',
            after='''
            from sqlalchemy import func, select
            from app.db import SessionLocal, User


            def report() -> None:
                with SessionLocal() as session:
                    total = session.scalar(select(func.count()).select_from(User))
                    print(f"{total} users")
            ''',
        ),
        Example(
            title="async",
            before='''
            from bot.services import User, session_pool


            async def visit(user_id: int) -> None:
                session = session_pool()
                user = await session.get(User, user_id)
                user.visits += 1
                await session.commit()
            ''',
            after='''
            from bot.services import User, session_pool


            async def visit(user_id: int) -> None:
                async with session_pool() as session:
                    user = await session.get(User, user_id)
                    user.visits += 1
                    await session.commit()
            ''',
        ),
        Example(
            title="a project helper returning a new session, its factory unpacked from a setup function's tuple",
            before='''
            from sqlalchemy import text
            from app.setup import create_session


            def check_connection() -> None:
                session = create_session()
                session.execute(text("select 1"))
            ''',
            after='''
            from sqlalchemy import text
            from app.setup import create_session


            def check_connection() -> None:
                with create_session() as session:
                    session.execute(text("select 1"))
            ''',
        ),
        Example(
            title="closed, but not when the query raises",
            before='''
            from sqlalchemy.orm import Session
            from app.db import User, engine


            def names() -> list[str]:
                session = Session(engine)
                names = [u.name for u in session.query(User)]
                session.close()
                return names
            ''',
        ),
        Example(
            title="a factory built and called at once, handed to a job through **kwargs, closed outside finally",
            before='''
            from sqlalchemy.orm import sessionmaker
            from app.db import engine


            def for_each_schema(job, schemas, **kwargs) -> None:
                for schema in schemas:
                    schema_engine = engine.execution_options(schema_translate_map={None: schema})
                    session = sessionmaker(bind=schema_engine)()
                    kwargs["db_session"] = session
                    job(**kwargs)
                    session.close()
            ''',
        ),
        Example(
            title="a middleware keeps a new session in the request's context, and nothing closes it",
            before='''
            from app.db import SessionLocal


            def db_middleware(context, next) -> None:
                context["db_session"] = SessionLocal()
                next()
            ''',
        ),
        Example(
            title="opened when the context has none, else read back from it: either way nothing closes it",
            before='''
            from app.db import SessionLocal


            def config_middleware(context, next) -> None:
                if not context.get("db_session"):
                    db_session = SessionLocal()
                    context["db_session"] = db_session
                else:
                    db_session = context["db_session"]
                context["config"] = db_session.get(Config, 1)
                next()
            ''',
        ),
        Example(
            title="kept on the request's state by an HTTP middleware that never closes it",
            before='''
            from app.db import SessionLocal


            async def db_session_middleware(request, call_next):
                session = SessionLocal()
                request.state.db = session
                return await call_next(request)
            ''',
        ),
        Example(
            title="objects are returned: closing would detach them, so no automatic fix",
            before='''
            from app.db import SessionLocal, User


            def active_users() -> list[User]:
                db = SessionLocal()
                return db.query(User).all()
            ''',
        ),
    ) + w3.EXAMPLES
    valid = (
        Valid(
            '''
            from app.db import SessionLocal


            def get_db():
                db = SessionLocal()
                try:
                    yield db
                finally:
                    db.close()
            ''',
            "a FastAPI provider that yields the session and closes it in finally",
        ),
        Valid(
            '''
            from app.db import SessionLocal, User


            def names() -> list[str]:
                session = SessionLocal()
                try:
                    return [u.name for u in session.query(User)]
                finally:
                    session.close()
            ''',
            "closed in finally: on every path",
        ),
        Valid(
            '''
            from sqlalchemy.orm import scoped_session, sessionmaker
            from app.db import User, engine

            Session = scoped_session(sessionmaker(engine))


            def names() -> list[str]:
                session = Session()
                return [u.name for u in session.query(User)]
            ''',
            "a scoped_session registry's thread-local session: `Session.remove()` handles it",
        ),
        Valid(
            '''
            from sqlalchemy import create_engine
            from sqlalchemy.orm import scoped_session, sessionmaker


            def init_db(url: str):
                registry = scoped_session(sessionmaker())
                registry.configure(bind=create_engine(url))
                session = registry()
                session.execute("select 1")
            ''',
            "a registry built in the function: its thread-local session is the registry's to remove",
        ),
        Valid(
            '''
            from app.db import SessionLocal


            class UserRepository:
                def __init__(self) -> None:
                    self.session = SessionLocal()


            def make_repository(factory):
                session = SessionLocal()
                return Repository(session)
            ''',
            "handed to an owner: stored on self, passed to a constructor",
        ),
        Valid(
            '''
            from app.db import SessionLocal


            def names():
                session = SessionLocal()
                with session:
                    return [u.name for u in session.query(User)]
            ''',
            "closed by a with block",
        ),
        Valid(
            '''
            from alembic import op
            from sqlalchemy.orm import Session


            def upgrade() -> None:
                session = Session(bind=op.get_bind())
                session.execute(text("update users set name = lower(name)"))
                session.commit()
            ''',
            "a session on the migration's connection: it checks nothing out of a pool",
        ),
        Valid(
            '''
            from sqlalchemy import event, orm


            @event.listens_for(orm.Session, "after_flush")
            def touch(session, context):
                bind = session.connection()
                local = orm.Session(bind=bind)
                local.execute(text("update lists set updated_at = now()"))
                local.commit()
            ''',
            "a session on a connection another session holds (a name bound from `.connection()`)",
        ),
        Valid(
            '''
            import click
            from app.db import SessionLocal, User


            @click.command("users")
            def list_users() -> None:
                session = SessionLocal()
                for user in session.query(User):
                    click.echo(user.name)
            ''',
            "a command-line command: it runs once per process, the connection goes with it",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session


            def pending_with(obj) -> list:
                session = Session()
                session.add(obj)
                related = list(session.new)
                session.expunge_all()
                return related
            ''',
            "a session built with no engine: it can never check a connection out (a query raises instead)",
        ),
        Valid(
            '''
            from sqlalchemy import text
            from app.setup import current_session


            def check_connection() -> None:
                session = current_session()
                session.execute(text("select 1"))
            ''',
            "a helper returning a scoped registry's session: the registry owns it",
        ),
        Valid(
            '''
            from app.db import SessionLocal


            def with_db(**kwargs) -> dict:
                session = SessionLocal()
                kwargs["db_session"] = session
                return kwargs
            ''',
            "the `**kwargs` dict holding the session is returned: its receiver owns the session",
        ),
        Valid(
            '''
            from sqlalchemy.orm import scoped_session, sessionmaker
            from app.db import User, engine


            def names() -> list[str]:
                session = scoped_session(sessionmaker(bind=engine))()
                return [u.name for u in session.query(User)]
            ''',
            "a registry built and called at once: its thread-local session is the registry's to remove",
        ),
        Valid(
            '''
            from app.db import SessionLocal


            async def db_session_middleware(request, call_next):
                request.state.db = SessionLocal()
                try:
                    return await call_next(request)
                finally:
                    request.state.db.close()
            ''',
            "kept on the request's state and closed by the middleware in finally",
        ),
        Valid(
            '''
            from flask import Flask, g
            from app.db import SessionLocal

            app = Flask(__name__)


            @app.before_request
            def open_db() -> None:
                g.db = SessionLocal()


            @app.teardown_appcontext
            def close_db(exc) -> None:
                db = g.pop("db", None)
                if db is not None:
                    db.close()
            ''',
            "Flask's `g.db`, which a teardown hook pops and closes",
        ),
        Valid(
            '''
            from app.db import SessionLocal


            def process_request(request) -> None:
                request.db = SessionLocal()


            def process_response(req, response):
                req.db.close()
                return response
            ''',
            "closed where the request ends, read back under another name for the same holder",
        ),
        Valid(
            '''
            from app.db import SessionLocal


            class Unit:
                def close(self) -> None:
                    self.session.close()


            def start(unit: Unit) -> None:
                unit.session = SessionLocal()
            ''',
            "kept on an object whose own close() closes it",
        ),
        Valid(
            '''
            from app.db import SessionLocal


            def with_session(context: dict) -> dict:
                context["db_session"] = SessionLocal()
                return context


            def run_job(job, context: dict) -> None:
                context["db_session"] = SessionLocal()
                job.run(context)
            ''',
            "the holder is returned, or handed to a call: whoever receives it owns the session",
        ),
        Valid(
            '''
            from app.db import SessionLocal

            session = SessionLocal()
            ''',
            "a module-level session (SQF007 reports it)",
        ),
        Valid(
            '''
            from app.db import SessionLocal

            reader = SessionLocal()


            def count(model) -> int:
                return reader.query(model).count()


            if __name__ == "__main__":
                session = SessionLocal()
                for row in session.query(Row):
                    print(row.id)
            ''',
            "a script's own statements run once per process: nothing piles up",
        ),
        Valid(
            '''
            from app.db import SessionLocal, User


            def create_admin(name: str) -> None:
                db = SessionLocal()
                db.add(User(name=name))
                db.commit()


            def main() -> None:
                create_admin("admin")


            if __name__ == "__main__":
                main()
            ''',
            "a function a script runs only from its `__main__` block (here through `main()`), "
            "outside any loop: it runs once per process, so its session is that run's one "
            "connection, not one of many",
        ),
    ) + w3.VALID

    @classmethod
    def wants(cls, index, facts) -> bool:
        if facts is None:
            return True
        return any(o.name and not o.yielded and (not o.closed_on_return or "close" in fn.methods)
                   and index.opens_session(o.factory) is not None
                   for fn in facts.functions.values() for o in fn.opened) or any(
            index.opens_session(h.factory) is not None for fn in facts.functions.values() for h in fn.held) or any(
            index.opens_session(made) is not None or index.kept_factory(made) is not None
            for fn in facts.functions.values() for made in fn.inline_opens) or any(
            advanced_provider(index, q) is not None for q in facts.advanced_calls)  # `next(get_db())`

    def run(self, ctx: FileContext) -> Iterator[Finding]:
        for qualname, fn in functions(ctx.module, ctx):
            facts = ctx.function_facts(qualname)
            advances = facts is None or bool(ADVANCE & facts.called)
            if facts is not None and not facts.session_names and not facts.held and not facts.inline_opens \
                    and not advances or _once_per_process(ctx, qualname, fn):
                continue
            if facts is not None and facts.inline_opens:  # (after a fix round: no candidates known)
                for call, is_async in inline_sessions(ctx, fn, facts.inline_opens):
                    yield self.finding(call, _inline_message(ctx, call, is_async))
            if advances:
                for call, is_async in dropped_providers(ctx, fn):
                    yield self.finding(call, _dropped_message(ctx, call, is_async))
            evs = events(fn, ctx)
            for created in self._created(ctx, fn, qualname, evs):
                outcome = self._outcome(ctx, fn, evs, created)
                if outcome in (Outcome.CLOSED, Outcome.HANDED_OVER):
                    continue
                yield self._finding(ctx, fn, evs, created, outcome)
            if facts is not None and facts.held:
                yield from self._stored(ctx, fn, qualname, evs)

    # which sessions -------------------------------------------------------------
    def _created(self, ctx: FileContext, fn: cst.FunctionDef, qualname: str, evs: list[Event]) -> list[_Created]:
        out = []
        for e in evs:
            if e.kind != EventKind.ASSIGN or not isinstance(e.node, (cst.Assign, cst.AnnAssign)):
                continue
            value = _fallback(e.name or "", e.value)
            value = value.expression if isinstance(value, cst.Await) else value
            if not isinstance(value, cst.Call):
                continue
            callee = _callee(value)
            if callee is None:
                continue
            if not self._opens(ctx, fn, qualname, callee, e.name or ""):
                continue
            factory = self._factory(ctx, qualname, callee, e.name or "")
            if on_a_connection(value, evs[: e.index]) or without_engine(value, factory):
                continue
            kind = ctx.index.opens_session(factory)
            out.append(_Created(e, e.name or "", value, callee, bool(kind)))
        return out

    @staticmethod
    def _factory(ctx: FileContext, qualname: str, callee: str, name: str) -> str | None:
        """The qualified factory `name = callee(...)` calls, as the index knows it."""
        facts = ctx.function_facts(qualname)
        factory = facts.session_names.get(name) if facts is not None else None
        if factory is None and ctx.round > 0:
            factory = ctx.qualify(callee)  # after a fix round the facts no longer describe the code
        return factory

    @staticmethod
    def _opens(ctx: FileContext, fn: cst.FunctionDef, qualname: str, callee: str, name: str) -> bool:
        """Does `name = callee(...)` open a new session (not a scoped registry's)?"""
        return opens_new(ctx, SessionNeverClosed._factory(ctx, qualname, callee, name), callee)

    # what happens to it -----------------------------------------------------------
    def _outcome(self, ctx: FileContext, fn: cst.FunctionDef, evs: list[Event], created: _Created) -> Outcome:
        S = created.name
        closes = [e for e in evs if e.kind == EventKind.CALL and e.owner == S and e.name == "close"]
        if any(in_finally(e) for e in closes):
            return Outcome.CLOSED
        if any(e.kind == EventKind.ESCAPE and e.name == S for e in evs) or any(
                e.kind == EventKind.NESTED and e.name == S for e in evs):
            return Outcome.HANDED_OVER
        node = created.event.node
        bound = [node.targets[0].target if isinstance(node, cst.Assign) else node.target]  # type: ignore[attr-defined]
        if created.event.value is not created.call:  # `S = S or factory()`: the given one, read
            bound += m.findall(created.event.value, m.Name(S))
        rebound = [e for e in evs if e.kind == EventKind.ASSIGN and e.name == S and e is not created.event]
        if rebound:
            held = held_in(ctx, fn, S)
            if held is None or not all(isinstance(e.node, cst.Assign) and len(e.node.targets) == 1
                                       and holder_of(ctx, e.value) == held[1] for e in rebound):
                return Outcome.HANDED_OVER  # rebound: which session a use means is not followed
            # `else: S = context["db_session"]`: the same holder's session, read back
            bound += [e.node.targets[0].target for e in rebound]  # type: ignore[attr-defined]
        for name in m.findall(fn.body, m.Name(S)):
            if any(name is b for b in bound):
                continue
            how = self._use(ctx, fn, name)  # type: ignore[arg-type]
            if how is not None:
                return how
        if closes:
            handlers = [e for e in closes if handler_block(e) is not None]
            if handlers and len(handlers) < len(closes):
                return Outcome.CLOSED  # closed in the error handler and after it: every path
            return Outcome.CLOSED_ON_SUCCESS
        return Outcome.NEVER_CLOSED

    @staticmethod
    def _use(ctx: FileContext, fn: cst.FunctionDef, name: cst.Name) -> Outcome | None:
        """What one mention of the session does with it: None for `S.method(...)`/`S.attr`
        and for an argument of a call that only uses it."""
        parent = ctx.parent(name)
        if isinstance(parent, cst.Attribute) and parent.value is name or _tested(ctx, name):
            return None
        if isinstance(parent, cst.WithItem):
            return Outcome.CLOSED  # `with session:` closes it
        if isinstance(parent, cst.Arg):
            call = ctx.parent(parent)
            if isinstance(call, cst.Call):
                return _passed(ctx, call)
        packed = _kwargs_name(fn)
        if isinstance(parent, cst.Assign) and parent.value is name and packed is not None and all(
                isinstance(t.target, cst.Subscript) and dotted(t.target.value) == packed for t in parent.targets):
            return _packed_use(ctx, fn, packed)  # `kwargs["db_session"] = S`, then `func(**kwargs)`
        if isinstance(parent, cst.Assign) and parent.value is name and len(parent.targets) == 1 \
                and unowned_holder(ctx, fn, parent.targets[0].target) is not None:
            return None  # `context["db"] = S`: a holder nothing closes
        return Outcome.HANDED_OVER  # `x = S`, `[S]`, `self.db = S`, `{"db": S}`...

    # sessions put straight into a holder ------------------------------------------
    def _stored(self, ctx: FileContext, fn: cst.FunctionDef, qualname: str, evs: list[Event]) -> Iterator[Finding]:
        """``context["db_session"] = factory(...)``: a new session kept where nothing closes it."""
        facts = ctx.function_facts(qualname)
        held = {h.holder: h.factory for h in facts.held} if facts is not None else {}
        for node in m.findall(fn.body, m.Assign(targets=[m.AssignTarget()])):
            if _enclosing_function(ctx, node) is not fn:
                continue
            assign: cst.Assign = node  # type: ignore[assignment]
            value = assign.value.expression if isinstance(assign.value, cst.Await) else assign.value
            callee = _callee(value) if isinstance(value, cst.Call) else None
            holder = unowned_holder(ctx, fn, assign.targets[0].target) if callee is not None else None
            if holder is None or holder not in held or not opens_new(ctx, held[holder], callee or ""):
                continue
            before = [e for e in evs if ctx.position(e.node).start.line < ctx.position(assign).start.line]
            if on_a_connection(value, before):  # type: ignore[arg-type]
                continue
            call = ctx.module.code_for_node(value)
            if len(call) > 60 or "\n" in call:
                call = f"{callee}(...)"
            where = ctx.module.code_for_node(assign.targets[0].target)
            yield self.finding(value, unowned_message(where, call, bool(ctx.index.opens_session(held[holder]))))

    # the finding -----------------------------------------------------------------
    def _finding(self, ctx: FileContext, fn: cst.FunctionDef, evs: list[Event], created: _Created,
                 outcome: Outcome) -> Finding:
        S = created.name
        call = ctx.module.code_for_node(created.call)
        if len(call) > 60 or "\n" in call:
            call = f"{created.factory}(...)"
        opener = "async with" if created.is_async else "with"
        held = held_in(ctx, fn, S)
        holder = held[0] if held is not None else None
        if outcome is Outcome.NEVER_CLOSED and holder is not None:
            message = unowned_message(holder, call, created.is_async)
            fix = None
        elif outcome is Outcome.NEVER_CLOSED and _parameter(fn, S):
            message = (f"`{S} = {call}`, made when the caller gives no session, is never closed: it keeps "
                       f"its connection checked out until the garbage collector collects it, and repeated "
                       f"calls exhaust the pool (TimeoutError); close it in a `finally` when this function "
                       f"made it")
            fix = None
        elif outcome is Outcome.NEVER_CLOSED:
            message = (f"`{S} = {call}` is never closed: the session keeps its connection checked out "
                       f"until the garbage collector collects it, and repeated calls exhaust the pool "
                       f"(TimeoutError); use `{opener} {call} as {S}:`")
            fix = self._wrap(ctx, fn, evs, created)
        else:
            message = (f"`{S}.close()` is not reached when an exception is raised before it: the session "
                       f"keeps its connection checked out until garbage collection; use "
                       f"`{opener} {call} as {S}:` or close it in `finally`")
            fix = None
        if outcome is Outcome.NEVER_CLOSED and fix is None and holder is None and not _parameter(fn, S):
            message += " (no automatic fix: what the function loads may outlive the session)"
        return self.finding(created.call, message, fix)

    def _wrap(self, ctx: FileContext, fn: cst.FunctionDef, evs: list[Event], created: _Created) -> Fix | None:
        """`with factory() as S:` around the rest of the body, where nothing can notice."""
        body = fn.body
        stmt = created.event.statement
        if not isinstance(body, cst.IndentedBlock) or not isinstance(created.event.node, cst.Assign) \
                or not isinstance(stmt, cst.SimpleStatementLine):
            return None
        position = next((i for i, s in enumerate(body.body) if s is stmt), None)
        if position is None or position == len(body.body) - 1 or len(stmt.body) != 1 \
                or len(created.event.node.targets) != 1:
            return None
        rest = body.body[position + 1:]
        if not _contained(created.name, rest, fn, evs, created.event.index):
            return None
        is_async = created.is_async
        call = created.event.node.value  # type: ignore[attr-defined]
        if call is not created.call:  # `await factory()`, `S or factory()`
            return None

        def wrap(updated: cst.IndentedBlock) -> cst.IndentedBlock:
            line = updated.body[position]
            assert isinstance(line, cst.SimpleStatementLine)
            block = cst.With(
                items=[cst.WithItem(item=call.deep_clone(), asname=cst.AsName(name=cst.Name(created.name)))],
                body=cst.IndentedBlock(body=list(updated.body[position + 1:]),
                                       header=line.trailing_whitespace),
                asynchronous=cst.Asynchronous() if is_async else None,
                leading_lines=line.leading_lines,
            )
            return updated.with_changes(body=[*updated.body[:position], block])

        return Fix([Edit(body, replace=wrap)])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- helpers

def _enclosing_function(ctx: FileContext, node: cst.CSTNode) -> cst.CSTNode | None:
    return next((a for a in ctx.ancestors(node) if isinstance(a, (cst.FunctionDef, cst.Lambda))), None)



def _passed(ctx: FileContext, call: cst.Call) -> Outcome | None:
    """What a call given the session does with it: keeps it (a constructor, a keeper, a
    provider that yields what it is given) or only uses it (None)."""
    callee = dotted(call.func) or ""
    last = callee.rsplit(".", 1)[-1]
    if last in ("closing", "aclosing"):
        return Outcome.CLOSED
    if last[:1].isupper() or last in _KEEPERS or not callee:
        return Outcome.HANDED_OVER
    target = ctx.index.function(ctx.qualify(callee))
    if target is not None and (target.yields_param or target.is_generator):
        return Outcome.HANDED_OVER
    return None


def _inline_message(ctx: FileContext, call: cst.Call, is_async: bool) -> str:
    made = ctx.module.code_for_node(call)
    if len(made) > 60 or "\n" in made:
        made = f"{dotted(call.func)}(...)"
    return (f"`{made}` makes a session that is used at once and never closed: no name holds it, so "
            f"nothing can close it, and it keeps its connection checked out until the garbage "
            f"collector collects it; repeated calls exhaust the pool (TimeoutError); use "
            f"`{'async with' if is_async else 'with'} {made} as session:` and query through `session`")


def _dropped_message(ctx: FileContext, call: cst.Call, is_async: bool) -> str:
    taken = ctx.module.code_for_node(call)
    if len(taken) > 60 or "\n" in taken:
        taken = f"{dotted(call.func)}(...)"
    when = ("its cleanup is scheduled on the event loop and runs at the next `await`, closing the session "
            "in the middle of its use") if is_async else "its cleanup closes the session before it is used"
    return (f"`{taken}` takes the session out of a generator that no name holds: the generator is "
            f"finalized at once, {when}, and the use that follows checks out a connection that "
            f"nothing returns to the pool; keep the generator and close it after the uses "
            f"(`{'await gen.aclose()' if is_async else 'gen.close()'}` in a `finally`), or open the session "
            f"with its factory in {'an `async with`' if is_async else 'a `with`'} block")


def _fallback(name: str, value: cst.BaseExpression | None) -> cst.BaseExpression | None:
    """``S = S or factory()``: the call that makes a session when none was given; else ``value``."""
    if isinstance(value, cst.BooleanOperation) and isinstance(value.operator, cst.Or) \
            and isinstance(value.left, cst.Name) and value.left.value == name:
        return value.right
    return value


def _parameter(fn: cst.FunctionDef, name: str) -> bool:
    """Is ``name`` a parameter of ``fn`` (a session the caller may give)?"""
    params = fn.params
    every = [*params.posonly_params, *params.params, *params.kwonly_params]
    return any(p.name.value == name for p in every)


def _tested(ctx: FileContext, name: cst.Name) -> bool:
    """``if S:``, ``not S``, ``S is None``, ``S is not None``: a test of whether there is a
    session, which keeps nothing."""
    parent = ctx.parent(name)
    if isinstance(parent, (cst.If, cst.While)) and parent.test is name \
            or isinstance(parent, cst.UnaryOperation) and isinstance(parent.operator, cst.Not):
        return True
    return isinstance(parent, cst.Comparison) and parent.left is name and all(
        isinstance(c.operator, (cst.Is, cst.IsNot)) and isinstance(c.comparator, cst.Name)
        and c.comparator.value == "None" for c in parent.comparisons)


def _kwargs_name(fn: cst.FunctionDef) -> str | None:
    """The name of the function's ``**kwargs`` parameter (a new dict on every call)."""
    star = fn.params.star_kwarg
    return star.name.value if star is not None else None


def _packed_use(ctx: FileContext, fn: cst.FunctionDef, packed: str) -> Outcome | None:
    """The session stored in the function's own ``**kwargs`` dict: what the calls that
    unpack the dict (``func(*args, **kwargs)``) do with it. Any other use of the dict
    (returned, stored, passed as a value) hands the session over."""
    for mention in m.findall(fn.body, m.Name(packed)):
        parent = ctx.parent(mention)
        if isinstance(parent, cst.Attribute) and parent.value is mention:
            continue  # kwargs.get(...), kwargs.pop(...)
        if isinstance(parent, cst.Subscript) and parent.value is mention:
            continue  # kwargs["key"] = value, kwargs["key"]
        if isinstance(parent, cst.Arg) and parent.star == "**":
            call = ctx.parent(parent)
            how = _passed(ctx, call) if isinstance(call, cst.Call) else Outcome.HANDED_OVER
            if how is None:
                continue
            return how
        return Outcome.HANDED_OVER
    return None


def _callee(call: cst.Call) -> str | None:
    """What a call calls, as written: ``SessionLocal``; ``sessionmaker()`` for a factory built
    and called at once (``sessionmaker(bind=engine)()``)."""
    if isinstance(call.func, cst.Call):
        inner = dotted(call.func.func)
        return inner + "()" if inner is not None and not call.args else None
    return dotted(call.func)


def _once_per_process(ctx: FileContext, qualname: str, fn: cst.FunctionDef) -> bool:
    """Code that runs once per process, where a session left open cannot pile up: the
    module's own statements (a module-level session is SQF007's; an `if __name__ ==
    "__main__":` block is a script's single run), a function a script runs only from that
    code, outside any loop (:func:`runs_once`), and a command-line entry point
    (`@cli.command()`, `@click.group()`, `@app.callback()`)."""
    return qualname == index_mod.MODULE_LEVEL or runs_once(ctx, qualname) or is_command(fn)


def _contained(S: str, rest, fn: cst.FunctionDef, evs: list[Event], created_at: int) -> bool:
    """Can nothing the session loads outlive the function? The statements after the creation
    use the session only through its methods, keep values in new locals, pass them only to
    calls that look at them, and the function returns no value, is no generator and has no
    nested function, no global/nonlocal and no raise that carries a value."""
    if m.findall(fn.body, m.FunctionDef() | m.Lambda() | m.ClassDef() | m.Global() | m.Nonlocal()
                 | m.Yield()):
        return False
    if any(r.value is not None for r in m.findall(fn.body, m.Return())):  # type: ignore[attr-defined]
        return False
    fresh = {e.name for e in evs if e.kind == EventKind.ASSIGN and e.index >= created_at and e.name}
    fresh.add(S)
    for stmt in rest:
        for target in m.findall(stmt, m.AssignTarget() | m.AugAssign() | m.AnnAssign()):
            node = target.target  # type: ignore[attr-defined]
            if isinstance(node, (cst.Attribute, cst.Subscript)) and _base(node) not in fresh:
                return False
        for raise_ in m.findall(stmt, m.Raise()):
            if raise_.exc is not None and _mentions_any(raise_.exc, fresh):  # type: ignore[attr-defined]
                return False
        for call in m.findall(stmt, m.Call()):
            func = call.func  # type: ignore[attr-defined]
            receiver = _base(func) if isinstance(func, cst.Attribute) else None
            if receiver in fresh:
                continue  # a method of the session or of a new local
            name = func.value if isinstance(func, cst.Name) else None
            if name in _LOOKERS:
                continue
            if any(_mentions_any(a.value, fresh) for a in call.args):  # type: ignore[attr-defined]
                return False
    return True


def _base(node: cst.BaseExpression) -> str | None:
    while isinstance(node, (cst.Attribute, cst.Subscript)):
        node = node.value
    return node.value if isinstance(node, cst.Name) else None


def _mentions_any(node: cst.CSTNode, wanted: set[str]) -> bool:
    return any(n.value in wanted for n in m.findall(node, m.Name()))  # type: ignore[attr-defined]
