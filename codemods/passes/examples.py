"""Modules shared by the passes' examples (their `example_project`)."""

SYNC_DB = '''
from contextlib import contextmanager

from sqlalchemy import create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

engine = create_engine("sqlite://")
SessionLocal = sessionmaker(engine)
QuietSession = sessionmaker(engine, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


class Message(Base):
    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    content: Mapped[str]


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    posts: Mapped[list["Message"]] = relationship()


@contextmanager
def get_db():
    session = SessionLocal()
    try:
        yield session
        session.commit()
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def read_db():
    session = SessionLocal()
    try:
        yield session
    finally:
        session.close()
'''

FLASK = '''
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
'''

BOT = '''
from contextlib import asynccontextmanager

from sqlalchemy import ForeignKey
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

engine = create_async_engine("sqlite+aiosqlite://")
session_pool = async_sessionmaker(engine)
quiet_pool = async_sessionmaker(engine, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    visits: Mapped[int] = mapped_column(default=0)
    balance: Mapped["Balance"] = relationship()


class Balance(Base):
    __tablename__ = "balances"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))


class UserService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_telegram_id(self, telegram_id: int) -> User | None:
        ...

    async def get(self, user_id: int) -> User:
        ...

    async def register_visit(self, user: User) -> None:
        user.visits += 1

    async def summary(self, telegram_id: int) -> dict:
        ...


@asynccontextmanager
async def get_user_service():
    async with session_pool() as session:
        yield UserService(session)
        await session.commit()


@asynccontextmanager
async def get_quiet_user_service():
    async with quiet_pool() as session:
        yield UserService(session)
        await session.commit()


@asynccontextmanager
async def get_avatar_service():
    async with session_pool() as session:
        yield session
'''

REPO = '''
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, selectinload

from bot.services import engine


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    books: Mapped[list["Book"]] = relationship()

    @property
    def book_count(self) -> int:
        return len(self.books)


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)


def get_author(author_id: int) -> Author:
    with Session(engine) as session:
        return session.get(Author, author_id)


def get_author_with_books(author_id: int) -> Author:
    with Session(engine) as session:
        return session.get(Author, author_id, options=[selectinload(Author.books)])
'''
