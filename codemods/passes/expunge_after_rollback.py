"""SQF004 expunge-after-rollback: ``expunge_all()`` after a rollback on an error path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..lazy import lazy
from .base import Edit, Example, FileContext, Finding, Fix, Pass, Valid
from .examples import FLASK, SYNC_DB
from .flow import Event, EventKind, events, functions_calling, held, mentions, sessions

if TYPE_CHECKING:
    import libcst as cst
else:
    cst = lazy("libcst")


class ExpungeAfterRollback(Pass):
    code = "SQF004"
    name = "expunge-after-rollback"
    summary = "a session rolled back on an error path keeps its expired instances"
    fix_safety = "mixed"  # safe where the error propagates, unsafe where the handler goes on
    triggers = (b".rollback(",)
    method = "rollback"
    explanation = """
    ## What it does
    Where a session's `rollback()` is called on an error path (an `except` handler, the
    error branch of `__exit__`/`__aexit__`, a `get_db`-style provider's `except`), inserts
    `session.expunge_all()` right after it, on the same session expression. It is never
    awaited: `AsyncSession.expunge_all()` is a plain method, and awaiting it is a TypeError.
    Sessions are recognised through the project index: `with`/`async with` sessions,
    sessions from factories, `self.session` of a unit of work, a `scoped_session` registry,
    Flask-SQLAlchemy's `db.session`. A `rollback()` on a Connection's transaction or a
    DBAPI connection is left alone.

    ## Why is this bad?
    After a rollback, the objects the failed transaction made persistent are expunged and
    every other instance in the session is expired. Code that keeps references to them and
    goes on using them through this session works on stale state. `expunge_all()` detaches
    every instance the failed transaction left behind at once, so no code can keep using a
    stale one through this session.

    What it does **not** do: repair an instance kept outside the session. If the instance
    sits in an application cache or a module-level dict, or the session is shared between
    requests, a later request still updates that detached object, its commit saves nothing,
    and a later insert that refers to it fails with a foreign-key error. That bug is the
    instance kept, not the rollback; SQF007 reports it. The fix there is one session per
    request and caching ids or plain data, not instances.

    ## The fix
    `session.expunge_all()` on the line after the error-path `rollback()`.

    ## Fix safety
    Safe where the error leaves the scope: the handler re-raises after the rollback, or it
    is the error branch of `__exit__`/`__aexit__`. No code goes on using the session's
    instances there.

    Unsafe (applied only with `--unsafe-fixes`) where the handler swallows the error and the
    code goes on (`continue` in a loop, a view that flashes a message and renders a page):
    an instance loaded before the rollback is only expired by it and would reload on its
    next read; after `expunge_all()` it is detached and that read raises
    `DetachedInstanceError` (a `current_user` loaded through Flask-SQLAlchemy's
    `db.session`, the project a worker loop loaded before its first item).
    """
    example_project = {"app/__init__.py": "", "app/db.py": SYNC_DB, "app/ext.py": FLASK}
    examples = (
        Example(
            title="a get_db provider",
            before='''
            from app.db import SessionLocal


            def get_db():
                db = SessionLocal()
                try:
                    yield db
                except Exception:
                    db.rollback()
                    raise
                finally:
                    db.close()
            ''',
            after='''
            from app.db import SessionLocal


            def get_db():
                db = SessionLocal()
                try:
                    yield db
                except Exception:
                    db.rollback()
                    db.expunge_all()
                    raise
                finally:
                    db.close()
            ''',
        ),
        Example(
            title="an async unit of work: never awaited",
            before='''
            from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


            class UnitOfWork:
                def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
                    self.factory = factory

                async def __aenter__(self):
                    self.session = self.factory()
                    return self

                async def __aexit__(self, exc_type, exc, tb):
                    if exc_type is not None:
                        await self.session.rollback()
                    else:
                        await self.session.commit()
                    await self.session.close()
            ''',
            after='''
            from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


            class UnitOfWork:
                def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
                    self.factory = factory

                async def __aenter__(self):
                    self.session = self.factory()
                    return self

                async def __aexit__(self, exc_type, exc, tb):
                    if exc_type is not None:
                        await self.session.rollback()
                        self.session.expunge_all()
                    else:
                        await self.session.commit()
                    await self.session.close()
            ''',
        ),
        Example(
            title="a handler that goes on: an unsafe fix, applied with --unsafe-fixes",
            before='''
            from app.db import SessionLocal


            def import_rows(rows) -> int:
                done = 0
                with SessionLocal() as session:
                    for row in rows:
                        try:
                            session.add(row)
                            session.commit()
                            done += 1
                        except ValueError:
                            session.rollback()
                            continue
                return done
            ''',
            after='''
            from app.db import SessionLocal


            def import_rows(rows) -> int:
                done = 0
                with SessionLocal() as session:
                    for row in rows:
                        try:
                            session.add(row)
                            session.commit()
                            done += 1
                        except ValueError:
                            session.rollback()
                            session.expunge_all()
                            continue
                return done
            ''',
        ),
        Example(
            title="Flask-SQLAlchemy's db.session",
            before='''
            from sqlalchemy.exc import IntegrityError
            from app.ext import db


            def create(post) -> bool:
                try:
                    db.session.add(post)
                    db.session.commit()
                except IntegrityError:
                    db.session.rollback()
                    raise
                return True
            ''',
            after='''
            from sqlalchemy.exc import IntegrityError
            from app.ext import db


            def create(post) -> bool:
                try:
                    db.session.add(post)
                    db.session.commit()
                except IntegrityError:
                    db.session.rollback()
                    db.session.expunge_all()
                    raise
                return True
            ''',
        ),
    )
    valid = (
        Valid(
            '''
            from app.db import SessionLocal


            def get_db():
                db = SessionLocal()
                try:
                    yield db
                except Exception:
                    db.rollback()
                    raise
                finally:
                    db.expunge_all()
                    db.close()
            ''',
            "already expunged in the handler's finally",
        ),
        Valid(
            '''
            def migrate(engine):
                conn = engine.connect()
                trans = conn.begin()
                try:
                    conn.execute(text("update t set x = 1"))
                    trans.commit()
                except Exception:
                    trans.rollback()
                    conn.rollback()
                    raise
            ''',
            "a Connection's transaction and a connection are not sessions",
        ),
        Valid(
            '''
            from flask import session


            def forget():
                try:
                    session.pop("cart")
                except KeyError:
                    session.rollback()
            ''',
            "Flask's cookie `session` is not a SQLAlchemy session",
        ),
        Valid(
            '''
            from app.db import SessionLocal


            def reset():
                with SessionLocal() as session:
                    session.rollback()
            ''',
            "a rollback that is not on an error path",
        ),
    )

    def run(self, ctx: FileContext) -> Iterator[Finding]:
        for qualname, fn in functions_calling(ctx, self.method):
            evs = events(fn, ctx)
            refs = None
            for ev in evs:
                if ev.kind != EventKind.CALL or ev.name != "rollback" or ev.owner is None:
                    continue
                branch = self._error_branch(fn, ev)
                if branch is None:
                    continue
                if refs is None:
                    refs = sessions(ctx, fn, qualname, evs)
                if held(ctx, qualname, ev.owner, refs) is None:
                    continue
                if self._already(evs, ev.owner, branch):
                    continue
                finding = self._finding(ev, self._propagates(fn, ev, branch))
                if finding is not None:
                    yield finding

    @staticmethod
    def _error_branch(fn: cst.FunctionDef, ev: Event) -> tuple[cst.CSTNode, ...] | None:
        """The blocks where an expunge_all() would count as already there: the except
        handler's block and the try's finally; or the `if exc_type` branch of __exit__."""
        path = ev.path
        for i, node in enumerate(path[:-1]):
            if isinstance(node, (cst.Try, cst.TryStar)):
                block = path[i + 1]
                if any(h.body is block for h in node.handlers):
                    final = node.finalbody.body if node.finalbody is not None else None
                    return (block,) + ((final,) if final is not None else ())
        if fn.name.value in ("__exit__", "__aexit__"):
            params = [p.name.value for p in fn.params.params]
            exc = params[1] if len(params) > 1 else None
            for i, node in enumerate(path[:-1]):
                if isinstance(node, cst.If) and exc and mentions(node.test, exc):
                    return (path[i + 1],)
        return None

    @staticmethod
    def _already(evs: list[Event], owner: str, branch: tuple[cst.CSTNode, ...]) -> bool:
        return any(e.kind == EventKind.CALL and e.owner == owner and e.name == "expunge_all"
                   and any(b is p for b in branch for p in e.path) for e in evs)

    @staticmethod
    def _propagates(fn: cst.FunctionDef, ev: Event, branch) -> bool:
        """Does the error leave the scope after the rollback (a `raise` after it in the same
        handler block, or the error branch of __exit__/__aexit__)? Then no code goes on using
        the session's instances, and detaching them is harmless."""
        if fn.name.value in ("__exit__", "__aexit__"):
            return True
        block = branch[0]
        try:
            stmt = ev.statement
        except LookupError:
            return False
        body = getattr(block, "body", ())
        after = False
        for s in body:
            if s is stmt:
                after = True
                continue
            if after and isinstance(s, cst.SimpleStatementLine) and any(isinstance(x, cst.Raise) for x in s.body):
                return True
        return False

    def _finding(self, ev: Event, propagates: bool) -> Finding | None:
        S = ev.owner
        try:
            stmt = ev.statement
        except LookupError:
            return None
        message = (f"`{S}.rollback()` on an error path: add `{S}.expunge_all()` so no code keeps using, "
                   f"through this session, an instance the failed transaction left behind (it does not "
                   f"repair instances kept outside the session: see SQF007)")
        if not propagates:
            message += ("; the handler goes on after the rollback, and objects loaded before it would "
                        "be detached instead of reloaded: an unsafe fix (--unsafe-fixes)")
        fix = None
        if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(stmt.body[0], cst.Expr):
            value = stmt.body[0].value
            if isinstance(value, cst.Await):
                value = value.expression
            if value is ev.node:
                fix = Fix([Edit(stmt, after=[cst.parse_statement(f"{S}.expunge_all()")])], safe=propagates)
        finding = self.finding(ev.node, message, fix)
        finding.at = ev.node
        return finding
