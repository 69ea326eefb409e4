"""The SQLAlchemy (and friends') names the index and passes recognise, by qualified name.

Matching goes through imports, never through a bare spelling: a local variable called
``async_sessionmaker`` or ``session`` is not a session factory or a session.
"""

from __future__ import annotations

# Callables that build a session factory: calling their result opens a session.
FACTORY_BUILDERS = {
    "sqlalchemy.orm.sessionmaker": False,
    "sqlalchemy.orm.session.sessionmaker": False,
    "sqlalchemy.ext.asyncio.async_sessionmaker": True,
    "sqlalchemy.ext.asyncio.session.async_sessionmaker": True,
    "sqlalchemy.orm.scoped_session": False,
    "sqlalchemy.orm.scoping.scoped_session": False,
    "sqlalchemy.ext.asyncio.async_scoped_session": True,
    "sqlalchemy.ext.asyncio.scoping.async_scoped_session": True,
}

# Session classes: calling them opens a session directly; as annotations they mark sessions.
SESSION_CLASSES = {
    "sqlalchemy.orm.Session": False,
    "sqlalchemy.orm.session.Session": False,
    "sqlalchemy.ext.asyncio.AsyncSession": True,
    "sqlalchemy.ext.asyncio.session.AsyncSession": True,
    "sqlmodel.Session": False,
    "sqlmodel.orm.session.Session": False,
    "sqlmodel.ext.asyncio.session.AsyncSession": True,
    # frameworks' ORM packages that re-export SQLAlchemy's classes
    "nonebot_plugin_orm.AsyncSession": True,
}

# Library functions that open a new session with SQLAlchemy's defaults unless the library's
# own settings change them (read as a factory sqla-fix cannot see).
LIBRARY_SESSION_FUNCTIONS = {
    "nonebot_plugin_orm.get_session": True,
}

SCOPED = {
    "sqlalchemy.orm.scoped_session",
    "sqlalchemy.orm.scoping.scoped_session",
    "sqlalchemy.ext.asyncio.async_scoped_session",
    "sqlalchemy.ext.asyncio.scoping.async_scoped_session",
}

DEPENDS = {
    "fastapi.Depends", "fastapi.params.Depends", "fastapi.param_functions.Depends",
    "fastapi.Security", "fastapi.params.Security", "fastapi.param_functions.Security",
}
ANNOTATED = {"typing.Annotated", "typing_extensions.Annotated"}

# Session methods whose result is (or yields) instances that belong to that session.
LOAD_METHODS = {
    "get", "get_one", "execute", "scalars", "scalar", "scalar_one", "query", "merge",
    "stream", "stream_scalars",
}

# Session methods that are coroutines on AsyncSession (awaited) / plain methods on both.
ASYNC_METHODS = {
    "commit", "rollback", "refresh", "merge", "flush", "execute", "get", "get_one", "close",
    "scalars", "scalar", "delete", "stream", "stream_scalars", "run_sync", "invalidate",
    "reset", "begin", "begin_nested", "connection",
}
# In the index's caught classes (ModuleFacts.all_caught): an `except:` that names no class
BARE_EXCEPT = ""
# Session methods that send a statement to the database (`connection()` hands out the
# transaction's connection, whose statements are the session's)
STATEMENT_METHODS = frozenset({"execute", "scalar", "scalars", "get", "stream", "stream_scalars", "connection"})
# Session methods that run a statement, checking a connection out (`Maker().query(...)`).
INLINE_USES = STATEMENT_METHODS | {"query", "exec", "merge"}
PLAIN_METHODS = {"add", "add_all", "expunge", "expunge_all", "expire", "expire_all", "in_transaction"}

# Ending of a generator/iterator annotation that yields a session: Generator[Session, ...]
ITERATOR_TYPES = {
    "typing.Generator", "typing.Iterator", "typing.AsyncGenerator", "typing.AsyncIterator",
    "typing.Iterable", "typing.AsyncIterable",
    "collections.abc.Generator", "collections.abc.Iterator", "collections.abc.AsyncGenerator",
    "collections.abc.AsyncIterator", "collections.abc.Iterable", "collections.abc.AsyncIterable",
}


def session_class(qualified: str | None) -> bool | None:
    """True/False (async or not) when ``qualified`` names a session class, else None."""
    if qualified is None:
        return None
    return SESSION_CLASSES.get(qualified)


def library_session_function(qualified: str | None) -> bool | None:
    """True/False (async or not) when ``qualified`` is a library function returning a new session."""
    if qualified is None:
        return None
    return LIBRARY_SESSION_FUNCTIONS.get(qualified)


def factory_builder(qualified: str | None) -> bool | None:
    if qualified is None:
        return None
    return FACTORY_BUILDERS.get(qualified)

