"""SQF009 and a transaction block around the `try`: a failed flush there rolls back and closes
that block's transaction (a savepoint's, `with session.begin_nested():`, or the session's own,
`with session.begin():`). A use of the session later in the block raises InvalidRequestError;
the code after the block goes on (in the outer transaction, or in a new one). Each case is run
on SQLite, and the rule's verdict must be what the run shows."""

from __future__ import annotations

import textwrap

import pytest
from sqlalchemy.exc import InvalidRequestError, PendingRollbackError

from codemods.config import Config
from codemods.engine import fix_text

HEAD = '''\
from contextlib import suppress

from sqlalchemy import ForeignKey, String, create_engine, event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

engine = create_engine("sqlite://")
SyncMaker = sessionmaker(engine)


@event.listens_for(engine, "connect")
def _foreign_keys(connection, record):
    connection.execute("PRAGMA foreign_keys=ON")


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", deferrable=True, initially="DEFERRED"))
'''

# name -> the function `f()`, run after a row named "a" is saved: each adds another "a"
CASES = {
    "used after the savepoint block": '''
        def f():
            with SyncMaker() as session:
                with session.begin_nested():
                    try:
                        session.add(User(name="a"))
                        session.flush()
                    except IntegrityError:
                        pass
                return session.query(User).count()
        ''',
    "used in the block after the handler": '''
        def f():
            with SyncMaker() as session:
                with session.begin_nested():
                    try:
                        session.add(User(name="a"))
                        session.flush()
                    except IntegrityError:
                        pass
                    session.query(User).count()
                return 0
        ''',
    "used in the handler": '''
        def f():
            with SyncMaker() as session:
                with session.begin_nested():
                    try:
                        session.add(User(name="a"))
                        session.flush()
                    except IntegrityError:
                        session.query(User).count()
                return 0
        ''',
    "a new savepoint each round of a loop": '''
        def f():
            with SyncMaker() as session:
                for name in ("a", "b"):
                    with session.begin_nested():
                        try:
                            session.add(User(name=name))
                            session.flush()
                        except IntegrityError:
                            pass
                return session.query(User).count()
        ''',
    "a loop in the savepoint block": '''
        def f():
            with SyncMaker() as session:
                with session.begin_nested():
                    for name in ("a", "b"):
                        try:
                            session.add(User(name=name))
                            session.flush()
                        except IntegrityError:
                            pass
                return 0
        ''',
    "suppress, used after the savepoint block": '''
        def f():
            with SyncMaker() as session:
                with session.begin_nested():
                    session.add(User(name="a"))
                    with suppress(IntegrityError):
                        session.flush()
                return session.query(User).count()
        ''',
    "suppress, used in the block": '''
        def f():
            with SyncMaker() as session:
                with session.begin_nested():
                    session.add(User(name="a"))
                    with suppress(IntegrityError):
                        session.flush()
                    session.query(User).count()
                return 0
        ''',
    "a rollback in the handler, used in the block": '''
        def f():
            with SyncMaker() as session:
                with session.begin_nested():
                    try:
                        session.add(User(name="a"))
                        session.flush()
                    except IntegrityError:
                        session.rollback()
                    session.query(User).count()
                return 0
        ''',
    "the savepoint's own rollback in the handler, used in the block": '''
        def f():
            with SyncMaker() as session:
                with session.begin_nested() as nested:
                    try:
                        session.add(User(name="a"))
                        session.flush()
                    except IntegrityError:
                        nested.rollback()
                    session.query(User).count()
                return 0
        ''',
    "a savepoint and suppress in one with, used after it": '''
        def f():
            with SyncMaker() as session:
                with session.begin_nested(), suppress(IntegrityError):
                    session.add(User(name="a"))
                    session.flush()
                return session.query(User).count()
        ''',
    "a commit in the block that fails at COMMIT (a deferred constraint)": '''
        def f():
            with SyncMaker() as session:
                with session.begin_nested():
                    try:
                        session.add(Note(id=1, user_id=999))
                        session.commit()
                    except IntegrityError:
                        pass
                return session.query(User).count()
        ''',
    "transaction block: used after it": '''
        def f():
            with SyncMaker() as session:
                with session.begin():
                    try:
                        session.add(User(name="a"))
                        session.flush()
                    except IntegrityError:
                        pass
                return session.query(User).count()
        ''',
    "transaction block: used in it after the handler": '''
        def f():
            with SyncMaker() as session:
                with session.begin():
                    try:
                        session.add(User(name="a"))
                        session.flush()
                    except IntegrityError:
                        pass
                    return session.query(User).count()
        ''',
    "transaction block: rolled back in the handler, used in it": '''
        def f():
            with SyncMaker() as session:
                with session.begin():
                    try:
                        session.add(User(name="a"))
                        session.flush()
                    except IntegrityError:
                        session.rollback()
                    return session.query(User).count()
        ''',
    "transaction block: a failed commit, used after it": '''
        def f():
            with SyncMaker() as session:
                with session.begin():
                    try:
                        session.add(User(name="a"))
                        session.commit()
                    except IntegrityError:
                        pass
                return session.query(User).count()
        ''',
    "transaction block: a failed commit, used in it": '''
        def f():
            with SyncMaker() as session, session.begin():
                try:
                    session.add(User(name="a"))
                    session.commit()
                except IntegrityError:
                    pass
                return session.query(User).count()
        ''',
    "transaction block: a sessionmaker's begin(), used in it": '''
        def f():
            with SyncMaker.begin() as session:
                try:
                    session.add(User(name="a"))
                    session.flush()
                except IntegrityError:
                    pass
                return session.query(User).count()
        ''',
    "transaction block: with suppress in one with, used after it": '''
        def f():
            with SyncMaker() as session:
                with session.begin(), suppress(IntegrityError):
                    session.add(User(name="a"))
                    session.flush()
                return session.query(User).count()
        ''',
    "no savepoint": '''
        def f():
            with SyncMaker() as session:
                try:
                    session.add(User(name="a"))
                    session.flush()
                except IntegrityError:
                    pass
                return session.query(User).count()
        ''',
}


