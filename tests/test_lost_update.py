"""SQF012 beyond its examples: what keeps it silent (anything that may save the instance, or
a read that raises first), what it still reports, and its place beside the other rules."""

from __future__ import annotations

import textwrap

import pytest

from codemods.config import Config
from codemods.engine import fix_text
from codemods.passes.lost_update import LostUpdate

BORROW = '''
from contextlib import contextmanager

from app.db import SessionLocal

shared = SessionLocal()


@contextmanager
def borrowed():
    yield shared


@contextmanager
def closed_on_error():
    session = SessionLocal()
    try:
        yield session
    except Exception:
        session.close()
        raise


@contextmanager
def scoped_block():
    with SessionLocal() as session:
        yield session
'''
PROJECT = {**LostUpdate.example_project, "app/borrow.py": BORROW}

HEADER = '''
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import Message, SessionLocal, User, engine, get_db
'''


def _findings(body: str, select: tuple[str, ...] | None = ("SQF012",)):
    source = HEADER + "\n\n" + textwrap.dedent(body).lstrip("\n")
    config = Config(root="/p", select=select) if select else Config(root="/p")
    result = fix_text(source, config, project=PROJECT, path="app/example.py")
    assert result.error is None
    return result.findings


REPORTED = {
    "a project context manager that closes the session it yields (`finally: close()`)": '''
        def rename(user_id: int, name: str) -> None:
            with get_db() as session:
                user = session.get(User, user_id)
            user.name = name
        ''',
    "a project context manager that yields inside the with-block opening the session": '''
        from app.borrow import scoped_block


        def rename(user_id: int, name: str) -> None:
            with scoped_block() as session:
                user = session.get(User, user_id)
            user.name = name
        ''',
    "a new instance added and committed in the block, changed after it": '''
        def create(name: str) -> None:
            with Session(engine) as session:
                user = User(name=name)
                session.add(user)
                session.commit()
            user.name = name.title()
        ''',
    "expunge_all() detaches what the session holds": '''
        def rename(session: Session, user_id: int, name: str) -> None:
            user = session.get(User, user_id)
            session.expunge_all()
            user.name = name
            session.commit()
        ''',
    "an augmented assignment on an instance nothing expired": '''
        def touch(user_id: int) -> None:
            with Session(engine) as session:
                user = session.get(User, user_id)
            user.name += "!"
        ''',
    "a None guard and a read of another column do not save it": '''
        def rename(user_id: int, name: str) -> None:
            with Session(engine) as session:
                user = session.get(User, user_id)
            if user is None:
                return
            print(user.id)
            user.name = name
        ''',
    "each instance of a list loaded in the block, changed in a loop after it": '''
        def rename_all(name: str) -> None:
            with Session(engine) as session:
                users = session.scalars(select(User)).all()
            for user in users:
                user.name = name
            print(len(users))
        ''',
    "changed in the handler of an error raised inside the block (the block closed the session)": '''
        def process(user_id: int) -> None:
            try:
                with Session(engine) as session:
                    user = session.get(User, user_id)
                    session.commit()
                    work(user_id)
            except RuntimeError:
                user.name = "failed"
        ''',
    "a set the function built is added to afterwards": '''
        def rename_all(ids: list, name: str) -> None:
            seen = set()
            for user_id in ids:
                with Session(engine) as session:
                    user = session.get(User, user_id)
                user.name = name
                seen.add(user_id)
        ''',
    "only a newly constructed instance is added afterwards": '''
        def rename(user_id: int, name: str) -> None:
            with Session(engine) as session:
                user = session.get(User, user_id)
            user.name = name
            with Session(engine) as session:
                session.add(Message(content="renamed"))
                session.commit()
        ''',
}

