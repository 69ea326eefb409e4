"""SQF007's example project, examples and valid cases: what `sqla-fix explain SQF007` shows and
what the tests run on the pass (tests/test_passes.py)."""

from __future__ import annotations

from .base import Example, Valid
from .examples import SYNC_DB

# A module of project decorators for the examples: one keeps results for the process, one
# empties that store, one only logs.
_CACHING = '''
import functools
import logging

_kept: dict = {}


class cached_result:
    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args):
            key = (func.__qualname__, args[1:])
            if key not in _kept:
                _kept[key] = func(*args)
            return _kept[key]
        return wrapper


def drops_cache(func):
    @functools.wraps(func)
    def wrapper(*args):
        _kept.clear()
        return func(*args)
    return wrapper


def logs_cache_use(func):
    @functools.wraps(func)
    def wrapper(*args):
        logging.getLogger(__name__).debug("cache use: %s", func.__qualname__)
        return func(*args)
    return wrapper
'''


PROJECT = {"app/__init__.py": "", "app/db.py": SYNC_DB, "app/caching.py": _CACHING}

EXAMPLES = (
        Example(
            title="a module-level cache of instances",
            before='''
            from sqlalchemy.orm import Session
            from app.db import Message

            _messages: dict[int, Message] = {}


            def get_or_create(session: Session, message_id: int) -> Message:
                if message_id in _messages:
                    return _messages[message_id]
                message = Message(id=message_id, content="")
                session.add(message)
                _messages[message_id] = message
                return message
            ''',
        ),
        Example(
            title="an lru_cache that returns instances",
            before='''
            from functools import lru_cache
            from app.db import SessionLocal, User


            @lru_cache(maxsize=128)
            def load_user(user_id: int) -> User:
                with SessionLocal() as session:
                    return session.get(User, user_id)
            ''',
        ),
        Example(
            title="a project decorator that keeps results for the process, on a method returning instances",
            before='''
            from sqlalchemy import select
            from sqlalchemy.orm import Session

            from app.caching import cached_result
            from app.db import User


            class Directory:
                def __init__(self, session: Session):
                    self.session = session

                @cached_result()
                def named(self, prefix: str) -> list[User]:
                    users = self.session.scalars(select(User).where(User.name.startswith(prefix)))
                    return list(users)
            ''',
        ),
        Example(
            title="an instance handed to a background thread",
            before='''
            from threading import Thread

            from app.db import SessionLocal, User


            def send_welcome(user: User) -> None:
                print(f"welcome, {user.name}")


            def register(name: str) -> None:
                with SessionLocal() as session:
                    user = User(name=name)
                    session.add(user)
                    session.commit()
                    Thread(target=send_welcome, args=(user,)).start()
            ''',
        ),
        Example(
            title="a nested function run by an executor uses an instance of the enclosing one",
            before='''
            from concurrent.futures import ThreadPoolExecutor

            from sqlalchemy.orm import Session

            from app.db import User

            executor = ThreadPoolExecutor(4)


            def notify_owner(session: Session, user_id: int) -> None:
                owner = session.get(User, user_id)

                def send() -> None:
                    print(owner.name)

                executor.submit(send)
            ''',
        ),
        Example(
            title="a callback kept for later reads an attribute of an instance",
            before='''
            from sqlalchemy.orm import Session

            from app.db import User


            class Connection:
                def __init__(self) -> None:
                    self._on_close = []

                def when_closed(self, callback) -> None:
                    self._on_close.append(callback)

                def close(self) -> None:
                    for callback in self._on_close:
                        callback()

                def follow(self, session: Session, user_id: int, topic: str) -> None:
                    user = session.get(User, user_id)
                    self.when_closed(lambda: print(f"{user.name} stops following {topic}"))
            ''',
        ),
        Example(
            title="instances reached through a relationship, each handed to a thread",
            before='''
            from threading import Thread

            from app.db import SessionLocal, User


            def archive(message) -> None:
                print(message.content)


            def archive_all(user_id: int) -> None:
                with SessionLocal() as session:
                    author: User = session.get(User, user_id)
                    for post in author.posts:
                        Thread(target=archive, args=(post,)).start()
            ''',
        ),
        Example(
            title="a session shared by every request",
            before='''
            from app.db import SessionLocal, User

            session = SessionLocal()


            def handler(user_id: int) -> str:
                return session.get(User, user_id).name
            ''',
        ),
        Example(
            title="a script's session shared by the threads it starts",
            before='''
            from concurrent.futures import ThreadPoolExecutor

            from app.db import SessionLocal, User

            session = SessionLocal()


            def name_of(user_id: int) -> str:
                return session.get(User, user_id).name


            if __name__ == "__main__":
                with ThreadPoolExecutor() as pool:
                    print(list(pool.map(name_of, range(10))))
            ''',
        ),
        Example(
            title="one AsyncSession for concurrent tasks",
            before='''
            import asyncio
            from sqlalchemy.ext.asyncio import AsyncSession


            async def refresh_all(session: AsyncSession, ids: list[int]) -> None:
                await asyncio.gather(load(session, ids[0]), load(session, ids[1]))
            ''',
        ),
    )

