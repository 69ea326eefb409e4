"""What installed libraries' session helpers do, written as the small modules the index reads.

A project that imports a session helper from a library (fastapi-sqla's `open_session`) uses
code sqla-fix does not read. Each entry here states, in a few lines of Python, what that
helper does to the session it hands out: the index extracts it like a project module, so
`with open_session() as db:` is a scope that commits when the block ends without an error
and then closes the session, under a factory with SQLAlchemy's defaults (expire on commit).
Where versions of a library differ, the stub states the setting that reports less.
A stub is added only when a project module imports from that library and the project does
not define a module of the same name.
"""

from __future__ import annotations

from collections.abc import Iterable

from .extract import extract
from .facts import ModuleFacts

# fastapi-sqla: `open_session(key=...)` / `open_async_session(key=...)` open a session from the
# factory registered for the key, commit it when the block ends without an error (rolling
# back otherwise), and close it. Its sync factories keep SQLAlchemy's default (expire on
# commit); its async ones are built with expire_on_commit=False.
_FASTAPI_SQLA = '''
from contextlib import asynccontextmanager, contextmanager

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import sessionmaker

_sync_factory = sessionmaker()
_async_factory = async_sessionmaker(expire_on_commit=False)


@contextmanager
def open_session(key="default"):
    session = _sync_factory()
    try:
        yield session
    except Exception:
        session.rollback()
        raise
    else:
        session.commit()
    finally:
        session.close()


@asynccontextmanager
async def open_async_session(key="default"):
    session = _async_factory()
    try:
        yield session
    except Exception:
        await session.rollback()
        raise
    else:
        await session.commit()
    finally:
        await session.close()
'''

LIBRARIES = {"fastapi_sqla": _FASTAPI_SQLA}
PATH_PREFIX = "<library>"


def library_modules(project: Iterable[ModuleFacts]) -> list[ModuleFacts]:
    """The stubs of the libraries the project's modules import (and do not define)."""
    mods = list(project)
    defined = {m.module for m in mods}
    wanted = {target.split(".", 1)[0] for m in mods for target in m.imports.values()} & set(LIBRARIES)
    return [extract(f"{PATH_PREFIX}/{name}/__init__.py", LIBRARIES[name], name)
            for name in sorted(wanted - defined)]
