"""SQF001 snapshot-before-expunge: read what is needed before ``expunge()``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..lazy import lazy
from . import match as m
from .base import Edit, Example, FileContext, Finding, Fix, Pass, Valid
from .examples import SYNC_DB
from .flow import (
    LAZY_STRATEGIES,
    Binding,
    BindingKind,
    Event,
    EventKind,
    SessionRef,
    attaches,
    binding_of,
    capture_source,
    events,
    functions_calling,
    model_for,
    reachable_only_through,
    session_call,
    sessions,
    unique_name,
)
from .helpers import to_name

if TYPE_CHECKING:
    import libcst as cst
else:
    cst = lazy("libcst")

# Expressions whose value can be computed before the expunge and bound to a name.


class SnapshotBeforeExpunge(Pass):
    code = "SQF001"
    supersedes = ("SQF010",)  # the reads it moves before the expunge are the expired ones
    name = "snapshot-before-expunge"
    summary = "attributes read after `session.expunge(obj)` when obj was expired or not loaded"
    fix_safety = "safe"
    triggers = (b".expunge(",)
    method = "expunge"
    explanation = """
    ## What it does
    Finds attribute reads of an object after `session.expunge(obj)` in the same function,
    when the object may be expired at the expunge (a commit, rollback or `expire()` on that
    session since it was created or loaded, with no refresh since, under a factory that
    expires on commit) or when the read is a lazy relationship that was never loaded.

    ## Why is this bad?
    `expunge()` detaches the object and loads nothing. Reading an expired attribute of a
    detached object raises `DetachedInstanceError: Instance <Message> is not bound to a
    Session; attribute refresh operation cannot proceed`; a lazy relationship that was never
    loaded raises `... lazy load operation of attribute 'x' cannot proceed`.

    ## The fix
    Take the values before the expunge, computing exactly the same thing:

    - when the reads form one expression after the expunge (a dict, a tuple, an f-string, a
      DTO constructor call), that expression is bound to a new name before the expunge
      (`message_data = {...}`) and the name is used where the expression was;
    - when the reads are spread over several statements, each attribute is bound to a local
      before the expunge (`message_id = message.id`) and the reads use it.

    In async code the object is refreshed first (`await session.refresh(obj)`): reading an
    expired attribute while attached would otherwise raise `MissingGreenlet`. A lazy
    relationship cannot be read safely in async code: that is reported without a fix (load it
    with `selectinload()` where the object is loaded).

    The fix is only offered when nothing between the expunge and the reads can change the
    object or the values the moved expression reads.

    Left alone: reads before the expunge; deliberate snapshots (an object loaded, nothing
    committed, expunged to keep its old values, then read); factories with
    `expire_on_commit=False` and no rollback in between.

    ## Fix safety
    Safe: the values are those the object held at the expunge, which is what the reads were
    meant to see.
    """
    example_project = {"app/__init__.py": "", "app/db.py": SYNC_DB}
    examples = (
        Example(
            title="a dict of attributes built after the expunge",
            before='''
            from app.db import Message, read_db


            def add_message(content: str) -> dict:
                with read_db() as session:
                    message = Message(content=content)
                    session.add(message)
                    session.commit()
                    session.expunge(message)
                    logger.info("stored")
                    return {
                        "id": message.id,
                        "content": message.content,
                    }
            ''',
            after='''
            from app.db import Message, read_db


            def add_message(content: str) -> dict:
                with read_db() as session:
                    message = Message(content=content)
                    session.add(message)
                    session.commit()
                    message_data = {
                        "id": message.id,
                        "content": message.content,
                    }
                    session.expunge(message)
                    logger.info("stored")
                    return message_data
            ''',
        ),
        Example(
            title="a service keeping its factory on self, closing in finally",
            before='''
            from sqlalchemy.orm import sessionmaker
            from app.db import Message, engine


            class ChatService:
                def __init__(self) -> None:
                    self.SessionLocal = sessionmaker(bind=engine)

                def add_message(self, content: str) -> tuple:
                    session = self.SessionLocal()
                    try:
                        message = Message(content=content)
                        session.add(message)
                        session.commit()
                        session.expunge(message)
                        return (message.id, message.content)
                    finally:
                        session.close()
            ''',
            after='''
            from sqlalchemy.orm import sessionmaker
            from app.db import Message, engine


            class ChatService:
                def __init__(self) -> None:
                    self.SessionLocal = sessionmaker(bind=engine)

                def add_message(self, content: str) -> tuple:
                    session = self.SessionLocal()
                    try:
                        message = Message(content=content)
                        session.add(message)
                        session.commit()
                        message_data = (message.id, message.content)
                        session.expunge(message)
                        return message_data
                    finally:
                        session.close()
            ''',
        ),
        Example(
            title="reads spread over several statements",
            before='''
            from sqlalchemy.orm import Session
            from app.db import Message, engine


            def archive(message_id: int) -> str:
                with Session(engine) as session:
                    message = session.get(Message, message_id)
                    message.content = message.content.strip()
                    session.commit()
                    session.expunge(message)
                if not message.content:
                    return f"empty {message.id}"
                return message.content
            ''',
            after='''
            from sqlalchemy.orm import Session
            from app.db import Message, engine


            def archive(message_id: int) -> str:
                with Session(engine) as session:
                    message = session.get(Message, message_id)
                    message.content = message.content.strip()
                    session.commit()
                    message_content = message.content
                    message_id_2 = message.id
                    session.expunge(message)
                if not message_content:
                    return f"empty {message_id_2}"
                return message_content
            ''',
        ),
        Example(
            title="async: refresh, then snapshot",
            before='''
            from sqlalchemy.ext.asyncio import async_sessionmaker

            maker = async_sessionmaker()


            async def add(content: str) -> str:
                async with maker() as session:
                    message = Message(content=content)
                    session.add(message)
                    await session.commit()
                    session.expunge(message)
                    return f"{message.id}: {message.content}"
            ''',
            after='''
            from sqlalchemy.ext.asyncio import async_sessionmaker

            maker = async_sessionmaker()


            async def add(content: str) -> str:
                async with maker() as session:
                    message = Message(content=content)
                    session.add(message)
                    await session.commit()
                    await session.refresh(message)
                    message_data = f"{message.id}: {message.content}"
                    session.expunge(message)
                    return message_data
            ''',
        ),
        Example(
            title="async: a lazy relationship read after the expunge",
            before='''
            from sqlalchemy.ext.asyncio import async_sessionmaker
            from app.db import User

            maker = async_sessionmaker()


            async def post_count(user_id: int) -> int:
                async with maker() as session:
                    user = await session.get(User, user_id)
                    session.expunge(user)
                return len(user.posts)
            ''',
        ),
        Example(
            title="expired by a rollback, then returned: no commit, so this rule fixes it",
            before='''
            from sqlalchemy.orm import Session
            from app.db import Message, engine


            def undo(message_id: int) -> Message:
                with Session(engine) as session:
                    message = session.get(Message, message_id)
                    message.content = ""
                    session.rollback()
                    session.expunge(message)
                    logger.info(message.content)
                    return message
            ''',
            after='''
            from sqlalchemy.orm import Session
            from app.db import Message, engine


            def undo(message_id: int) -> Message:
                with Session(engine) as session:
                    message = session.get(Message, message_id)
                    message.content = ""
                    session.rollback()
                    message_content = message.content
                    session.expunge(message)
                    logger.info(message_content)
                    return message
            ''',
        ),
        Example(
            title="the object is changed after the expunge: no automatic fix",
            before='''
            from sqlalchemy.orm import Session
            from app.db import Message, engine


            def reset(message_id: int) -> str:
                with Session(engine) as session:
                    message = session.get(Message, message_id)
                    session.commit()
                    session.expunge(message)
                    message.content = ""
                    return message.content
            ''',
        ),
    )
    valid = (
        Valid(
            '''
            from sqlalchemy.orm import Session
            from app.db import Message, engine


            def load(session: Session, message_id: int):
                return session.get(Message, message_id)


            def snapshot(message_id: int) -> str:
                with Session(engine) as session:
                    message = load(session, message_id)
                    session.expunge(message)
                    return message.content
            ''',
            "loaded by a project function through the same session, with no commit since: nothing expired it",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session


            def archive(session: Session, message) -> str:
                session.expunge(message)
                return message.content
            ''',
            "a parameter nothing here committed or rolled back: whether it is expired is not known, so not claimed",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session
            from app.db import Message, engine


            def rename(message_id: int, content: str) -> str:
                with Session(engine) as session:
                    message = session.get(Message, message_id)
                    session.expunge(message)
                    old = message.content
                    session.execute(update(Message).values(content=content))
                    session.commit()
                    return old
            ''',
            "a deliberate snapshot: loaded, nothing committed, expunged to keep the old values",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session
            from app.db import Message, engine


            def move(message_id: int, other: Session) -> str:
                with Session(engine) as session:
                    message = session.get(Message, message_id)
                    session.commit()
                    session.expunge(message)
                other.add(message)
                return message.content
            ''',
            "attached again to another session before it is read",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session
            from app.db import Message, engine


            def flushed(content: str) -> int:
                with Session(engine) as session:
                    message = Msg(content=content)
                    session.add(message)
                    session.flush()
                    session.expunge(message)
                    return message.id
            ''',
            "a new object of a class the index does not know, flushed but not committed",
        ),
        Valid(
            '''
            from app.db import Message, QuietSession


            def add(content: str) -> dict:
                with QuietSession() as session:
                    message = Message(content=content)
                    session.add(message)
                    session.commit()
                    session.expunge(message)
                    return {"id": message.id}
            ''',
            "a factory built with expire_on_commit=False (safe by configuration)",
        ),
        Valid(
            '''
            from app.db import Message, read_db


            def add_message(content: str) -> dict:
                with read_db() as session:
                    message = Message(content=content)
                    session.add(message)
                    session.commit()
                    message_data = {"id": message.id, "content": message.content}
                    session.expunge(message)
                    return message_data
            ''',
            "already in the fixed shape: the reads come before the expunge",
        ),
        Valid(
            '''
            from app.db import Message, read_db


            def add_message(content: str) -> dict:
                with read_db() as session:
                    message = Message(content=content)
                    session.add(message)
                    session.commit()
                    session.refresh(message)
                    session.expunge(message)
                    return {"id": message.id, "content": message.content}
            ''',
            "refreshed after the commit: its columns are loaded when it is detached",
        ),
    )

    def run(self, ctx: FileContext) -> Iterator[Finding]:
        for qualname, fn in functions_calling(ctx, self.method):
            evs = events(fn, ctx)
            if not any(e.kind == EventKind.CALL and e.name == "expunge" for e in evs):
                continue
            refs = sessions(ctx, fn, qualname, evs)
            for ev in evs:
                if ev.kind == EventKind.CALL and ev.name == "expunge" and ev.owner in refs and len(ev.args) == 1 and ev.args[0]:
                    finding = self._check(ctx, fn, evs, refs[ev.owner], ev, ev.args[0])
                    if finding is not None:
                        finding.subject = ev.args[0]
                        yield finding

    def _check(self, ctx: FileContext, fn, evs: list[Event], ref: SessionRef, expunge: Event, X: str) -> Finding | None:
        S = ref.name
        bound = next((e for e in reversed(evs[: expunge.index]) if e.kind == EventKind.ASSIGN and e.name == X), None)
        binding = binding_of(ctx, bound.value, {S: ref}) if bound is not None else Binding(BindingKind.PARAM)
        if bound is not None and binding.kind == BindingKind.OTHER and _constructed(bound.value):
            binding = Binding(BindingKind.NEW)  # a class the index does not know is still a new object
        start = bound.index if bound is not None else -1
        expired, loaded = self._state(evs[start + 1: expunge.index], ref, X, binding)
        reads: list[Event] = []
        blockers: list[Event] = []
        for e in evs[expunge.index + 1:]:
            if e.kind == EventKind.ASSIGN and e.name == X:
                break
            if e.kind == EventKind.USE and e.name == X and attaches(e.owner):
                break  # attached again (session.add(obj)): later reads load through that session
            if e.kind == EventKind.READ and e.owner == X:
                reads.append(e)
            elif (e.kind in (EventKind.WRITE, EventKind.METHOD) and e.owner == X) or (e.kind in (EventKind.USE, EventKind.NESTED) and e.name == X):
                blockers.append(e)
        if not reads:
            return None
        model = model_for(ctx, binding.model)
        rel_index = ctx.index.relationship_names()
        risky_rel, risky = [], []
        for r in reads:
            a = r.name
            assert a is not None  # a read event names its attribute
            if model is not None:
                lazy = model.relationships.get(a)
            else:
                strategies = rel_index.get(a)
                lazy = next(iter(strategies)) if strategies and len(strategies) == 1 else None
            if lazy is not None:
                if expired or (lazy in LAZY_STRATEGIES and a not in loaded):
                    risky_rel.append(r)
            elif expired or (model is not None and a in model.deferred and a not in loaded):
                risky.append(r)
        if not risky and not risky_rel:
            return None
        attrs = sorted({r.name for r in risky + risky_rel if r.name is not None})
        why = "it was expired by a commit/rollback" if expired else "it was never loaded"
        listed = ", ".join(f"`{X}.{a}`" for a in attrs)
        message = (f"{listed} read after `{S}.expunge({X})`, and {why}: "
                   f"DetachedInstanceError; take the values before the expunge")
        is_async = fn.asynchronous is not None
        if is_async and risky_rel:
            return self.finding(expunge.node, message.replace(
                "take the values before the expunge",
                f"a relationship cannot be loaded implicitly in async code: load it eagerly "
                f"(selectinload({(model.name if model else 'Model')}.{risky_rel[0].name})) where `{X}` is loaded"))
        last_read = reads[-1].index
        if any(b.index < last_read for b in blockers):
            return self.finding(expunge.node, message + f" (`{X}` is changed or passed on in between: no automatic fix)")
        fix = self._fix(ctx, fn, evs, ref, expunge, X, reads, expired and is_async)
        return self.finding(expunge.node, message, fix)

    @staticmethod
    def _state(between: list[Event], ref: SessionRef, X: str, binding: Binding) -> tuple[bool, set[str]]:
        """(may be expired at the expunge, attributes loaded since the last expiry)."""
        S = ref.name
        expired = False  # only a commit, rollback or expire seen here proves it (never assumed)
        loaded: set[str] = set()
        for e in between:
            if e.kind == EventKind.CALL and e.owner == S:
                if (e.name == "commit" and ref.expire_on_commit) or e.name == "rollback" or e.name == "expire_all" \
                        or (e.name == "expire" and e.args[:1] == (X,)):
                    expired, loaded = True, set()
                elif e.name == "refresh" and e.args[:1] == (X,):
                    expired, loaded = False, set()
            elif e.kind in (EventKind.READ, EventKind.WRITE) and e.owner == X:
                loaded.add(e.name)  # type: ignore[arg-type]
        return expired, loaded

    def _fix(self, ctx: FileContext, fn: cst.FunctionDef, evs: list[Event], ref: SessionRef, expunge: Event,
             X: str, reads: list[Event], refresh: bool) -> Fix | None:
        target = expunge.statement
        if not isinstance(target, cst.SimpleStatementLine) or len(target.body) != 1:
            return None
        if not all(reachable_only_through(r, expunge) for r in reads):
            return None
        prelude: list[cst.BaseStatement] = [session_call(ref.name, "refresh", [X], True)] if refresh else []
        one = self._one_expression(ctx, reads)
        if one is not None:
            expr, holder = one
            assigned_after = {e.name for e in evs[expunge.index + 1: holder.index] if e.kind == EventKind.ASSIGN}
            used = {n.value for n in m.findall(expr, m.Name())} - {X}  # type: ignore[attr-defined]
            if not (used & assigned_after) and not m.findall(expr, m.Await() | m.Yield() | m.NamedExpr() | m.Lambda()) \
                    and not _sole_expression(holder, expr):
                name = unique_name(fn, f"{X}_data")
                bind = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(name))], expr.deep_clone())])
                return Fix([Edit(target, before=[*prelude, bind]),
                            Edit(expr, replace=to_name(name))])
        taken: set[str] = set()
        locals_: dict[str, str] = {}
        for r in reads:
            assert r.name is not None  # a read event names its attribute
            if r.name not in locals_:
                locals_[r.name] = unique_name(fn, f"{X}_{r.name}", taken)
                taken.add(locals_[r.name])
        captures = [cst.parse_statement(f"{local} = {capture_source(X, attr, reads)}") for attr, local in locals_.items()]
        edits = [Edit(target, before=[*prelude, *captures])]
        for r in reads:
            assert r.name is not None
            edits.append(Edit(r.node, replace=to_name(locals_[r.name])))
        return Fix(edits)

    @staticmethod
    def _one_expression(ctx: FileContext, reads: list[Event]) -> tuple[cst.BaseExpression, Event] | None:
        """The smallest dict/tuple/list/set/f-string/constructor call holding every read."""
        statement = reads[0].statement
        if any(r.statement is not statement for r in reads):
            return None
        ancestors = [reads[0].node, *ctx.ancestors(reads[0].node)]
        for node in ancestors:
            if node is statement:
                return None
            if not isinstance(node, (cst.Dict, cst.Tuple, cst.List, cst.Set, cst.FormattedString, cst.Call)):
                continue
            if isinstance(node, cst.Call) and not _constructor(node):
                continue
            if all(any(a is node for a in ctx.ancestors(r.node)) or r.node is node for r in reads):
                return node, reads[0]  # type: ignore[return-value]
        return None


def _constructed(value) -> bool:
    """``Name(...)``/``mod.Name(...)`` with a capitalised name: an object created here."""
    if not isinstance(value, cst.Call):
        return False
    func = value.func
    name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
    return name[:1].isupper()


def _constructor(call: cst.Call) -> bool:
    name = call.func.attr.value if isinstance(call.func, cst.Attribute) else call.func.value if isinstance(call.func, cst.Name) else ""
    return name[:1].isupper() or name in ("dict", "tuple", "list", "set", "frozenset")


def _sole_expression(holder: Event, expr: cst.CSTNode) -> bool:
    """Is ``expr`` a whole expression statement (moving it would leave a bare name)?"""
    stmt = holder.statement
    return isinstance(stmt, cst.SimpleStatementLine) and any(isinstance(s, cst.Expr) and s.value is expr for s in stmt.body)
