"""SQF009 examples and leave-alone cases for a session handed, after the handler, to a
project function that queries or commits it (``reindex(session)`` in a ``finally``); a
handler that raises only under a condition; a scope that hands back the session it is given
(``with given_or_new(session) as session:``); a loop left by a ``break`` after the try."""

from __future__ import annotations

from .base import Example, Valid

# A scope that yields the session it is given, or a new one when given none.
_SCOPES = '''
from contextlib import contextmanager

from sqlalchemy.orm import Session

from app.db import SessionLocal


@contextmanager
def given_or_new(session: Session | None = None):
    if session is not None:
        yield session
    else:
        with SessionLocal() as session:
            yield session
'''

# A context manager that opens a session from the factory it is handed (nothing in the
# class says that factory makes sessions), and a search index with a look-alike interface.
_WRAPPERS = '''
class DbSession:
    def __init__(self, maker):
        self._maker = maker
        self._session = None

    def __enter__(self):
        self._session = self._maker()
        return self._session

    def __exit__(self, *exc):
        if self._session is not None:
            self._session.close()


class SearchIndex:
    def __init__(self, path: str) -> None:
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def query(self, term: str) -> list[str]:
        return [term]

    def commit(self) -> None:
        pass
'''

PROJECT = {"app/scopes.py": _SCOPES, "app/wrappers.py": _WRAPPERS}

EXAMPLES = (
    Example(
        title="the finally block hands the failed session to a function that queries it",
        before='''
        from sqlalchemy import text
        from sqlalchemy.exc import OperationalError

        from app.db import SessionLocal


        def reindex(session, table: str) -> None:
            session.execute(text(f"reindex table {table}"))
            session.commit()


        def purge(table: str) -> None:
            with SessionLocal() as session:
                try:
                    session.execute(text(f"delete from {table}"))
                    session.commit()
                except OperationalError as error:
                    print(f"purge of {table} failed: {error}")
                finally:
                    reindex(session, table)
        ''',
        after='''
        from sqlalchemy import text
        from sqlalchemy.exc import OperationalError

        from app.db import SessionLocal


        def reindex(session, table: str) -> None:
            session.execute(text(f"reindex table {table}"))
            session.commit()


        def purge(table: str) -> None:
            with SessionLocal() as session:
                try:
                    session.execute(text(f"delete from {table}"))
                    session.commit()
                except OperationalError as error:
                    session.rollback()
                    print(f"purge of {table} failed: {error}")
                finally:
                    reindex(session, table)
        ''',
    ),
    Example(
        title="a handler that re-raises only some errors: the others go on to the next round",
        before='''
        from sqlalchemy.exc import IntegrityError

        from app.db import SessionLocal, User


        def import_users(names: list[str]) -> None:
            with SessionLocal() as session:
                for name in names:
                    session.add(User(name=name))
                    try:
                        session.commit()
                    except IntegrityError as error:
                        if "UNIQUE" not in str(error):
                            raise
                        print(f"skipped {name}")
        ''',
        after='''
        from sqlalchemy.exc import IntegrityError

        from app.db import SessionLocal, User


        def import_users(names: list[str]) -> None:
            with SessionLocal() as session:
                for name in names:
                    session.add(User(name=name))
                    try:
                        session.commit()
                    except IntegrityError as error:
                        session.rollback()
                        if "UNIQUE" not in str(error):
                            raise
                        print(f"skipped {name}")
        ''',
    ),
    Example(
        title="a scope that hands back the caller's session: the caller goes on with it",
        before='''
        from sqlalchemy.exc import OperationalError
        from sqlalchemy.orm import Session

        from app.db import User
        from app.scopes import given_or_new


        def rename(user_id: int, name: str, session: Session | None = None) -> None:
            with given_or_new(session) as session:
                user = session.get(User, user_id)
                user.name = name
                try:
                    session.commit()
                except OperationalError as error:
                    print(f"rename failed: {error}")
        ''',
        after='''
        from sqlalchemy.exc import OperationalError
        from sqlalchemy.orm import Session

        from app.db import User
        from app.scopes import given_or_new


        def rename(user_id: int, name: str, session: Session | None = None) -> None:
            with given_or_new(session) as session:
                user = session.get(User, user_id)
                user.name = name
                try:
                    session.commit()
                except OperationalError as error:
                    session.rollback()
                    print(f"rename failed: {error}")
        ''',
    ),
    Example(
        title="a wrapper handed its factory opens the session; the block queries a model through it",
        before='''
        from sqlalchemy.exc import OperationalError

        from app.db import User
        from app.wrappers import DbSession


        def drop_guests(store) -> None:
            with DbSession(store.maker) as session:
                for user in session.query(User).filter(User.name.like("guest%")).all():
                    try:
                        session.delete(user)
                        session.commit()
                    except OperationalError as error:
                        print(f"kept a guest: {error}")
        ''',
        after='''
        from sqlalchemy.exc import OperationalError

        from app.db import User
        from app.wrappers import DbSession


        def drop_guests(store) -> None:
            with DbSession(store.maker) as session:
                for user in session.query(User).filter(User.name.like("guest%")).all():
                    try:
                        session.delete(user)
                        session.commit()
                    except OperationalError as error:
                        session.rollback()
                        print(f"kept a guest: {error}")
        ''',
    ),
)

