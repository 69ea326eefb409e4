"""SQF009 examples and leave-alone cases for a session handed, after the handler, to a
project function that queries or commits it (``restore_indexes(session)`` in a ``finally``)."""

from __future__ import annotations

from .base import Example, Valid

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
)
