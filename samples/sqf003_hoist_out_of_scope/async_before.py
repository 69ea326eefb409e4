"""SQF003 (async): show_avatars() reads the user after the block that loaded it has closed.

Leaving get_user_service() commits, which expires the user, and closes the session, which
detaches it, so user.id, user.name and user.visits cannot be read after the block.
"""

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import ForeignKey, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

DB_DIR = tempfile.TemporaryDirectory()
engine = create_async_engine(f"sqlite+aiosqlite:///{os.path.join(DB_DIR.name, 'bot.db')}")
session_pool = async_sessionmaker(engine)

TELEGRAM_ID = 174171680
EXPECTED = "alice (1 visits): portrait, cartoon"


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    telegram_id: Mapped[int] = mapped_column(unique=True)
    name: Mapped[str]
    visits: Mapped[int] = mapped_column(default=0)


class Avatar(Base):
    __tablename__ = "avatars"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str]


class UserService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_telegram_id(self, telegram_id: int) -> User | None:
        result = await self.session.execute(select(User).where(User.telegram_id == telegram_id))
        return result.scalar_one_or_none()

    async def register_visit(self, user: User) -> None:
        user.visits += 1


class AvatarService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list_titles(self, user_id: int) -> list[str]:
        titles = await self.session.scalars(
            select(Avatar.title).where(Avatar.user_id == user_id).order_by(Avatar.id)
        )
        return list(titles)


@asynccontextmanager
async def get_user_service() -> AsyncIterator[UserService]:
    async with session_pool() as session:
        yield UserService(session)
        await session.commit()


@asynccontextmanager
async def get_avatar_service() -> AsyncIterator[AvatarService]:
    async with session_pool() as session:
        yield AvatarService(session)
        await session.commit()


async def show_avatars(telegram_id: int) -> str:
    async with get_user_service() as user_service:
        user = await user_service.get_by_telegram_id(telegram_id)
        if user is None:
            return "no such user"
        await user_service.register_visit(user)

    async with get_avatar_service() as avatar_service:
        titles = await avatar_service.list_titles(user.id)
    return f"{user.name} ({user.visits} visits): {', '.join(titles)}"


async def seed() -> None:
    async with session_pool() as session:
        alice = User(telegram_id=TELEGRAM_ID, name="alice", visits=0)
        session.add(alice)
        await session.flush()
        session.add_all(
            [
                Avatar(user_id=alice.id, title="portrait"),
                Avatar(user_id=alice.id, title="cartoon"),
            ]
        )
        await session.commit()


async def run() -> None:
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        await seed()
        reply = await show_avatars(TELEGRAM_ID)
        print(f"reply: {reply}")
        assert reply == EXPECTED, reply
    finally:
        await engine.dispose()


def main() -> None:
    with DB_DIR:
        asyncio.run(run())


if __name__ == "__main__":
    main()