def _source(name: str) -> str:
    return HEAD + "\n\n" + textwrap.dedent(CASES[name])


def _raises(source: str) -> type[Exception] | None:
    """Run ``f()`` of ``source`` after a row named "a" is saved: the SQLAlchemy error it
    raises, or None."""
    namespace: dict = {}
    exec(compile(source, "<case>", "exec", dont_inherit=True), namespace)  # (no postponed annotations)
    namespace["Base"].metadata.create_all(namespace["engine"])
    with namespace["SyncMaker"]() as session:
        session.add(namespace["User"](name="a"))
        session.commit()
    try:
        namespace["f"]()
    except (InvalidRequestError, PendingRollbackError) as exc:
        return type(exc)
    finally:
        namespace["engine"].dispose()
    return None


@pytest.mark.parametrize("name", list(CASES))
def test_a_handler_in_a_transaction_block_is_reported_where_the_run_fails(name):
    source = _source(name)
    raised = _raises(source)
    findings = fix_text(source, Config(select=("SQF009",))).findings
    assert bool(findings) is (raised is not None), (raised, [f.message for f in findings])
    if raised is None:
        return
    (finding,) = findings
    callee = next((c for c in ("session.begin_nested", "SyncMaker.begin", "session.begin") if c + "()" in source), None)
    if "commit" in name and callee == "session.begin_nested":
        # a commit is the outer transaction's: judged as without a savepoint (the session
        # needs a rollback; SQLAlchemy says so with another InvalidRequestError here)
        assert "PendingRollbackError" in finding.message and issubclass(raised, InvalidRequestError)
        return
    assert raised.__name__ in finding.message
    if callee is not None:  # the block's closed transaction: no rollback to add
        assert f"`with {callee}():` block of line" in finding.message
        assert not finding.fixable


def test_a_begin_of_something_else_is_not_taken_for_the_sessions_transaction_block():
    """`with uow.begin() as session:` of a unit of work of the project's own (not a session
    factory) may keep its own transaction: SQF009 judges the try inside it as without a block,
    as it does `session.begin()` given arguments (older SQLAlchemy's subtransactions)."""
    source = HEAD + textwrap.dedent('''

        class UnitOfWork:
            def begin(self):
                return SyncMaker()


        uow = UnitOfWork()


        def f():
            with uow.begin() as session:
                try:
                    session.add(User(name="a"))
                    session.flush()
                except IntegrityError:
                    pass
                return session.query(User).count()
        ''')
    findings = fix_text(source, Config(select=("SQF009",))).findings
    assert all("block of line" not in f.message for f in findings)
