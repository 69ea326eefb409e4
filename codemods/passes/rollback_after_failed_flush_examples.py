"""SQF009's example project, examples and valid cases: what `sqla-fix explain SQF009` shows and
what the tests run on the pass (tests/test_passes.py)."""

from __future__ import annotations

from .base import Example, Valid
from .examples import FLASK, SYNC_DB

_DEPS = '''
from collections.abc import Iterator

from sqlalchemy.orm import Session

from app.db import SessionLocal


def get_db() -> Iterator[Session]:
    db = SessionLocal()
    try:
        yield db
        db.commit()
    finally:
        db.close()


def get_read_db() -> Iterator[Session]:
    with SessionLocal() as db:
        yield db
'''


# Services that commit the session they are given: one lets a failed commit reach its caller
# (it handles only a duplicate), the other rolls back every failure before re-raising it.
_SERVICES = '''
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import User


def create_user(*, db_session: Session, name: str) -> User:
    user = User(name=name)
    db_session.add(user)
    try:
        db_session.commit()
    except IntegrityError:
        db_session.rollback()
        raise
    return user


def create_user_or_roll_back(db_session: Session, name: str) -> None:
    try:
        db_session.add(User(name=name))
        db_session.commit()
    except Exception:
        db_session.rollback()
        raise
'''


# A class attribute set to a scoped registry at start-up, and a model that formats itself.
_RECORDS = '''
from sqlalchemy.orm import Mapped, mapped_column, scoped_session, sessionmaker

from app.db import Base, engine


class Database:
    db_session = None

    @staticmethod
    def init() -> None:
        Database.db_session = scoped_session(sessionmaker(bind=engine))


class Tag(Base):
    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str]

    def __str__(self) -> str:
        return f"tag {self.label}"
'''


# A generic repository built around the session it is given, with a class method that builds one.
_REPOSITORY = '''
from typing import Self

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import User


class Repository[M]:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> Self:
        return cls(session)

    async def create(self, obj: M, *, flush: bool = False) -> M:
        self.session.add(obj)
        if flush:
            await self.session.flush()
        return obj

    async def one_or_none(self, statement) -> M | None:
        return (await self.session.execute(statement)).scalar_one_or_none()


class UserRepository(Repository[User]):
    async def by_name(self, name: str) -> User | None:
        return await self.one_or_none(select(User).where(User.name == name))
'''


_MIDDLEWARES = '''
from aiogram import BaseMiddleware
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

pool = async_sessionmaker(create_async_engine("sqlite+aiosqlite://"))


class NoteSession(BaseMiddleware):
    async def __call__(self, handler, event, data):
        async with pool() as note_session:
            data["note_session"] = note_session
            return await handler(event, data)


class TxSession(BaseMiddleware):
    async def __call__(self, handler, event, data):
        async with pool() as tx_session:
            data["tx_session"] = tx_session
            result = await handler(event, data)
            await tx_session.commit()
            return result
'''


PROJECT = {"app/__init__.py": "", "app/db.py": SYNC_DB, "app/deps.py": _DEPS, "app/ext.py": FLASK,
                       "app/services.py": _SERVICES, "app/records.py": _RECORDS,
                       "app/repo.py": _REPOSITORY, "app/middlewares.py": _MIDDLEWARES}

def nested_handler(between: str = "") -> str:
    """A failed commit one call away caught by a handler nested in an `except` that then
    re-raises, with ``between`` run before that `raise` (its tests: tests/test_handler_leaves.py)."""
    return _NESTED_HANDLER.replace("{between}", between)


_NESTED_HANDLER = '''
from sqlalchemy.orm import Session

from app.db import User


def record_failure(session: Session, name: str) -> None:
    session.add(User(name=name))
    session.commit()


def provision(session: Session, names: list[str]) -> None:
    try:
        for name in names:
            create_account(name)
    except Exception:
        try:
            record_failure(session, "failed")
        except Exception:
            log.exception("cannot record the failure")
        {between}
        raise
'''


