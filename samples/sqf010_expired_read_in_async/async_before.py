"""SQF010: register() reads the new user's id after the commit expired it.

The session is still open, so the read tries to reload the row implicitly, which an
AsyncSession cannot do: MissingGreenlet (wrapped in StatementError on SQLAlchemy 2.1).
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
    visits: Mapped[int] = mapped_column(default=0)


async def register(name: str) -> str:
    async with SessionLocal() as session:
        user = User(name=name)
        session.add(user)
        await session.commit()
        return f"user {user.id} is {user.name}"


async def visit(user_id: int) -> int:
    async with SessionLocal() as session:
        user = await session.get(User, user_id)
        if user is None:
            return 0
        user.visits += 1
        await session.commit()
        return user.visits


async def run() -> None:
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        print(await register("alice"))
        print(f"visits: {await visit(1)}")
    finally:
        await engine.dispose()


def main() -> None:
    with DB_DIR:
        asyncio.run(run())


if __name__ == "__main__":
    main()