LEFT_ALONE = {
    "the list is returned after the loop changed its instances": '''
        def rename_all(name: str) -> list:
            with Session(engine) as session:
                users = session.scalars(select(User)).all()
            for user in users:
                user.name = name
            return users
        ''',
    "rows, not instances: `execute(...).all()` without `scalars()`": '''
        def rename_all(name: str) -> None:
            with Session(engine) as session:
                rows = session.execute(select(User)).all()
            for row in rows:
                row.name = name
        ''',
    "a project context manager that yields a session and does not close it": '''
        from app.borrow import borrowed


        def rename(user_id: int, name: str) -> None:
            with borrowed() as session:
                user = session.get(User, user_id)
            user.name = name
        ''',
    "a project context manager that closes the session only on an error": '''
        from app.borrow import closed_on_error


        def rename(user_id: int, name: str) -> None:
            with closed_on_error() as session:
                user = session.get(User, user_id)
            user.name = name
        ''',
    "stored in a container inside the block: its holder may save it": '''
        def rename(user_id: int, name: str, pending: list) -> None:
            with Session(engine) as session:
                user = session.get(User, user_id)
                pending.append(user)
            user.name = name
        ''',
    "used by a nested function": '''
        def rename(user_id: int, name: str):
            with Session(engine) as session:
                user = session.get(User, user_id)
            user.name = name
            return lambda: user
        ''',
    "a method of the instance is called: it may add itself to a session": '''
        def rename(user_id: int, name: str) -> None:
            with Session(engine) as session:
                user = session.get(User, user_id)
            user.name = name
            user.save()
        ''',
    "the session name is bound to another session before the close": '''
        def rename(user_id: int, name: str) -> None:
            session = SessionLocal()
            user = session.get(User, user_id)
            session = SessionLocal()
            session.close()
            user.name = name
        ''',
    "expunged to move it to another session, merged there, then changed": '''
        def reassign(session: Session, user_id: int, name: str) -> None:
            user = session.get(User, user_id)
            session.expunge(user)
            with Session(engine) as other:
                user = other.merge(user)
                user.name = name
                other.commit()
        ''',
    "the name is bound twice": '''
        def rename(user_id: int, name: str) -> None:
            with Session(engine) as session:
                user = session.get(User, user_id)
            user.name = name
            with Session(engine) as session:
                user = session.get(User, user_id)
                session.commit()
        ''',
    "the change is on the other branch of the if that expunges": '''
        def rename(session: Session, user_id: int, name: str, keep: bool) -> None:
            user = session.get(User, user_id)
            if keep:
                session.expunge(user)
            else:
                user.name = name
            session.commit()
        ''',
    "added again at the top of the loop that closes the session": '''
        def rename(session: Session, user_id: int, names: list) -> None:
            user = session.get(User, user_id)
            for name in names:
                session.add(user)
                session.commit()
                session.close()
                user.name = name
        ''',
    "an augmented assignment on an instance the commit expired: it raises, nothing is lost": '''
        def touch(user_id: int) -> None:
            with Session(engine) as session:
                user = session.get(User, user_id)
                session.commit()
            user.name += "!"
        ''',
    "a constructed instance added but never flushed: the whole insert is what is lost": '''
        def create(name: str) -> None:
            with Session(engine) as session:
                user = User(name=name)
                session.add(user)
            user.name = name.title()
        ''',
    "a loaded relationship's owner: the change goes through a relationship, not a column": '''
        def attach(user_id: int, message: Message) -> None:
            with Session(engine) as session:
                user = session.get(User, user_id)
            user.posts = [message]
        ''',
    "a global: another function may save it": '''
        def rename(user_id: int, name: str) -> None:
            global user
            with Session(engine) as session:
                user = session.get(User, user_id)
            user.name = name
        ''',
}


@pytest.mark.parametrize("body", REPORTED.values(), ids=REPORTED.keys())
def test_reported(body):
    found = _findings(body)
    assert [f.code for f in found] == ["SQF012"]
    assert "a lost update" in found[0].message


@pytest.mark.parametrize("body", LEFT_ALONE.values(), ids=LEFT_ALONE.keys())
def test_left_alone(body):
    assert _findings(body) == []


def test_the_finding_is_on_the_first_change_and_names_every_changed_column():
    found = _findings('''
        def rename(session: Session, user_id: int, name: str) -> None:
            user = session.get(User, user_id)
            session.close()
            user.name = name
            user.id = 7
        ''')
    assert len(found) == 1
    assert "`user.name`, `user.id` are changed after `user` left its session (`session.close()` at line 10)" \
        in found[0].message
    assert found[0].line == 11 and not found[0].fixable


def test_one_bug_one_finding_beside_the_rules_that_report_the_read():
    """Loaded in a block that commits, read and changed after it: the read raises
    DetachedInstanceError first. Another rule reports that; SQF012 stays silent, with every
    rule on and alone."""
    body = '''
        def rename(user_id: int, name: str) -> str:
            with Session(engine) as session:
                user = session.get(User, user_id)
                session.commit()
            label = user.name
            user.name = name
            return label
        '''
    codes = [f.code for f in _findings(body, select=None)]
    assert codes and "SQF012" not in codes
    assert _findings(body) == []


def test_the_index_knows_which_scopes_close_their_session():
    from codemods.engine import index_for_sources

    scoped = "from sqlalchemy.orm import scoped_session, sessionmaker\n\nRegistry = scoped_session(sessionmaker())\n"
    index = index_for_sources({**PROJECT, "app/registry.py": scoped}, Config(root="/p"))

    def closes(name: str) -> bool | None:
        scope = index.scope(name)
        return None if scope is None else scope.closes_on_exit

    assert closes("sqlalchemy.orm.Session") is True
    assert closes("app.db.SessionLocal") is True
    assert closes("app.db.get_db") is True  # `finally: session.close()` after the yield
    assert closes("app.borrow.scoped_block") is True  # the yield is inside the with-block
    assert closes("app.borrow.closed_on_error") is False  # closed in the handler only
    assert closes("app.registry.Registry") is False  # a scoped registry outlives the block


def test_sqla_fix_index_says_which_context_managers_close_their_session():
    from codemods.engine import index_for_sources
    from codemods.index.describe import describe, render_description

    data = describe(index_for_sources(PROJECT, Config(root="/p")))
    scopes = {s["name"]: s for s in data["scopes"]}
    assert scopes["app.db.get_db"]["closes_on_exit"] is True
    assert scopes["app.borrow.closed_on_error"]["closes_on_exit"] is False
    text = render_description(data)
    assert next(line for line in text.splitlines() if "app.db.get_db" in line).endswith(", closes the session on exit")
    assert "closes the session" not in next(line for line in text.splitlines() if "closed_on_error" in line)
