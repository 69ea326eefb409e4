"""Index facts about project helpers that handle sessions: decorators that hand the session
over through the wrapper's ``**kwargs`` and open it through a ``functools.partial``."""

from __future__ import annotations

from codemods.index import ProjectIndex, extract

DECORATOR = '''
import functools
from sqlalchemy.orm import sessionmaker

Session = sessionmaker()


def with_session(*args, **kwargs):
    def decorator(func):
        def wrapper(*args, **kwargs):
            if kwargs.get("session"):
                return func(*args, **kwargs)
            with _Session() as session:
                kwargs["session"] = session
                return func(*args, **kwargs)
        return wrapper

    if len(args) == 1 and not kwargs and callable(args[0]):
        _Session = functools.partial(Session, expire_on_commit=False)
        return decorator(args[0])
    _Session = functools.partial(Session, *args, **kwargs)
    return decorator


def with_other(func):
    def wrapper(*args, **kwargs):
        kwargs["session"] = object()
        return func(*args, **kwargs)
    return wrapper


def with_unpacked(func):
    def wrapper(*args, **kwargs):
        with Session() as session:
            kwargs["session"] = session
            return func(*args)
    return wrapper
'''


def test_a_decorator_passing_the_session_in_its_kwargs():
    idx = ProjectIndex([extract("m.py", DECORATOR, "m")])
    deco = idx.decorator("m.with_session")
    assert deco is not None
    assert (deco.factory, deco.keyword, deco.position, deco.commits) == ("m.Session", "session", None, False)
    # one binding says expire_on_commit=False, the other says nothing: no expiry is claimed
    assert idx.expire_on_commit(deco.factory, deco.expire_on_commit) is False


def test_kwargs_that_are_not_passed_on_or_hold_no_session():
    idx = ProjectIndex([extract("m.py", DECORATOR, "m")])
    assert idx.decorator("m.with_other") is None
    assert idx.decorator("m.with_unpacked") is None


def test_a_partial_of_a_session_factory_opens_a_session():
    facts = extract("m.py", (
        "import functools\n"
        "from sqlalchemy.orm import Session\n"
        "def job(engine):\n"
        "    maker = functools.partial(Session, engine, expire_on_commit=False)\n"
        "    session = maker()\n"
        "    session.execute('select 1')\n"
    ), "m")
    fn = facts.functions["job"]
    assert fn.session_names["session"] == "sqlalchemy.orm.Session"
    (opened,) = [o for o in fn.opened if o.name == "session"]
    assert opened.expire_on_commit is False


def test_a_partial_rebound_to_something_else_is_forgotten():
    facts = extract("m.py", (
        "import functools\n"
        "from sqlalchemy.orm import Session\n"
        "def job(engine):\n"
        "    maker = functools.partial(Session, engine)\n"
        "    maker = make_client\n"
        "    client = maker()\n"
    ), "m")
    assert facts.functions["job"].session_names.get("client") != "sqlalchemy.orm.Session"


def test_a_string_annotation_types_what_self_keeps():
    facts = extract("repo.py", (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from sqlalchemy.ext.asyncio import AsyncSession\n"
        "class Repository:\n"
        "    def __init__(self, session: 'AsyncSession', other: 'not valid(') -> None:\n"
        "        self._session = session\n"
        "        self._other = other\n"
    ), "repo")
    assert facts.self_values == {"Repository._session": "type:sqlalchemy.ext.asyncio.AsyncSession"}
    idx = ProjectIndex([facts])
    assert idx.self_session(facts, "Repository", "_session")


SETUP = '''
from sqlalchemy import create_engine
from sqlalchemy.orm import scoped_session, sessionmaker


def init(url):
    engine = create_engine(url)
    maker = sessionmaker(bind=engine, expire_on_commit=False)
    return maker, engine


SessionMaker, engine = init("sqlite://")
Registry = scoped_session(SessionMaker)


def create_session():
    return SessionMaker()


def current_session():
    return Registry()
'''


