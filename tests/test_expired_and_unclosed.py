"""SQF010 and SQF011 beyond their examples: the project facts they depend on, and the shapes
real code showed."""

from __future__ import annotations

import pytest

from codemods.config import Config
from codemods.engine import fix_text

MODELS = '''
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
'''

REGISTER = '''
from sqlalchemy.ext.asyncio import AsyncSession
from app.models import User


async def register(session: AsyncSession, name: str) -> int:
    user = User(name=name)
    session.add(user)
    await session.commit()
    return user.id
'''


def _codes(source: str, project: dict[str, str], select: str) -> list[str]:
    result = fix_text(source, Config(root="/p", select=(select,)), project=project, path="app/handler.py")
    assert result.error is None
    return [f.code for f in result.findings]


def _project(db: str) -> dict[str, str]:
    return {"app/__init__.py": "", "app/models.py": MODELS, "app/db.py": db}


def test_session_parameter_follows_the_projects_async_factories():
    """A session handed in as a parameter comes from one of the project's factories: when all
    of them keep objects on commit, so does it."""
    quiet = "from sqlalchemy.ext.asyncio import async_sessionmaker\nmaker = async_sessionmaker(expire_on_commit=False)\n"
    default = "from sqlalchemy.ext.asyncio import async_sessionmaker\nmaker = async_sessionmaker()\n"
    mixed = quiet + "other = async_sessionmaker()\n"
    assert _codes(REGISTER, _project(quiet), "SQF010") == []
    assert _codes(REGISTER, _project(default), "SQF010") == ["SQF010"]
    assert _codes(REGISTER, _project(mixed), "SQF010") == ["SQF010"]


BRANCHES = '''
from sqlalchemy.ext.asyncio import AsyncSession
from app.models import User


async def save(session: AsyncSession, user_id: int, keep: bool) -> str:
    user = await session.get(User, user_id)
    if user is None:
        return ""
    if keep:
        await session.commit()
    else:
        return user.name
    return "saved"
'''

LOOP = '''
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from app.models import User


async def rename_all(session: AsyncSession) -> None:
    users = (await session.scalars(select(User))).all()
    for user in users:
        user.name = user.name.title()
        await session.commit()
        print(user.id)
'''


def test_a_read_in_the_other_branch_never_follows_the_commit():
    default = "from sqlalchemy.ext.asyncio import async_sessionmaker\nmaker = async_sessionmaker()\n"
    assert _codes(BRANCHES, _project(default), "SQF010") == []


def test_loop_variables_over_a_loaded_list_are_attached():
    default = "from sqlalchemy.ext.asyncio import async_sessionmaker\nmaker = async_sessionmaker()\n"
    result = fix_text(LOOP, Config(root="/p", select=("SQF010",)), project=_project(default), path="app/handler.py")
    assert [f.code for f in result.findings] == ["SQF010"]
    assert "        await session.commit()\n        await session.refresh(user)\n        print(user.id)\n" in result.new_text


SYNC_DB = '''
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

engine = create_engine("sqlite://")
SessionLocal = sessionmaker(engine)
'''

CLOSED_ON_SUCCESS = '''
from app.db import SessionLocal
from app.models import User


def names() -> list[str]:
    session = SessionLocal()
    out = [u.name for u in session.query(User)]
    session.close()
    return out
'''

CLOSED_ON_BOTH = '''
from app.db import SessionLocal
from app.models import User


def names() -> list[str]:
    session = SessionLocal()
    try:
        out = [u.name for u in session.query(User)]
    except Exception:
        session.close()
        raise
    session.close()
    return out
'''

HANDED_TO_A_CALL = '''
from app.db import SessionLocal


def start(app) -> None:
    session = SessionLocal()
    app.state.sessions.append(session)
'''

USED_BY_A_HELPER = '''
from app.db import SessionLocal
from app import crud


def names() -> list[str]:
    db = SessionLocal()
    return crud.list_names(db)
'''


def test_close_outside_finally_is_reported_without_a_fix():
    result = fix_text(CLOSED_ON_SUCCESS, Config(root="/p", select=("SQF011",)), project=_project(SYNC_DB),
                      path="app/handler.py")
    assert [f.code for f in result.findings] == ["SQF011"]
    assert "not reached when an exception is raised" in result.findings[0].message
    assert not result.changed


def test_closed_in_the_handler_and_after_it_is_closed_on_every_path():
    assert _codes(CLOSED_ON_BOTH, _project(SYNC_DB), "SQF011") == []


def test_a_session_kept_by_a_container_is_handed_over():
    assert _codes(HANDED_TO_A_CALL, _project(SYNC_DB), "SQF011") == []


def test_a_session_only_lent_to_a_helper_still_leaks():
    result = fix_text(USED_BY_A_HELPER, Config(root="/p", select=("SQF011",)), project=_project(SYNC_DB),
                      path="app/handler.py")
    assert [f.code for f in result.findings] == ["SQF011"]
    assert "no automatic fix" in result.findings[0].message
    assert not result.changed


def _registry(keeps: str) -> str:
    """A project function that hands out a session, keeping it as ``keeps`` says first."""
    return ("from sqlalchemy.orm import Session\n"
            "from app.db import engine\n\n"
            "_opened = set()\n\n\n"
            "def fixture_session(**kw):\n"
            "    sess = Session(engine, **kw)\n"
            f"    {keeps}\n"
            "    return sess\n\n\n"
            "def close_all():\n"
            "    for s in _opened:\n"
            "        s.close()\n")


USES_THE_REGISTRY = '''
from app.fixtures import fixture_session
from app.models import User


def test_names() -> None:
    sess = fixture_session()
    sess.add(User(name="a"))
    sess.flush()
    assert fixture_session().query(User).count() == 1
'''


def test_a_session_a_helper_keeps_in_a_module_container_belongs_to_that_registry():
    """`fixture_session()` keeps each session it makes in a module-level set for code that
    closes them all: a caller that does not close it leaks nothing of its own. A helper that
    keeps it in a local list, or keeps something else, hands out a session the caller owns."""
    registry = _project(SYNC_DB) | {"app/fixtures.py": _registry("_opened.add(sess)")}
    assert _codes(USES_THE_REGISTRY, registry, "SQF011") == []
    local = _project(SYNC_DB) | {"app/fixtures.py": _registry("mine = []; mine.append(sess)")}
    assert _codes(USES_THE_REGISTRY, local, "SQF011") == ["SQF011", "SQF011"]
    other = _project(SYNC_DB) | {"app/fixtures.py": _registry("_opened.add(kw)")}
    assert _codes(USES_THE_REGISTRY, other, "SQF011") == ["SQF011", "SQF011"]


@pytest.mark.parametrize("keeps", [
    "if kw:\n        _opened.add(sess)",  # only on one path
    "audit = Session(engine)\n    _opened.add(audit)",  # another session than the one handed out
    "_opened = []\n    _opened.append(sess)",  # a local list named like the module's set
    "if kw:\n        return sess\n    _opened.add(sess)",  # handed out before the add on one path
    "other = Session(engine)\n    _opened.add(sess)\n    if kw:\n        return other",  # another one handed out
])
def test_a_registry_that_may_not_keep_the_session_handed_out_leaves_it_the_callers(keeps):
    project = _project(SYNC_DB) | {"app/fixtures.py": _registry(keeps)}
    assert _codes(USES_THE_REGISTRY, project, "SQF011") == ["SQF011", "SQF011"]