EXAMPLES = (
        Example(
            title="a duplicate skipped in a loop: the next round raises PendingRollbackError",
            before='''
            from sqlalchemy.exc import IntegrityError

            from app.db import SessionLocal, User


            def import_users(names: list[str]) -> None:
                with SessionLocal() as session:
                    for name in names:
                        session.add(User(name=name))
                        try:
                            session.commit()
                        except IntegrityError:
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
                        except IntegrityError:
                            session.rollback()
                            print(f"skipped {name}")
            ''',
        ),
        Example(
            title="a handler that breaks out of the loop: the code after the loop raises PendingRollbackError",
            before='''
            from sqlalchemy.exc import IntegrityError

            from app.db import SessionLocal, User


            def import_until_duplicate(names: list[str]) -> int:
                with SessionLocal() as session:
                    for name in names:
                        try:
                            session.add(User(name=name))
                            session.commit()
                        except IntegrityError:
                            break
                    return session.query(User).count()
            ''',
            after='''
            from sqlalchemy.exc import IntegrityError

            from app.db import SessionLocal, User


            def import_until_duplicate(names: list[str]) -> int:
                with SessionLocal() as session:
                    for name in names:
                        try:
                            session.add(User(name=name))
                            session.commit()
                        except IntegrityError:
                            session.rollback()
                            break
                    return session.query(User).count()
            ''',
        ),
        Example(
            title="async: the caller keeps the session",
            before='''
            from sqlalchemy.exc import IntegrityError
            from sqlalchemy.ext.asyncio import AsyncSession


            async def create(session: AsyncSession, user) -> bool:
                session.add(user)
                try:
                    await session.commit()
                except IntegrityError:
                    return False
                return True
            ''',
            after='''
            from sqlalchemy.exc import IntegrityError
            from sqlalchemy.ext.asyncio import AsyncSession


            async def create(session: AsyncSession, user) -> bool:
                session.add(user)
                try:
                    await session.commit()
                except IntegrityError:
                    await session.rollback()
                    return False
                return True
            ''',
        ),
        Example(
            title="a repository's flush: the rollback would discard earlier work (unsafe fix)",
            before='''
            from sqlalchemy.exc import IntegrityError
            from sqlalchemy.orm import Session


            class Repository:
                def __init__(self, session: Session) -> None:
                    self.session = session

                def try_insert(self, row) -> bool:
                    self.session.add(row)
                    try:
                        self.session.flush()
                    except IntegrityError: return False
                    return True
            ''',
            after='''
            from sqlalchemy.exc import IntegrityError
            from sqlalchemy.orm import Session


            class Repository:
                def __init__(self, session: Session) -> None:
                    self.session = session

                def try_insert(self, row) -> bool:
                    self.session.add(row)
                    try:
                        self.session.flush()
                    except IntegrityError:
                        self.session.rollback()
                        return False
                    return True
            ''',
        ),
        Example(
            title="a broad handler around more than the commit (unsafe fix)",
            before='''
            from sqlalchemy.orm import Session


            def refresh_all(session: Session, cases) -> None:
                for case in cases:
                    try:
                        case.cost = compute_cost(case)
                        session.commit()
                    except Exception as e:
                        log.exception(e)
            ''',
            after='''
            from sqlalchemy.orm import Session


            def refresh_all(session: Session, cases) -> None:
                for case in cases:
                    try:
                        case.cost = compute_cost(case)
                        session.commit()
                    except Exception as e:
                        session.rollback()
                        log.exception(e)
            ''',
        ),
        Example(
            title="a context manager that commits after its yield",
            before='''
            from sqlalchemy.exc import IntegrityError
            from app.db import get_db


            def create(user) -> None:
                with get_db() as session:
                    session.add(user)
                    try:
                        session.commit()
                    except IntegrityError:
                        log.warning("duplicate")
            ''',
            after='''
            from sqlalchemy.exc import IntegrityError
            from app.db import get_db


            def create(user) -> None:
                with get_db() as session:
                    session.add(user)
                    try:
                        session.commit()
                    except IntegrityError:
                        session.rollback()
                        log.warning("duplicate")
            ''',
        ),
        Example(
            title="a FastAPI provider that commits after the endpoint returns",
            before='''
            from fastapi import Depends
            from sqlalchemy.exc import IntegrityError
            from sqlalchemy.orm import Session

            from app.db import User
            from app.deps import get_db


            def sign_up(name: str, db: Session = Depends(get_db)) -> dict:
                db.add(User(name=name))
                try:
                    db.commit()
                except IntegrityError:
                    return {"error": "name taken"}
                return {"ok": True}
            ''',
            after='''
            from fastapi import Depends
            from sqlalchemy.exc import IntegrityError
            from sqlalchemy.orm import Session

            from app.db import User
            from app.deps import get_db


            def sign_up(name: str, db: Session = Depends(get_db)) -> dict:
                db.add(User(name=name))
                try:
                    db.commit()
                except IntegrityError:
                    db.rollback()
                    return {"error": "name taken"}
                return {"ok": True}
            ''',
        ),
        Example(
            title="Flask-SQLAlchemy: the loop's next round",
            before='''
            from sqlalchemy.exc import IntegrityError
            from app.ext import db


            def create_groups(names: list[str]) -> None:
                for name in names:
                    try:
                        db.session.add(Group(name=name))
                        db.session.commit()
                    except IntegrityError:
                        print(f"could not create {name}")
            ''',
            after='''
            from sqlalchemy.exc import IntegrityError
            from app.ext import db


            def create_groups(names: list[str]) -> None:
                for name in names:
                    try:
                        db.session.add(Group(name=name))
                        db.session.commit()
                    except IntegrityError:
                        db.session.rollback()
                        print(f"could not create {name}")
            ''',
        ),
        Example(
            title="a consumer loop whose service commits the session it is given (unsafe fix)",
            before='''
            from app.services import create_user


            def consume(db_session, messages) -> None:
                for message in messages:
                    try:
                        create_user(db_session=db_session, name=message["name"])
                    except Exception as e:
                        log.exception(e)
            ''',
            after='''
            from app.services import create_user


            def consume(db_session, messages) -> None:
                for message in messages:
                    try:
                        create_user(db_session=db_session, name=message["name"])
                    except Exception as e:
                        db_session.rollback()
                        log.exception(e)
            ''',
        ),
        Example(
            title="the handler logs the object before it rolls back: the read raises PendingRollbackError",
            before='''
            from sqlalchemy.exc import IntegrityError

            from app.db import SessionLocal, User


            def rename(user_id: int, name: str) -> None:
                with SessionLocal() as session:
                    user = session.get(User, user_id)
                    user.name = name
                    try:
                        session.commit()
                    except IntegrityError:
                        log.warning("name taken: %s", user.name)
                        session.rollback()
            ''',
            after='''
            from sqlalchemy.exc import IntegrityError

            from app.db import SessionLocal, User


            def rename(user_id: int, name: str) -> None:
                with SessionLocal() as session:
                    user = session.get(User, user_id)
                    user.name = name
                    try:
                        session.commit()
                    except IntegrityError:
                        session.rollback()
                        log.warning("name taken: %s", user.name)
            ''',
        ),
        Example(
            title="a model's own method formats itself before the rollback",
            before='''
            from app.records import Database, Tag


            class Label(Tag):
                def save(self) -> None:
                    try:
                        Database.db_session.commit()
                    except Exception:
                        log.exception("cannot save %s", self)
                        Database.db_session.rollback()
                        raise
            ''',
            after='''
            from app.records import Database, Tag


            class Label(Tag):
                def save(self) -> None:
                    try:
                        Database.db_session.commit()
                    except Exception:
                        Database.db_session.rollback()
                        log.exception("cannot save %s", self)
                        raise
            ''',
        ),
        Example(
            title="a helper swallows a failed commit of the session its caller loops with",
            before='''
            from sqlalchemy.orm import Session

            from app.db import SessionLocal, User


            def touch(session: Session, user_id: int) -> None:
                try:
                    session.get(User, user_id).name = "seen"
                    session.commit()
                except Exception:
                    log.exception("could not mark %s", user_id)


            def touch_all(user_ids: list[int]) -> None:
                with SessionLocal() as session:
                    for user_id in user_ids:
                        touch(session, user_id)
            ''',
            after='''
            from sqlalchemy.orm import Session

            from app.db import SessionLocal, User


            def touch(session: Session, user_id: int) -> None:
                try:
                    session.get(User, user_id).name = "seen"
                    session.commit()
                except Exception:
                    session.rollback()
                    log.exception("could not mark %s", user_id)


            def touch_all(user_ids: list[int]) -> None:
                with SessionLocal() as session:
                    for user_id in user_ids:
                        touch(session, user_id)
            ''',
        ),
        Example(
            title="a repository flushes; the handler queries through it to find the row that won the race",
            before='''
            from sqlalchemy.exc import IntegrityError
            from sqlalchemy.ext.asyncio import AsyncSession

            from app.db import User
            from app.repo import UserRepository


            async def get_or_create(session: AsyncSession, name: str) -> User:
                users = UserRepository.from_session(session)
                try:
                    return await users.create(User(name=name), flush=True)
                except IntegrityError:
                    existing = await users.by_name(name)
                    if existing is None:
                        raise
                    return existing
            ''',
            after='''
            from sqlalchemy.exc import IntegrityError
            from sqlalchemy.ext.asyncio import AsyncSession

            from app.db import User
            from app.repo import UserRepository


            async def get_or_create(session: AsyncSession, name: str) -> User:
                users = UserRepository.from_session(session)
                try:
                    return await users.create(User(name=name), flush=True)
                except IntegrityError:
                    await session.rollback()
                    existing = await users.by_name(name)
                    if existing is None:
                        raise
                    return existing
            ''',
        ),
            Example(
            title="a handler's session from a middleware that commits after it",
            before='''
            from aiogram import Router
            from aiogram.types import Message
            from sqlalchemy.ext.asyncio import AsyncSession

            from app.db import User

            router = Router()


            @router.message()
            async def register(message: Message, tx_session: AsyncSession) -> None:
                tx_session.add(User(name=message.text))
                try:
                    await tx_session.commit()
                except Exception:
                    await message.answer("that name is taken")
            ''',
            after='''
            from aiogram import Router
            from aiogram.types import Message
            from sqlalchemy.ext.asyncio import AsyncSession

            from app.db import User

            router = Router()


            @router.message()
            async def register(message: Message, tx_session: AsyncSession) -> None:
                tx_session.add(User(name=message.text))
                try:
                    await tx_session.commit()
                except Exception:
                    await tx_session.rollback()
                    await message.answer("that name is taken")
            ''',
        ),
        Example(
            title="`suppress(IntegrityError)` swallows the failed commit, and the caller goes on",
            before='''
            from contextlib import suppress

            from sqlalchemy.exc import IntegrityError
            from sqlalchemy.ext.asyncio import AsyncSession


            async def remember_chat(session: AsyncSession, chat) -> None:
                session.add(chat)
                with suppress(IntegrityError):
                    await session.commit()


            async def on_start(session: AsyncSession, chat, user) -> None:
                await remember_chat(session, chat)
                session.add(user)
                await session.commit()
            ''',
        ),
)

