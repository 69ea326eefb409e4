"""SQF007 beyond its examples: holders that keep ORM instances past their session. Cached
functions (which decorators keep results), and callbacks kept to run later (which calls keep
them, which reads fail)."""

from __future__ import annotations

import textwrap

import pytest

from codemods import names
from codemods.config import Config
from codemods.engine import fix_text
from codemods.passes.examples import SYNC_DB
from codemods.passes.instance_outlives_session import InstanceOutlivesSession

# A module of decorators that mentions nothing about sessions: the index reads it only
# because an indexed function uses one of its cache-named decorators.
DECORATORS = '''
import functools

_store = {}


def memoized(func):
    @functools.wraps(func)
    def wrapper(*args):
        if args not in _store:
            _store[args] = func(*args)
        return _store[args]
    return wrapper


class ttl_cached:
    def __init__(self, backend):
        self.backend = backend

    def __call__(self, func):
        async def wrapper(*args):
            found = await self.backend.get(args)
            if found is None:
                found = await func(*args)
                await self.backend.set(args, found)
            return found
        return wrapper


def invalidate_cache(func):
    @functools.wraps(func)
    def wrapper(*args):
        _store.clear()
        return func(*args)
    return wrapper
'''
QUIET_DB = SYNC_DB.replace("SessionLocal = sessionmaker(engine)", "SessionLocal = sessionmaker(engine, expire_on_commit=False)")
PROJECT = {**InstanceOutlivesSession.example_project, "app/deco.py": DECORATORS}

HEADER = '''
import asyncio
import atexit

from sqlalchemy.orm import Session

from app.db import SessionLocal, User
from app.deco import invalidate_cache, memoized, ttl_cached
'''


def _findings(body: str, project: dict[str, str] = PROJECT):
    source = HEADER + "\n\n" + textwrap.dedent(body).lstrip("\n")
    result = fix_text(source, Config(root="/p", select=("SQF007",)), project=project, path="app/example.py")
    assert result.error is None
    return result.findings


def _line(findings, text: str, body: str) -> None:
    """The one finding is on the line of ``body`` that holds ``text``."""
    source = (HEADER + "\n\n" + textwrap.dedent(body).lstrip("\n")).splitlines()
    assert [f.line for f in findings] == [next(i for i, s in enumerate(source, 1) if text in s)]


@pytest.mark.parametrize("name, memo", [
    ("app.cache.locked_cached", True), ("memoize", True), ("app.util.cached_query", True),
    ("app.cache.invalidate_cache", False), ("clear_cache", False), ("cache_control", False),
    ("never_cache", False), ("cache_page", False), ("app.retry", False), ("app.util.cached_property", False),
])
def test_a_decorator_name_says_whether_it_keeps_results(name, memo):
    assert names.memo_named(name) is memo


REPORTED_CACHES = {
    "a function decorator storing in a dict": '''
        @memoized
        def load(user_id: int) -> User:
            with SessionLocal() as session:
                return session.get(User, user_id)
        ''',
    "a decorator class storing through its backend's set()": '''
        class Users:
            def __init__(self, session: Session):
                self.session = session

            @ttl_cached(backend=None)
            async def by_name(self, name: str) -> list[User]:
                found = self.session.query(User).filter_by(name=name).all()
                return found
        ''',
}


@pytest.mark.parametrize("body", REPORTED_CACHES.values(), ids=list(REPORTED_CACHES))
def test_a_project_cache_decorator_on_a_function_returning_instances_is_reported_at_its_return(body):
    _line(_findings(body), "return ", body)


SILENT_CACHES = {
    "the decorator only empties the cache": '''
        @invalidate_cache
        def rename(session: Session, user_id: int, name: str) -> User:
            user = session.get(User, user_id)
            user.name = name
            return user
        ''',
    "the cached function expunges what it returns": '''
        @memoized
        def load(user_id: int) -> User:
            with SessionLocal() as session:
                user = session.get(User, user_id)
                session.expunge(user)
                return user
        ''',
    "the cached function returns a plain value": '''
        @memoized
        def name_of(user_id: int) -> str:
            with SessionLocal() as session:
                return session.get(User, user_id).name
        ''',
}


@pytest.mark.parametrize("body", SILENT_CACHES.values(), ids=list(SILENT_CACHES))
def test_cache_look_alikes_are_left_alone(body):
    assert _findings(body) == []


REPORTED_CALLBACKS = {
    "kept in a dict of lists on self": '''
        class Hub:
            def __init__(self):
                self._by_topic = {}

            def on(self, topic: str, callback) -> None:
                self._by_topic.setdefault(topic, []).append(callback)

            def join(self, session: Session, user_id: int) -> None:
                user = session.get(User, user_id)
                self.on("leave", lambda: print(user.name))
        ''',
    "kept in a module-level dict by a function": '''
        _listeners = {}


        def listen(key: str, callback) -> None:
            _listeners[key] = callback


        def join(session: Session, user_id: int) -> None:
            user = session.get(User, user_id)

            def goodbye() -> None:
                print(user.name)

            listen("bye", goodbye)
        ''',
    "registered to run at exit": '''
        def join(session: Session, user_id: int) -> None:
            user = session.get(User, user_id)
            atexit.register(lambda: print(user.name))
        ''',
    "run later by the event loop": '''
        async def join(session: Session, user_id: int) -> None:
            user = session.get(User, user_id)
            loop = asyncio.get_running_loop()
            loop.call_later(5, lambda: print(user.name))
        ''',
}