DECLARATIVE_BASE_FACTORIES = {
    "sqlalchemy.orm.declarative_base",
    "sqlalchemy.ext.declarative.declarative_base",
    "sqlalchemy.orm.decl_api.declarative_base",
}
DECLARATIVE_BASE_CLASSES = {
    "sqlalchemy.orm.DeclarativeBase",
    "sqlalchemy.orm.DeclarativeBaseNoMeta",
    "sqlalchemy.orm.decl_api.DeclarativeBase",
    "sqlalchemy.orm.decl_api.DeclarativeBaseNoMeta",
}
SQLMODEL = {"sqlmodel.SQLModel", "sqlmodel.main.SQLModel"}
FLASK_SQLALCHEMY = {"flask_sqlalchemy.SQLAlchemy", "flask_sqlalchemy.extension.SQLAlchemy",
                    "flask.ext.sqlalchemy.SQLAlchemy"}
RELATIONSHIP_CALLS = {"relationship", "Relationship", "relation", "dynamic_loader"}
COLUMN_CALLS = {"Column", "mapped_column", "column_property", "deferred", "composite", "query_expression"}
MAPPED = {"sqlalchemy.orm.Mapped", "sqlalchemy.orm.base.Mapped"}
NOT_COLUMNS = {"typing.ClassVar", "sqlalchemy.orm.declared_attr"}
# `@mapper_registry.mapped` / `@mapped_as_dataclass(reg)` map a plain class.
MAPPING_DECORATORS = ("mapped", "mapped_as_dataclass", "as_declarative_base")
DECLARED_ATTR = {"sqlalchemy.orm.declared_attr", "sqlalchemy.ext.declarative.declared_attr",
                 "sqlalchemy.orm.decl_api.declared_attr"}
PROPERTY_DECORATORS = ("property", "cached_property", "hybrid_property", "reify")


def is_property_decorator(decorator: str) -> bool:
    """Does a decorator's dotted name (``functools.cached_property``, ``reify``) make the
    method read as an attribute of the instance?"""
    return decorator.rsplit(".", 1)[-1] in PROPERTY_DECORATORS

CONTEXT_MANAGER_DECORATORS = {"contextlib.contextmanager", "contextlib.asynccontextmanager"}

# Library decorators that keep what the decorated function returns for later calls, in the
# process (not per instance: `cachetools.cachedmethod` keeps its cache on `self`).
MEMO_DECORATORS = {
    "functools.lru_cache", "functools.cache", "cachetools.cached", "cachetools.func.lru_cache",
    "cachetools.func.ttl_cache", "cachetools.func.lfu_cache", "cachetools.func.fifo_cache",
    "cachetools.func.rr_cache", "async_lru.alru_cache", "aiocache.cached", "asyncache.cached",
}
# Words in a project decorator's name that say it keeps results, and words that say it does
# something else to a cache (empties it, sets HTTP headers).
_MEMO_WORDS = ("cache", "memo")
_NOT_MEMO_WORDS = ("invalidat", "clear", "evict", "purge", "bust", "delete", "drop", "reset",
                   "refresh", "flush", "no_cache", "nocache", "never_cache", "control", "header", "page",
                   "property")


def memo_named(name: str) -> bool:
    """Does the last part of a decorator's name say it keeps results (`locked_cached`,
    `memoize`), rather than clearing a cache (`invalidate_cache`), setting HTTP caching
    (`cache_control`, `cache_page`) or keeping a value per object (`cached_property`)?"""
    last = name.rsplit(".", 1)[-1].lower()
    return any(w in last for w in _MEMO_WORDS) and not any(w in last for w in _NOT_MEMO_WORDS)


_TEST_PACKAGES = frozenset({"test", "tests", "testing"})


def is_test_module(module: str) -> bool:
    """A module of the project's tests, judged by its dotted name (the directories above the
    project do not count): one in a package `test`, `tests`, `testing` or `test_*`
    (`tests.routes.users`), or one named as test runners collect them: `test_*`, `*_test`,
    `tests` (Django's `tests.py`, a `tests/__init__.py`), `conftest`. A module named `test` or
    `testing` is the application's own (`crud/test.py` handling test runs)."""
    *packages, last = module.split(".")
    return any(p in _TEST_PACKAGES or p.startswith("test_") for p in packages) \
        or last in ("tests", "conftest") or last.startswith("test_") or last.endswith("_test")


def method_key(name: str) -> str:
    """The key a model method's reads are kept under among the model's properties
    (``"to_dict()"``): a property read and a method call both read ``obj.<key>``, and the
    ``()`` keeps the two apart (see index.model_reads)."""
    return f"{name}()"

# Builtins that advance an iterator once: `next(get_db())` takes the first value of a generator
# that nothing else holds.
ADVANCE = frozenset({"next", "anext"})

# Builtins that name the attribute they reach as a string: `getattr(user, "posts", None)` reads
# `user.posts`.
NAMED_ATTRIBUTE = frozenset({"getattr", "hasattr", "setattr"})

# Marks a with-item that is a value (`async with session:`, maybe a session), not a call, in
# the index's with-item callees.
WITH_VALUE = "="
