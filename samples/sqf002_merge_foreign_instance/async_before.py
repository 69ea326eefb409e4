"""SQF002: the current user, loaded by the auth dependency's own still-open session,
is add()-ed to the request session."""

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

DB_DIR = tempfile.TemporaryDirectory()
engine = create_async_engine(f"sqlite+aiosqlite:///{os.path.join(DB_DIR.name, 'app.db')}")
SessionLocal = async_sessionmaker(engine)
app = FastAPI()


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    visits: Mapped[int] = mapped_column(default=0)


async def get_db() -> AsyncIterator[AsyncSession]:
    async with SessionLocal() as session:
        yield session


async def get_auth_db() -> AsyncIterator[AsyncSession]:
    """The auth module keeps its own session, open until the request ends."""
    async with SessionLocal() as session:
        yield session


async def get_current_user(auth_db: AsyncSession = Depends(get_auth_db)) -> User:
    user = await auth_db.get(User, 1)
    if user is None:
        raise LookupError("no current user")
    return user


@app.post("/visit")
async def visit(
    current_user: User = Depends(get_current_user), db: AsyncSession = Depends(get_db)
) -> dict[str, int]:
    current_user.visits += 1
    visits = current_user.visits
    db.add(current_user)
    await db.commit()
    return {"visits": visits}


async def setup() -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with SessionLocal() as session:
        session.add(User(id=1, name="alice", visits=0))
        await session.commit()
    await engine.dispose()


async def read_visits() -> int:
    async with SessionLocal() as session:
        visits = (await session.execute(select(User.visits).where(User.id == 1))).scalar_one()
    await engine.dispose()
    return visits


def main() -> None:
    with DB_DIR:
        asyncio.run(setup())
        with TestClient(app) as client:
            print(f"response: {client.post('/visit').json()}")
        visits = asyncio.run(read_visits())
        print(f"visits: {visits}")
        assert visits == 1, visits


if __name__ == "__main__":
    main()