VALID = (
    Valid(
        '''
        from sqlalchemy import text
        from sqlalchemy.exc import OperationalError

        from app.db import SessionLocal


        def report(session, table: str) -> None:
            print(f"{table} done")


        def repair(session) -> None:
            session.rollback()
            session.execute(text("select 1"))


        def purge(table: str) -> None:
            with SessionLocal() as session:
                try:
                    session.execute(text(f"delete from {table}"))
                    session.commit()
                except OperationalError as error:
                    print(f"purge of {table} failed: {error}")
                report(session, table)
                repair(session)
        ''',
        "the session handed to a function that never uses it, and to one that rolls it back "
        "before its query",
    ),
    Valid(
        '''
        from sqlalchemy.exc import IntegrityError

        from app.db import SessionLocal, User


        def import_first(names: list[str]) -> None:
            with SessionLocal() as session:
                for name in names:
                    session.add(User(name=name))
                    try:
                        session.commit()
                    except IntegrityError as error:
                        if "UNIQUE" in str(error):
                            raise ValueError(f"{name} is taken") from error
                        else:
                            raise
                    print(f"imported {name}")
        ''',
        "the handler raises on every path (each branch of its `if`)",
    ),
    Valid(
        '''
        from sqlalchemy.exc import IntegrityError

        from app.db import SessionLocal, User


        def import_one(names: list[str]) -> None:
            with SessionLocal() as session:
                for name in names:
                    session.add(User(name=name))
                    try:
                        session.commit()
                    except IntegrityError as error:
                        print(f"skipped {name}: {error}")
                    break
        ''',
        "a `break` after the try leaves the loop: no next round, and the `with` block closes the session",
    ),
    Valid(
        '''
        import logging

        from sqlalchemy import select
        from sqlalchemy.orm.exc import StaleDataError

        from app.db import SessionLocal, User

        log = logging.getLogger(__name__)


        def rename(user_id: int, name: str) -> None:
            with SessionLocal() as session:
                user = session.scalars(select(User).where(User.id == user_id)).one()
                user.name = name
                renamed = user
                for attempt in range(3):
                    try:
                        session.commit()
                        break
                    except StaleDataError:
                        log.warning(f"conflict renaming {renamed}, retry {attempt}")
                        session.rollback()
        ''',
        "an instance of a model with no `__str__` of its own formatted in the handler before the "
        "rollback: the default formatting reads no column, so nothing loads (a read such as "
        "`renamed.id` there would)",
    ),
    Valid(
        '''
        from app.wrappers import SearchIndex


        def reindex(path: str, terms: list[str]) -> None:
            with SearchIndex(path) as index:
                for term in terms:
                    index.query(term)
                    try:
                        index.commit()
                    except Exception as error:
                        print(f"{term}: {error}")
        ''',
        "a with-target that is queried and committed, but never with a model: nothing says it "
        "is a session",
    ),
)
