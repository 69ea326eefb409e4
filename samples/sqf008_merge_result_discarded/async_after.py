"""SQF008, async: a visit counted on an object merged into the request's session.

`await session.merge(user)` returns the session's copy; the increment goes to the object
outside the session, and the commit saves nothing.
"""

import asyncio
import os
import tempfile

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
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


async def record_visit(session: AsyncSession, user: User) -> None:
    user = await session.merge(user)
    user.visits += 1
    await session.commit()


async def run() -> int:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with SessionLocal() as session:
        session.add(User(id=1, name="alice", visits=0))
        await session.commit()
    cached = User(id=1, name="alice", visits=0)  # e.g. rebuilt from a JSON cache
    async with SessionLocal() as session:
        await record_visit(session, cached)
    async with SessionLocal() as session:
        visits = await session.scalar(select(User.visits).where(User.id == 1))
    await engine.dispose()
    return visits


def main() -> None:
    with DB_DIR:
        visits = asyncio.run(run())
        if visits == 1:
            print(f"visits: {visits}")
        else:
            print(f"lost update: the row still says {visits} visits")


if __name__ == "__main__":
    main()