def test_a_factory_unpacked_from_the_tuple_a_setup_function_returns():
    idx = ProjectIndex([extract("m.py", SETUP, "m")])
    maker = idx.factory("m.SessionMaker")
    assert maker is not None and maker.builder == "sqlalchemy.orm.sessionmaker"
    assert maker.expire_on_commit is False
    assert idx.factory("m.engine") is None  # the other item is no factory
    assert idx.opens_session("m.create_session") is False  # a sync session
    assert not idx.returns_registry_session("m.create_session")
    assert idx.returns_registry_session("m.current_session")


def test_a_factory_built_and_called_at_once_through_a_re_export():
    db = extract("app/db.py", "from sqlalchemy.orm import sessionmaker, scoped_session\n", "app.db")
    job = extract("app/job.py", (
        "from app.db import sessionmaker, scoped_session\n"
        "def run(engine):\n"
        "    session = sessionmaker(bind=engine, expire_on_commit=False)()\n"
        "    registry_session = scoped_session(sessionmaker(bind=engine))()\n"
    ), "app.job")
    idx = ProjectIndex([db, job])
    fn = job.functions["run"]
    assert idx.opens_session(fn.session_names["session"]) is False
    assert idx.builder(fn.session_names["registry_session"][:-2]) == "sqlalchemy.orm.scoped_session"
    (opened,) = [o for o in fn.opened if o.name == "session"]
    assert opened.expire_on_commit is False


SERVICES = '''
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session


def create(*, db_session: Session, row) -> None:
    db_session.add(row)
    try:
        db_session.commit()
    except IntegrityError:
        db_session.rollback()


def stage(session: Session, row) -> None:
    session.add(row)
    session.flush()


def guarded(session: Session, row) -> None:
    try:
        session.add(row)
        session.commit()
    except Exception:
        session.rollback()
        raise


def untyped(session, row) -> None:
    session.commit()


class Service:
    def save(self, session: Session) -> None:
        session.commit()
'''


def test_functions_that_commit_the_session_they_are_given():
    facts = extract("svc.py", SERVICES, "svc")
    idx = ProjectIndex([facts])
    # a handler for duplicates only: any other failure of the commit reaches the caller
    assert facts.functions["create"].flushes_params == {"db_session": "commit"}
    assert idx.flushes_passed_session("svc.create", None, "db_session") == "commit"
    assert idx.flushes_passed_session("svc.stage", 0, None) == "flush"
    assert idx.flushes_passed_session("svc.stage", 1, None) is None  # the row, not the session
    assert facts.functions["guarded"].flushes_params == {}  # every failure is rolled back
    assert idx.flushes_passed_session("svc.untyped", 0, None) is None  # not typed as a session
    assert idx.flushes_passed_session("svc.Service.save", 0, None) is None  # positions shift by self
    assert idx.flushes_passed_session("svc.Service.save", None, "session") == "commit"
    assert {"create", "stage", "untyped", "save"} == idx.flushing_function_names()


def test_a_class_attribute_set_to_a_registry_in_a_start_up_method():
    db = extract("app/database.py", (
        "from sqlalchemy.orm import scoped_session, sessionmaker\n"
        "from app.other import Imported\n"
        "class Database:\n"
        "    db_session = None\n"
        "    @staticmethod\n"
        "    def init(engine):\n"
        "        Database.db_session = scoped_session(sessionmaker(bind=engine))\n"
        "        Imported.maker = sessionmaker(bind=engine)\n"
        "    def __str__(self):\n"
        "        return f'{self.url}'\n"
    ), "app.database")
    idx = ProjectIndex([db])
    found = idx.factory("app.database.Database.db_session")
    assert found is not None and found.scoped
    assert idx.factory("app.database.Imported.maker") is None  # another module's class
    assert db.classes["Database"].properties["__str__"] == ["url"]  # what formatting reads


def _never_expire(*modules: tuple[str, str]) -> tuple[bool, bool]:
    idx = ProjectIndex([extract(f"{m.replace('.', '/')}.py", src, m) for m, src in modules])
    return idx.sessions_never_expire(async_only=True), idx.sessions_never_expire(async_only=False)


ASYNC_MAKER = ("app.db", "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
                         "Maker = async_sessionmaker(engine, expire_on_commit=False)\n")


