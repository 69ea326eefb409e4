"""More SQF005 examples and valid cases: scopes opened through an instance a class keeps
(``with self.db_factory() as s``, its class's ``__call__`` a ``@contextmanager``), and async
functions returning what a commit of the session they were handed expired."""

from __future__ import annotations

from .base import Example, Valid

# A class whose instances open a scope when called; the scope commits and closes on exit.
_MAKER = '''
from contextlib import contextmanager

from app.db import SessionLocal, User


class Transactional:
    @contextmanager
    def __call__(self):
        session = SessionLocal()
        try:
            yield session
            session.commit()
        finally:
            session.close()


transactional = Transactional
'''

EXAMPLES = (
    Example(
        title="a scope opened by calling an instance the handler keeps, the object read after it",
        before=_MAKER + '''

class SignupHandler:
    def __init__(self, db_factory: transactional | None = None):
        if db_factory is None:
            self.db_factory = transactional()
        else:
            self.db_factory = db_factory

    def __call__(self, name: str) -> str:
        with self.db_factory() as session:
            user = User(name=name)
            session.add(user)
            session.flush()
        return f"welcome {user.name}"
''',
        after=_MAKER + '''

class SignupHandler:
    def __init__(self, db_factory: transactional | None = None):
        if db_factory is None:
            self.db_factory = transactional()
        else:
            self.db_factory = db_factory

    def __call__(self, name: str) -> str:
        with self.db_factory() as session:
            user = User(name=name)
            session.add(user)
            session.flush()
            session.expunge(user)
        return f"welcome {user.name}"
''',
    ),
    Example(
        title="an async method commits the session it was handed and returns what it added",
        before='''
        from sqlalchemy.ext.asyncio import AsyncSession

        from app.db import Message, User


        class UserStore:
            def __init__(self, session: AsyncSession):
                self.session = session

            async def post(self, user: User, text: str) -> User:
                await self.session.refresh(user)
                user.posts.append(Message(content=text))
                self.session.add(user)
                await self.session.commit()
                return user
        ''',
        after='''
        from sqlalchemy.ext.asyncio import AsyncSession

        from app.db import Message, User


        class UserStore:
            def __init__(self, session: AsyncSession):
                self.session = session

            async def post(self, user: User, text: str) -> User:
                await self.session.refresh(user)
                user.posts.append(Message(content=text))
                self.session.add(user)
                await self.session.commit()
                await self.session.refresh(user)
                return user
        ''',
    ),
)

VALID = (
    Valid(
        '''
        from sqlalchemy import select

        from app.db import SessionLocal, User


        def add_and_list(name: str) -> tuple[User, list[User]]:
            with SessionLocal() as session:
                user = User(name=name)
                session.add(user)
                session.commit()
                everyone = session.scalars(select(User)).all()
            return user, everyone
        ''',
        "after the commit, a query of every row of the model (unfiltered, read to the end) "
        "loads the expired instance's row again, which refreshes it: its columns are loaded "
        "when the block closes",
    ),
    Valid(
        '''
        from sqlalchemy import select

        from app.db import SessionLocal, User


        def add_and_count(name: str) -> tuple[User, int]:
            with SessionLocal() as session:
                user = User(name=name)
                session.add(user)
                session.commit()
                result = session.execute(select(User))
                everyone = result.scalars().all()
            return user, len(everyone)
        ''',
        "the same reload in two statements: the query's result, read to the end, loads every "
        "row of the model, the expired instance's among them",
    ),
    Valid(
        '''
        from fastapi import Depends, Request
        from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

        from app.db import User


        def make_maker(engine):
            return async_sessionmaker(engine, expire_on_commit=False)


        async def get_session(request: Request):
            async with request.state.session_maker() as session:
                yield session


        class Users:
            def __init__(self, session: AsyncSession = Depends(get_session)):
                self.session = session

            async def create(self, user: User) -> User:
                self.session.add(user)
                await self.session.commit()
                return user
        ''',
        "every async session factory the project builds (here the one a function returns, made "
        "when the application starts) says expire_on_commit=False: the session reached through "
        "`request.state` is one of theirs, and its commit expires nothing",
    ),
    Valid(
        '''
        from sqlalchemy.ext.asyncio import AsyncSession

        from app.db import User


        async def create(session: AsyncSession, name: str) -> User:
            user = User(name=name)
            session.add(user)
            await session.commit()
            await session.refresh(user)
            return user
        ''',
        "refreshed after the commit: its columns are loaded again before it is returned",
    ),
    Valid(
        '''
        from sqlalchemy.ext.asyncio import AsyncSession

        from app.db import User


        async def touch(session: AsyncSession, user: User) -> User:
            await session.commit()
            return user
        ''',
        "an instance handed in and never added to nor loaded through this session: nothing "
        "shows the commit expired it",
    ),
    Valid(
        '''
        from sqlalchemy.orm import Session

        from app.db import User


        def create(session: Session, name: str) -> User:
            user = User(name=name)
            session.add(user)
            session.commit()
            return user
        ''',
        "sync code with the caller's session still open: a read reloads the expired columns",
    ),
    Valid(
        _MAKER.replace("            session.commit()\n", "") + '''

class Reader:
    def __init__(self):
        self.db_factory = transactional()

    def name_of(self, user_id: int) -> str:
        with self.db_factory() as session:
            user = session.get(User, user_id)
        return user.name
''',
        "a scope (opened through an instance the class keeps) that closes without committing: "
        "the columns it loaded stay readable",
    ),
    Valid(
        '''
        import time
        from contextlib import contextmanager

        from app.db import SessionLocal, User


        class Timer:
            @contextmanager
            def __call__(self):
                start = time.monotonic()
                yield start


        class Job:
            def __init__(self):
                self.timer = Timer()

            def run(self, name: str) -> User:
                with self.timer() as started:
                    session = SessionLocal()
                    user = User(name=name)
                    session.add(user)
                return user
        ''',
        "an instance the class keeps whose `__call__` opens no session (a timer)",
    ),
    Valid(
        '''
        from datetime import datetime

        from sqlalchemy import update
        from sqlalchemy.orm import Session

        from app.db import User, engine


        def archive(team_id: int) -> int:
            with Session(engine) as session:
                moved = (
                    session.query(User)
                    .filter(User.team_id == team_id)
                    .update({"archived_at": datetime.now()})
                )
                session.commit()
            return moved


        def rename(user_id: int, name: str):
            with Session(engine) as session:
                result = session.execute(update(User).where(User.id == user_id).values(name=name))
                session.commit()
            return result.rowcount
        ''',
        "a bulk update's row count, and the result of executing an UPDATE: no instance to expire",
    ),
)
