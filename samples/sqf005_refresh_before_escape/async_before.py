"""SQF005 (async): create_user() returns a committed user out of its session block.

The commit expired the user and leaving the block detached it, so the caller cannot read it.
"""

import asyncio
import os
import tempfile

from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

DB_DIR = tempfile.TemporaryDirectory()
engine = create_async_engine(f"sqlite+aiosqlite:///{os.path.join(DB_DIR.name, 'app.db')}")
SessionLocal = async_sessionmaker(engine)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


async def create_user(name: str) -> User:
    async with SessionLocal() as session:
        user = User(name=name)
        session.add(user)
        await session.commit()
        return user


async def run() -> None:
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        user = await create_user("alice")
        print(f"id: {user.id}")
        print(f"name: {user.name}")
        assert (user.id, user.name) == (1, "alice")
    finally:
        await engine.dispose()


def main() -> None:
    with DB_DIR:
        asyncio.run(run())


if __name__ == "__main__":
    main()