VALID = (
        Valid(
            '''
            from sqlalchemy.exc import IntegrityError

            from app.db import SessionLocal, User


            def import_until_duplicate(names: list[str]) -> int:
                with SessionLocal() as session:
                    for name in names:
                        try:
                            session.add(User(name=name))
                            session.commit()
                        except IntegrityError:
                            break
                    else:
                        return session.query(User).count()
                    return -1
            ''',
            "a handler that breaks out of a `for` loop whose `else:` uses the session: `break` skips "
            "the `else:` clause, and nothing after the loop uses the session",
        ),
        Valid(
            '''
            from aiogram import Router
            from aiogram.types import Message
            from sqlalchemy.ext.asyncio import AsyncSession

            from app.db import User

            router = Router()


            @router.message()
            async def register(message: Message, note_session: AsyncSession) -> None:
                note_session.add(User(name=message.text))
                try:
                    await note_session.commit()
                except Exception:
                    await message.answer("that name is taken")
            ''',
            "a handler no project code calls, whose session a middleware hands in through the "
            "handler's data (`data[\"note_session\"] = note_session`) and closes as the handler "
            "returns: nothing uses the failed transaction again",
        ),
        Valid(
            '''
            from sqlalchemy.exc import IntegrityError

            from app.db import SessionLocal, User


            def add_all(names: list[str]) -> int:
                with SessionLocal() as session:
                    for name in names:
                        with session.begin_nested():
                            try:
                                session.add(User(name=name))
                                session.flush()
                            except IntegrityError:
                                log.info("%s is taken", name)
                    session.commit()
                    return session.query(User).count()
            ''',
            "each `try` is inside a savepoint block of its own: a failed flush rolls back and closes "
            "that savepoint alone, and the code after the block goes on in the outer transaction",
        ),
        Valid(
            nested_handler(),
            "the handler goes on only into the enclosing handler's `raise`, which leaves before "
            "anything uses the session again",
        ),
        Valid(
            '''
            from app.db import SessionLocal, User


            def clean_up(names: list[str]) -> None:
                try:
                    with SessionLocal() as session:
                        session.query(User).filter(User.name == "").delete()
                        session.commit()
                except Exception:
                    log.exception("cannot delete the unnamed")

                try:
                    with SessionLocal() as session:
                        session.query(User).filter(User.name == "?").delete()
                        session.commit()
                except Exception:
                    log.exception("cannot delete the unknown")

                for name in names:
                    with SessionLocal() as session:
                        try:
                            session.add(User(name=name))
                            session.commit()
                        except Exception:
                            log.exception("cannot add %s", name)
                        with SessionLocal() as session:
                            session.add(User(name=name.upper()))
                            session.commit()
            ''',
            "each `with ... as session:` block is its own session: the one whose commit failed is "
            "closed (or no longer used) before the next block's session runs",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session

            from app.db import SessionLocal, User


            def touch(session: Session, user_id: int) -> None:
                try:
                    session.get(User, user_id).name = "seen"
                    session.commit()
                except Exception:
                    log.exception("could not mark %s", user_id)


            def touch_one(user_id: int) -> None:
                with SessionLocal() as session:
                    touch(session, user_id)


            def touch_each(user_ids: list[int]) -> None:
                for user_id in user_ids:
                    with SessionLocal() as session:
                        touch(session, user_id)
            ''',
            "every caller of the helper closes its session right after the call (a new one each round): "
            "nothing uses the failed transaction",
        ),
        Valid(
            '''
            from sqlalchemy.exc import IntegrityError
            from sqlalchemy.ext.asyncio import AsyncSession

            from app.db import User
            from app.repo import UserRepository


            async def get_or_create(session: AsyncSession, name: str) -> User:
                users = UserRepository(session)
                nested = await session.begin_nested()
                try:
                    return await users.create(User(name=name), flush=True)
                except IntegrityError:
                    await nested.rollback()
                    existing = await users.by_name(name)
                    if existing is None:
                        raise
                    return existing
            ''',
            "the handler rolls back the savepoint first: the session is usable again for the query",
        ),
        Valid(
            '''
            from sqlalchemy.exc import IntegrityError
            from sqlalchemy.orm import Session


            def create(session: Session, user) -> None:
                session.add(user)
                try:
                    session.commit()
                except IntegrityError:
                    log.warning("duplicate")
                    raise
            ''',
            "the handler re-raises: the code that owns the session deals with it",
        ),
        Valid(
            '''
            from sqlalchemy.exc import IntegrityError
            from app.db import SessionLocal


            def create(user) -> bool:
                with SessionLocal() as session:
                    session.add(user)
                    try:
                        session.commit()
                    except IntegrityError:
                        return False
                return True
            ''',
            "the session's `with` scope ends right after the try: closing it discards the failed transaction",
        ),
        Valid(
            '''
            from sqlalchemy.exc import IntegrityError
            from sqlalchemy.orm import Session


            def create(session: Session, user) -> bool:
                session.add(user)
                try:
                    session.commit()
                except IntegrityError:
                    log.warning("duplicate")
                    session.rollback()
                    return False
                return True
            ''',
            "a rollback is already in the handler",
        ),
        Valid(
            '''
            from sqlalchemy.exc import IntegrityError
            from sqlalchemy.orm import Session


            def add_tags(session: Session, tags) -> None:
                for tag in tags:
                    try:
                        with session.begin_nested():
                            session.add(tag)
                            session.flush()
                    except IntegrityError:
                        pass
                session.commit()
            ''',
            "a savepoint: `begin_nested()` rolls itself back and the session goes on",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session


            def parse_all(session: Session, rows) -> None:
                for row in rows:
                    try:
                        session.add(parse(row))
                    except ValueError:
                        continue
                session.commit()
            ''',
            "no commit or flush in the try body",
        ),
        Valid(
            '''
            from sqlalchemy.exc import IntegrityError
            from sqlalchemy.orm import Session


            def create(session: Session, user) -> None:
                try:
                    session.add(user)
                    session.commit()
                except KeyError:
                    pass
            ''',
            "a handler for an error that is not a database error",
        ),
        Valid(
            '''
            from sqlalchemy.exc import IntegrityError


            def save(store, item) -> bool:
                try:
                    store.commit()
                except IntegrityError:
                    return False
                return True
            ''',
            "`store` is not known to be a session",
        ),
        Valid(
            '''
            from sqlalchemy.exc import IntegrityError
            from app.db import SessionLocal


            def create(user) -> bool:
                try:
                    with SessionLocal() as session:
                        session.add(user)
                        session.commit()
                except IntegrityError:
                    return False
                return True
            ''',
            "the session's scope sits inside the try: it is closed when the handler runs",
        ),
        Valid(
            '''
            from sqlalchemy.exc import IntegrityError
            from app.db import SessionLocal


            def create(user) -> None:
                with SessionLocal.begin() as session:
                    session.add(user)
                    try:
                        session.flush()
                    except IntegrityError:
                        log.warning("duplicate")
            ''',
            "a `begin()` block ends a failed transaction quietly when it exits",
        ),
        Valid(
            '''
            from fastapi import Depends
            from sqlalchemy.exc import IntegrityError
            from sqlalchemy.orm import Session

            from app.db import User
            from app.deps import get_read_db


            def sign_up(name: str, db: Session = Depends(get_read_db)) -> dict:
                db.add(User(name=name))
                try:
                    db.commit()
                except IntegrityError:
                    return {"error": "name taken"}
                return {"ok": True}
            ''',
            "a FastAPI provider that only closes the session: closing ends the failed transaction",
        ),
        Valid(
            '''
            from sqlalchemy.exc import IntegrityError
            from app.ext import db


            def create_group(name: str) -> None:
                try:
                    db.session.add(Group(name=name))
                    db.session.commit()
                except IntegrityError:
                    print(f"could not create {name}")
            ''',
            "Flask-SQLAlchemy's `db.session` with no later use: it is removed when the request or command ends",
        ),
        Valid(
            '''
            from flask import abort
            from sqlalchemy.exc import IntegrityError
            from sqlalchemy.orm import Session


            def create(session: Session, user) -> None:
                session.add(user)
                try:
                    session.commit()
                except IntegrityError:
                    abort(409)
            ''',
            "the handler leaves through `abort()`, which raises",
        ),
        Valid(
            '''
            from app.services import create_user_or_roll_back


            def consume(db_session, messages) -> None:
                for message in messages:
                    try:
                        create_user_or_roll_back(db_session, message["name"])
                    except Exception as e:
                        log.exception(e)
            ''',
            "the service rolls back every failure of its commit before re-raising it: the session comes back usable",
        ),
        Valid(
            '''
            def store(db, row) -> None:
                db.add(row)
                db.commit()


            def consume(db, rows) -> None:
                for row in rows:
                    try:
                        store(db, row)
                    except Exception as e:
                        log.exception(e)
            ''',
            "the callee's parameter is not typed as a session: nothing says `db` is one",
        ),
        Valid(
            '''
            from sqlalchemy.exc import IntegrityError

            from app.db import SessionLocal, User


            def register(name: str) -> None:
                with SessionLocal() as session:
                    user = User(name=name)
                    session.add(user)
                    try:
                        session.commit()
                    except IntegrityError:
                        log.warning("name taken: %s", user.name)
                        session.rollback()
            ''',
            "an object added in the failed transaction is not expired (it becomes transient): reading it is fine",
        ),
        Valid(
            '''
            from app.records import Database, Tag


            class Label(Tag):
                def add(self) -> None:
                    try:
                        Database.db_session.add(self)
                        Database.db_session.commit()
                    except Exception:
                        log.exception("cannot add %s (%s)", self, self.label)
                        Database.db_session.rollback()
                        raise

                def save(self) -> None:
                    try:
                        Database.db_session.commit()
                    except Exception:
                        self.logger.exception("cannot save")
                        Database.db_session.rollback()
                        raise
            ''',
            "`self` added in this transaction stays readable; `self.logger` is no column",
        ),
    )
