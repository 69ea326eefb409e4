"""Objects built around a session (repositories), library helpers read as stub modules, the
model `self` has in an abstract mapped class, and a relationship read after the `with` block
that loaded its object closed the session."""

from __future__ import annotations

from codemods.config import Config
from codemods.engine import fix_text
from codemods.index import ProjectIndex, extract
from codemods.index.library import library_modules
from codemods.passes.examples import SYNC_DB

BASE = '''
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession


class Repository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> Self:
        return cls(session)

    @classmethod
    def describe(cls, session: AsyncSession) -> str:
        return "repository"

    async def save(self, obj) -> None:
        self.session.add(obj)
        await self.session.commit()

    async def stage(self, obj) -> None:
        self.session.add(obj)
        await self.session.flush()

    async def stage_quietly(self, obj) -> None:
        try:
            self.session.add(obj)
            await self.session.flush()
        except Exception:
            pass

    async def _one(self, statement):
        return (await self.session.execute(statement)).scalar_one_or_none()

    def label(self) -> str:
        return "no query here"
'''
PACKAGE = "from app.repo.base import Repository\n"
TAGS = '''
from app.repo import Repository


class TagRepository(Repository):
    async def by_label(self, label: str):
        return await self._one(label)
'''


def _index() -> ProjectIndex:
    return ProjectIndex([extract("app/repo/__init__.py", PACKAGE, "app.repo"),
                         extract("app/repo/base.py", BASE, "app.repo.base"),
                         extract("app/tags.py", TAGS, "app.tags")])


def test_the_index_knows_what_is_built_around_a_session_and_what_its_methods_do():
    idx = _index()
    tags = "app.tags.TagRepository"
    assert idx.built_by(tags, 0) == (tags, 0)  # the constructor (inherited through a re-export)
    assert idx.built_by(f"{tags}.from_session", 0) == (tags, 0)  # a class method returning cls(session)
    assert idx.built_by(f"{tags}.describe", 0) is None  # a class method that builds nothing
    assert idx.constructed_flushes(tags, 0, "save") == "commit"
    assert idx.constructed_flushes(tags, 0, "stage") == "flush"
    assert idx.constructed_flushes(tags, 0, "stage_quietly") is None  # its own handler catches every failure
    assert idx.constructed_flushes(tags, 1, "save") is None  # the session is not what was passed there
    assert idx.method_uses_session(tags, "by_label")  # through `self._one`, which executes
    assert not idx.method_uses_session(tags, "label")
    assert {"save", "stage"} <= idx.flushing_function_names()


def test_a_failed_flush_through_a_repository_then_a_query_through_it_in_the_handler():
    source = '''
from sqlalchemy.exc import IntegrityError

from app.tags import TagRepository


async def ensure(session, tag) -> object:
    tags = TagRepository.from_session(session)
    try:
        await tags.stage(tag)
    except IntegrityError:
        found = await tags.by_label(tag.label)
        if found is None:
            raise
        return found
    tags.label()
    return tag
'''
    result = fix_text(source, Config(root="/p", select=("SQF009",)), path="app/ensure.py",
                      project={"app/__init__.py": "", "app/repo/__init__.py": PACKAGE, "app/repo/base.py": BASE,
                               "app/tags.py": TAGS})
    assert [(f.line, f.message.split(" runs in")[0]) for f in result.findings] == [(12, "`tags.by_label()`")]
    # a handler that rolls back the session first is left alone
    fixed = source.replace("    except IntegrityError:\n", "    except IntegrityError:\n        await session.rollback()\n")
    again = fix_text(fixed, Config(root="/p", select=("SQF009",)), path="app/ensure.py",
                     project={"app/__init__.py": "", "app/repo/__init__.py": PACKAGE, "app/repo/base.py": BASE,
                              "app/tags.py": TAGS})
    assert again.findings == []