VALID = (
        Valid(
            '''
            from app.db import SessionLocal, User

            session = SessionLocal()


            def name_of(user_id: int) -> str:
                return session.get(User, user_id).name


            if __name__ == "__main__":
                for user_id in range(10):
                    print(name_of(user_id))
            ''',
            "a script run once, in one thread, that no module imports: its module-level session "
            "serves that one run",
        ),
        Valid(
            '''
            import argparse

            from app.db import SessionLocal, User

            parser = argparse.ArgumentParser()
            parser.add_argument("name")
            session = SessionLocal()


            def add_admin(name: str) -> None:
                session.add(User(name=name))
                session.commit()


            add_admin(parser.parse_args().name)
            ''',
            "a script without a `__main__` block: its own statements run it, once, and none of "
            "its functions is registered with a framework (no decorator)",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session
            from app.db import Message

            _message_ids: dict[str, int] = {}


            def remember(session: Session, key: str, content: str) -> int:
                message = Message(content=content)
                session.add(message)
                session.flush()
                _message_ids[key] = message.id
                return message.id
            ''',
            "a cache of ids, not instances",
        ),
        Valid(
            '''
            from sqlalchemy import select
            from sqlalchemy.orm import Session

            from app.caching import cached_result
            from app.db import User


            class Directory:
                def __init__(self, session: Session):
                    self.session = session

                @cached_result()
                def named(self, prefix: str) -> list[User]:
                    users = list(self.session.scalars(select(User).where(User.name.startswith(prefix))))
                    for user in users:
                        self.session.expunge(user)
                    return users
            ''',
            "the cached method detaches what it returns: no session holds them, their loaded columns read fine",
        ),
        Valid(
            '''
            from sqlalchemy import select
            from sqlalchemy.orm import Session

            from app.caching import cached_result
            from app.db import User


            class Directory:
                def __init__(self, session: Session):
                    self.session = session

                @cached_result()
                def names(self, prefix: str) -> list[str]:
                    users = self.session.scalars(select(User).where(User.name.startswith(prefix)))
                    return [user.name for user in users]
            ''',
            "the cache keeps plain values read in the session",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session

            from app.caching import drops_cache, logs_cache_use
            from app.db import User


            class Directory:
                def __init__(self, session: Session):
                    self.session = session

                @drops_cache
                def rename(self, user_id: int, name: str) -> User:
                    user = self.session.get(User, user_id)
                    user.name = name
                    return user

                @logs_cache_use
                def find(self, user_id: int) -> User:
                    return self.session.get(User, user_id)
            ''',
            "decorators named after a cache that keep nothing: one empties it, one only logs",
        ),
        Valid(
            '''
            from threading import Thread

            from app.db import SessionLocal, User


            def send_welcome(user_id: int, name: str) -> None:
                print(f"welcome, {name} ({user_id})")


            def register(name: str) -> None:
                with SessionLocal() as session:
                    user = User(name=name)
                    session.add(user)
                    session.commit()
                    Thread(target=send_welcome, args=(user.id, user.name)).start()
            ''',
            "the thread gets plain values read in the session, not the instance",
        ),
        Valid(
            '''
            import asyncio

            from sqlalchemy.ext.asyncio import AsyncSession

            from app.db import User


            def checksum(user: User) -> int:
                return hash(user.name)


            async def verify(session: AsyncSession, user_id: int) -> int:
                user = await session.get(User, user_id)
                return await asyncio.to_thread(checksum, user)
            ''',
            "the caller waits for the thread: the session outlives its work",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session

            from app.db import User


            class Connection:
                def __init__(self) -> None:
                    self._on_close = []

                def when_closed(self, callback) -> None:
                    self._on_close.append(callback)

                def right_now(self, callback) -> None:
                    callback()

                def follow(self, session: Session, user_id: int, topic: str) -> None:
                    user = session.get(User, user_id)
                    name = user.name
                    self.when_closed(lambda: print(f"{name} stops following {topic}"))
                    self.right_now(lambda: print(f"{user.name} follows {topic}"))
            ''',
            "the kept callback uses a value read now; the other callback runs during the call",
        ),
        Valid(
            '''
            from concurrent.futures import ThreadPoolExecutor

            from app.db import User

            executor = ThreadPoolExecutor(4)


            def render(user: User) -> str:
                return user.name


            def preview(name: str) -> None:
                draft = User(name=name)
                executor.submit(render, draft)
            ''',
            "a new object never given to a session belongs to none: another thread may use it",
        ),
        Valid(
            '''
            from app.db import Message, SessionLocal


            def batch(contents: list[str]) -> None:
                pending = []
                with SessionLocal() as session:
                    for content in contents:
                        message = Message(content=content)
                        pending.append(message)
                    session.add_all(pending)
                    session.commit()
            ''',
            "a local list inside one session scope",
        ),
        Valid(
            '''
            from app.db import SessionLocal


            def handler(user_id: int):
                with SessionLocal() as session:
                    return session.get(object, user_id) is not None
            ''',
            "one session per request",
        ),
    )