def test_sessions_never_expire_counts_factories_and_the_sessions_providers_hand_out():
    """One query answers for SQF007 and SQF010: every session the project makes is built with
    expire_on_commit=False. A sync factory with the default counts only when sync sessions
    count; a provider that yields a session with the default spoils it; a test fixture does not."""
    sync_default = ("app.sync", "from sqlalchemy.orm import sessionmaker\nSync = sessionmaker(engine)\n")
    provider = ("app.deps", "from sqlalchemy.ext.asyncio import AsyncSession\n"
                            "async def get_db():\n    async with AsyncSession(engine) as s:\n        yield s\n")
    fixture = ("tests.conftest", provider[1])
    assert _never_expire(ASYNC_MAKER) == (True, True)
    assert _never_expire(ASYNC_MAKER, sync_default) == (True, False)
    assert _never_expire(ASYNC_MAKER, provider) == (False, False)
    assert _never_expire(ASYNC_MAKER, fixture) == (True, True)
    assert _never_expire() == (False, False)  # no session made: nothing is known


def test_a_test_helper_by_pytest_or_package_name_does_not_count():
    """`*_test.py` and a `testing` package are the tests' too (one definition of a test
    module serves this query and the PostgreSQL check): their sessions are left aside."""
    provider = "from sqlalchemy.ext.asyncio import AsyncSession\n" \
               "async def get_db():\n    async with AsyncSession(engine) as s:\n        yield s\n"
    assert _never_expire(ASYNC_MAKER, ("app.db_test", provider)) == (True, True)
    assert _never_expire(ASYNC_MAKER, ("app.testing.fixtures", provider)) == (True, True)


def test_a_factory_a_function_builds_and_returns_counts_with_its_setting():
    """`def make_maker(engine): return async_sessionmaker(engine, expire_on_commit=False)`,
    called where the application starts (its sessions then reach handlers through
    `request.state`, which the index cannot follow): the factory the project builds is still
    counted, with its setting, and a returned factory with the default spoils the answer."""
    def maker(setting: str) -> tuple[str, str]:
        return ("app.engine", "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
                              f"def make_maker(engine):\n    return async_sessionmaker(engine{setting})\n")

    assert _never_expire(maker(", expire_on_commit=False")) == (True, True)
    assert _never_expire(maker("")) == (False, False)
    assert _never_expire(ASYNC_MAKER, maker("")) == (False, False)
    sync = ("app.sync", "from sqlalchemy.orm import sessionmaker\n"
                        "def make_sync(engine):\n    return sessionmaker(engine)\n")
    assert _never_expire(maker(", expire_on_commit=False"), sync) == (True, False)
    # a factory built and kept elsewhere than a return, with the default, spoils it too
    kept = ("app.main", "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
                        "async def lifespan(app):\n    app.state.maker = async_sessionmaker(engine)\n")
    assert _never_expire(maker(", expire_on_commit=False"), kept) == (False, False)
    # one return with the default and one without: not every session keeps its objects
    both = ("app.engine", "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
                          "def make_maker(engine, quiet):\n    if not quiet:\n        return async_sessionmaker(engine)\n"
                          "    return async_sessionmaker(engine, expire_on_commit=False)\n")
    assert _never_expire(both) == (False, False)
    # a factory a function only uses (a migration's) makes sessions the rules see: not counted
    migration = ("app.migrations.v1", "from sqlalchemy.orm import sessionmaker\n"
                                      "def upgrade():\n    Session = sessionmaker(bind=op.get_bind())\n"
                                      "    session = Session()\n    session.close()\n")
    assert _never_expire(ASYNC_MAKER, migration) == (True, True)
    # a module-level factory set up by configure(), and a registry around it built in a function
    configured = ("app.db", "from sqlalchemy.ext.asyncio import async_sessionmaker\n"
                            "Maker = async_sessionmaker()\n"
                            "Maker.configure(bind=engine, expire_on_commit=False)\n")
    scoped = ("app.web", "from sqlalchemy.orm import scoped_session\nfrom app.db import Maker\n"
                         "def init_app(app):\n    app.db_session = scoped_session(Maker)\n")
    assert _never_expire(configured, scoped) == (True, True)