def test_a_use_before_a_later_rollback_in_the_handler_gets_no_fix():
    source = '''
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import User


def rename(session: Session, user: User, name: str) -> None:
    user.name = name
    try:
        session.commit()
    except IntegrityError:
        taken = session.scalars(select(User).where(User.name == name)).first()
        session.rollback()
        log.warning("taken by %s", taken)
'''
    result = fix_text(source, Config(root="/p", select=("SQF009",)), path="app/rename.py",
                      project={"app/__init__.py": "", "app/db.py": SYNC_DB})
    assert len(result.findings) == 1
    finding = result.findings[0]
    assert finding.line == 14 and "before any `session.rollback()`" in finding.message
    assert not finding.fixable


def test_library_stubs_are_added_only_for_libraries_the_project_imports():
    user = extract("app/jobs.py", "from fastapi_sqla import open_session\n", "app.jobs")
    other = extract("app/other.py", "import os\n", "app.other")
    assert [m.module for m in library_modules([user, other])] == ["fastapi_sqla"]
    assert library_modules([other]) == []
    own = extract("fastapi_sqla/__init__.py", "def open_session():\n    pass\n", "fastapi_sqla")
    assert library_modules([user, own]) == []  # the project defines a module of that name: it is the project's
    idx = ProjectIndex([user, *library_modules([user])])
    scope = idx.scope("fastapi_sqla.open_session")
    assert scope is not None and scope.yields == "session" and scope.commits_on_exit and scope.closes_on_exit
    assert scope.expire_on_commit and scope.is_async is False
    async_scope = idx.scope("fastapi_sqla.open_async_session")
    assert async_scope is not None and async_scope.is_async and async_scope.commits_on_exit
    assert not async_scope.expire_on_commit  # its async factories are built not to expire


def test_self_of_an_abstract_mapped_class_has_the_columns_it_declares():
    source = '''
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Entity(Base):
    __abstract__ = True
    id: Mapped[int] = mapped_column(primary_key=True)


class Helper:
    name = "not mapped"
'''
    idx = ProjectIndex([extract("app/models.py", source, "app.models")])
    assert idx.model("app.models.Entity") is None  # no table of its own
    model = idx.instance_model("app.models.Entity")
    assert model is not None and "id" in model.columns
    assert idx.instance_model("app.models.Helper") is None


ACCOUNTS = '''
from sqlalchemy import ForeignKey, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, scoped_session, sessionmaker


class Base(DeclarativeBase):
    pass


SessionLocal = sessionmaker(bind=create_engine("sqlite://"))
Registry = scoped_session(sessionmaker(bind=create_engine("sqlite://")))


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    keys: Mapped[list["Key"]] = relationship()


class Key(Base):
    __tablename__ = "keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))


def open_account(db: Session):
    account = Account()
    db.add(account)
    db.flush()
    return account


def create_account(db: Session):
    account = Account(keys=[Key()])
    db.add(account)
    db.commit()
    db.refresh(account)
    return account


def find(db: Session, account_id: int):
    return db.execute(select(Account).where(Account.id == account_id)).scalar_one_or_none()
'''


def _sqf006(source: str) -> list[int]:
    result = fix_text(source, Config(root="/p", select=("SQF006",)), path="app/views.py",
                      project={"app/__init__.py": "", "app/accounts.py": ACCOUNTS})
    return [f.line for f in result.findings]


