"""SQF011 examples and leave-alone cases for sessions that are made when the caller gives
none (``if session is None: session = Maker()``, ``session = session or Maker()``), for
sessions no name holds (``Maker().query(...)``, a property handing out a factory), and for
sessions taken out of a provider generator that no name holds (``next(get_db())``)."""

from __future__ import annotations

from .base import Example, Valid

# A class that keeps its factory and hands it out through a property.
STORE = '''
from pyramid.decorator import reify
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.__maker = None

    def connect(self) -> None:
        self.__maker = sessionmaker(bind=create_engine(self.url))

    @property
    def session_factory(self):
        return self.__maker

    def factory(self):
        return self.__maker

    @reify
    def maker(self):
        return self.__maker
'''

# Providers that open a session, yield it, and close it after the yield.
PROVIDERS = '''
from collections.abc import AsyncIterator, Iterator

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import SessionLocal
from bot.services import session_pool


def get_db() -> Iterator:
    with SessionLocal() as db:
        yield db


async def provide_session() -> AsyncIterator[AsyncSession]:
    async with session_pool() as session:
        yield session
'''

PROJECT = {"app/store.py": STORE, "app/providers.py": PROVIDERS}

EXAMPLES = (
    Example(
        title="a session made when the caller gives none, never closed",
        before='''
        from sqlalchemy.orm import Session
        from app.db import SessionLocal, User


        def rename_all(prefix: str, session: Session | None = None) -> int:
            if session is None:
                session = SessionLocal()
            users = session.query(User).all()
            for user in users:
                user.name = prefix + user.name
            session.commit()
            return len(users)
        ''',
    ),
    Example(
        title="`session = session or maker()`: the same, in one line",
        before='''
        from app.db import SessionLocal, User


        def count_users(session=None) -> int:
            session = session or SessionLocal()
            return session.query(User).count()
        ''',
    ),
    Example(
        title="a session no name holds: made, queried at once, never closed",
        before='''
        from sqlalchemy import func, select
        from app.db import SessionLocal, User


        def user_count() -> int:
            return SessionLocal().scalar(select(func.count()).select_from(User))
        ''',
    ),
    Example(
        title="the factory handed out by a property of an object the function builds",
        before='''
        from sqlalchemy import func, select
        from app.db import User
        from app.store import Store


        def open_store(url: str) -> tuple[Store, int]:
            store = Store(url)
            store.connect()
            users = store.session_factory().scalar(select(func.count()).select_from(User))
            return store, users
        ''',
    ),
    Example(
        title="the factory handed out by a property of another library's decorator (Pyramid's reify)",
        before='''
        from sqlalchemy import func, select
        from app.db import User
        from app.store import Store


        def open_store(url: str) -> tuple[Store, int]:
            store = Store(url)
            store.connect()
            users = store.maker().scalar(select(func.count()).select_from(User))
            return store, users
        ''',
    ),
    Example(
        title="a provider generator advanced once and dropped: its cleanup closes the session first",
        before='''
        from app.db import User
        from app.providers import get_db


        def user_names() -> list[str]:
            db = next(get_db())
            return [u.name for u in db.query(User)]
        ''',
    ),
    Example(
        title="async: the dropped generator's cleanup runs at the next await",
        before='''
        from app.providers import provide_session
        from bot.services import User


        async def user_name(user_id: int) -> str | None:
            session = await anext(provide_session())
            user = await session.get(User, user_id)
            return user.name if user else None
        ''',
    ),
)

VALID = (
    Valid(
        '''
        from sqlalchemy.orm import Session
        from app.db import SessionLocal, User


        def rename_all(prefix: str, session: Session | None = None) -> int:
            owned = session is None
            if session is None:
                session = SessionLocal()
            try:
                users = session.query(User).all()
                session.commit()
                return len(users)
            finally:
                if owned:
                    session.close()
        ''',
        "a session made when the caller gives none, closed in `finally` when the function made it",
    ),
    Valid(
        '''
        from sqlalchemy import func, select
        from sqlalchemy.orm import Session, scoped_session
        from app.db import SessionLocal, User, engine

        Registry = scoped_session(SessionLocal)


        def user_count(conn) -> int:
            with SessionLocal() as session:
                total = session.scalar(select(func.count()).select_from(User))
            Registry().execute(select(User))
            Session(bind=conn).execute(select(User))
            return total
        ''',
        "a `with` block; a scoped registry's session (the registry removes it); a session on a "
        "connection the caller owns",
    ),
    Valid(
        '''
        from sqlalchemy import select
        from app.db import User
        from app.store import Store


        def first_user(url: str):
            store = Store(url)
            return store.factory().query(User)
        ''',
        "a plain method that returns the factory: `store.factory()` is the factory, and "
        "`.query` is not called on a session",
    ),
    Valid(
        '''
        from app.db import User
        from app.providers import get_db


        def user_names() -> list[str]:
            provider = get_db()
            db = next(provider)
            try:
                return [u.name for u in db.query(User)]
            finally:
                provider.close()
        ''',
        "the generator is kept and closed after the uses: its cleanup closes the session then",
    ),
    Valid(
        '''
        from sqlalchemy.orm import Session
        from app.db import User
        from app.providers import get_db


        def user_names() -> list[str]:
            db = next(get_db())
            names = [u.name for u in db.query(User)]
            db.close()
            return names


        def audit_session() -> Session:
            return Session(next(get_db()).bind)
        ''',
        "the session taken out is closed by the function itself (its connection goes back then); "
        "a session only asked for its engine checks out no connection",
    ),
)