@pytest.mark.parametrize("body", REPORTED_CALLBACKS.values(), ids=list(REPORTED_CALLBACKS))
def test_a_kept_callback_reading_an_instance_is_reported_at_the_read(body):
    _line(_findings(body), "print(user.name)", body)


SILENT_CALLBACKS = {
    "the callback is run by the call": '''
        def run_now(callback) -> None:
            callback()


        def join(session: Session, user_id: int) -> None:
            user = session.get(User, user_id)
            run_now(lambda: print(user.name))
        ''',
    "the callback uses a value read now": '''
        def join(session: Session, user_id: int) -> None:
            user = session.get(User, user_id)
            name = user.name
            atexit.register(lambda: print(name))
        ''',
    "the callback gets a new object no session holds": '''
        def join(name: str) -> None:
            user = User(name=name)
            atexit.register(lambda: print(user.name))
        ''',
}


@pytest.mark.parametrize("body", SILENT_CALLBACKS.values(), ids=list(SILENT_CALLBACKS))
def test_callback_look_alikes_are_left_alone(body):
    assert _findings(body) == []


def test_columns_stay_readable_when_every_factory_keeps_them_but_relationships_do_not():
    quiet = {**PROJECT, "app/db.py": QUIET_DB}
    column = '''
        def join(user: User) -> None:
            atexit.register(lambda: print(user.name))
        '''
    assert _findings(column, quiet) == []
    assert len(_findings(column)) == 1
    relationship = '''
        def join(user: User) -> None:
            atexit.register(lambda: print(user.posts))
        '''
    _line(_findings(relationship, quiet), "user.posts", relationship)


def test_a_thread_hand_off_names_the_lazy_relationships_the_thread_reads():
    body = '''
        from threading import Thread


        def archive(user: User) -> None:
            print(user.name, len(user.posts))


        def archive_later(session: Session, user_id: int) -> None:
            user = session.get(User, user_id)
            Thread(target=archive, args=(user,)).start()
        '''
    found = _findings(body)
    _line(found, "Thread(target=archive", body)
    assert "`archive` reads `user.posts`: a lazy relationship" in found[0].message
    assert "user.name`" not in found[0].message  # a column is not a relationship


DIRECTORY = '''
        class Directory:
            def __init__(self):
                self._users = {}

            def find(self, session: Session, user_id: int) -> User:
                if user_id not in self._users:
                    user = session.get(User, user_id)
                    self._users[user_id] = user
                return self._users[user_id]
        '''


def test_an_instance_cache_on_an_object_built_once_at_module_level_is_reported():
    body = DIRECTORY + '''

        directory = Directory()
        '''
    found = _findings(body)
    _line(found, "self._users[user_id] = user", body)
    assert "`self._users` of `app.example.directory`" in found[0].message


def test_an_instance_cache_on_an_object_built_at_module_level_elsewhere_is_reported():
    project = {**PROJECT, "app/registry.py": "from sqlalchemy.orm import Session\n\nfrom app.example import Directory\n\n"
                                              "directory = Directory()\n"}
    _line(_findings(DIRECTORY, project), "self._users[user_id] = user", DIRECTORY)


def test_a_load_stored_as_it_is_through_the_objects_own_session_is_reported():
    body = '''
        class Directory:
            def __init__(self, session: Session):
                self.session = session
                self._users = {}

            def find(self, user_id: int) -> User:
                if user_id not in self._users:
                    self._users[user_id] = self.session.get(User, user_id)
                return self._users[user_id]


        directory = Directory(SessionLocal())
        '''
    found = _findings(body)
    _line(found, "self._users[user_id] = self.session.get", body)
    assert "ORM instance loaded here (User)" in found[0].message


SILENT_INSTANCE_CACHES = {
    "an object built per request": DIRECTORY + '''

        def handle(session: Session, user_id: int) -> str:
            return Directory().find(session, user_id).name
        ''',
    "a cache emptied when the session commits or rolls back": '''
        from sqlalchemy import event


        class Directory:
            def __init__(self, session: Session):
                self.session = session
                self._users = {}

                @event.listens_for(session, "after_commit")
                @event.listens_for(session, "after_rollback")
                def forget(session):
                    self._users = {}

            def find(self, user_id: int) -> User:
                if user_id not in self._users:
                    user = self.session.get(User, user_id)
                    self._users[user_id] = user
                return self._users[user_id]


        directory = Directory(SessionLocal())
        ''',
    "a cache of ids": '''
        class Directory:
            def __init__(self):
                self._ids = {}

            def find(self, session: Session, name: str) -> int:
                if name not in self._ids:
                    user = session.query(User).filter_by(name=name).one()
                    user_id = user.id
                    self._ids[name] = user_id
                return self._ids[name]


        directory = Directory()
        ''',
}


@pytest.mark.parametrize("body", SILENT_INSTANCE_CACHES.values(), ids=list(SILENT_INSTANCE_CACHES))
def test_instance_cache_look_alikes_are_left_alone(body):
    assert [f.message for f in _findings(body)] == []