def test_a_relationship_read_after_the_block_where_a_function_built_and_committed_its_object():
    source = '''
from app.accounts import Registry, SessionLocal, create_account, find, open_account


def keys_of_new() -> int:
    with SessionLocal() as db:
        account = create_account(db)
    return len(account.keys)


def keys_of_flushed() -> int:
    with SessionLocal() as db:
        account = open_account(db)
    return len(account.keys)


def keys_of_registry() -> int:
    with Registry() as db:
        account = create_account(db)
    return len(account.keys)


def keys_read_in_block() -> int:
    with SessionLocal() as db:
        account = create_account(db)
        first = account.keys
    return len(account.keys) + len(first)


def keys_of_loaded(account_id: int) -> int:
    with SessionLocal() as db:
        account = find(db, account_id)
    return len(account.keys)


def keys_read_back() -> int:
    with SessionLocal() as db:
        account = create_account(db)
    account = find_elsewhere()
    return len(account.keys)
'''
    # not counted: an account a function built and only flushed (what it holds depends on what
    # it was given), a scoped registry's session (the index does not count it as closed), keys
    # read (loaded) in the block, an account loaded by a query (SQF003 reports that read), and
    # a name bound again after the block
    assert _sqf006(source) == [8]


def test_an_instance_deleted_in_the_failed_transaction_is_restored_expired_by_the_rollback():
    from codemods.passes.examples import BOT

    source = '''
from bot.services import User, session_pool


async def remove(user_id: int) -> str:
    async with session_pool() as session:
        user = await session.get(User, user_id)
        try:
            await session.delete(user)
            await session.commit()
        except Exception:
            await session.rollback()
            return f"kept {user.name}"
        return "removed"


async def remove_then_check(user_id: int) -> str:
    async with session_pool() as session:
        user = await session.get(User, user_id)
        await session.delete(user)
        await session.commit()
        try:
            await session.commit()
        except Exception:
            await session.rollback()
            return f"removed {user.name}, the check failed"
        return "removed"
'''
    result = fix_text(source, Config(root="/p", select=("SQF010",)), path="bot/remove.py",
                      project={"bot/__init__.py": "", "bot/services.py": BOT})
    # the second: the delete was committed before the try, so `user` is detached, not restored
    assert [f.line for f in result.findings] == [13]


def test_sqf003_counts_a_relationship_read_in_the_block_after_its_last_expiry_as_loaded():
    from codemods.passes.examples import BOT

    source = '''
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from bot.services import User

engine = create_engine("sqlite://")


def read_then_leave(user_id: int):
    with Session(engine) as session:
        user = session.get(User, user_id)
        first = user.balance
    return user.balance, first


def read_then_commit(user_id: int):
    with Session(engine) as session:
        user = session.get(User, user_id)
        first = user.balance
        session.commit()
    return user.balance, first
'''
    result = fix_text(source, Config(root="/p", select=("SQF003",)), path="bot/balances.py",
                      project={"bot/__init__.py": "", "bot/services.py": BOT})
    assert [f.line for f in result.findings] == [22]  # the commit expired what the read had loaded


def test_a_savepoint_bound_by_a_with_block_and_rolled_back_in_the_handler():
    """The failed flush closed the savepoint of the `async with` block: rolling it back does
    not open it again, and a query later in the block raises InvalidRequestError (run on
    aiosqlite); a savepoint that is not a context manager, rolled back, leaves the session
    usable."""
    source = '''
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import User


async def register(db: AsyncSession, name: str) -> User:
    async with db.begin_nested() as nested:
        user = User(name=name)
        db.add(user)
        try:
            await db.flush()
        except IntegrityError:
            await nested.rollback()
            return (await db.execute(select(User).where(User.name == name))).scalar_one()
    await db.commit()
    return user
'''
    project = {"app/__init__.py": "", "app/db.py": SYNC_DB}
    result = fix_text(source, Config(root="/p", select=("SQF009",)), path="app/register.py", project=project)
    assert [f.line for f in result.findings] == [17]
    assert "InvalidRequestError" in result.findings[0].message and not result.findings[0].fixable
    assert "`async with db.begin_nested():` block of line 10" in result.findings[0].message
    unbound = source.replace("    async with db.begin_nested() as nested:\n", "    nested = await db.begin_nested()\n    if True:\n")
    again = fix_text(unbound, Config(root="/p", select=("SQF009",)), path="app/register.py", project=project)
    assert again.findings == []
