"""SQF009, async: a sign-up helper reports a taken name and returns False.

It leaves the failed transaction in the caller's session: the caller's next sign-up raises
PendingRollbackError.
"""

import asyncio
import os
import tempfile

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
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
    name: Mapped[str] = mapped_column(unique=True)


async def sign_up(session: AsyncSession, name: str) -> bool:
    session.add(User(name=name))
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        session.expunge_all()
        return False
    return True


async def run() -> int:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with SessionLocal() as session:
        for name in ["alice", "alice", "bob"]:
            ok = await sign_up(session, name)
            print(f"sign up {name}: {'ok' if ok else 'name taken'}")
        count = await session.scalar(select(func.count(User.id)))
    await engine.dispose()
    return count


def main() -> None:
    with DB_DIR:
        print(f"users: {asyncio.run(run())}")


if __name__ == "__main__":
    main()
