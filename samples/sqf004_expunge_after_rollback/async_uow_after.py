"""SQF004 (async): UnitOfWork.__aexit__ rolls back when the block raised.

The rollback runs on the error path, so the session is cleared right after it.
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


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    item: Mapped[str]


class UnitOfWork:
    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self.factory = factory

    async def __aenter__(self) -> "UnitOfWork":
        self.session = self.factory()
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            await self.session.rollback()
            self.session.expunge_all()
        else:
            await self.session.commit()
        await self.session.close()


async def run() -> None:
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        try:
            async with UnitOfWork(SessionLocal) as uow:
                uow.session.add(Order(item="lost"))
                await uow.session.flush()
                raise RuntimeError("payment declined")
        except RuntimeError as exc:
            print(f"unit of work failed: {exc}")
        async with UnitOfWork(SessionLocal) as uow:
            uow.session.add(Order(item="kept"))
        async with SessionLocal() as session:
            items = list(await session.scalars(select(Order.item).order_by(Order.id)))
        for item in items:
            print(f"order: {item}")
        assert items == ["kept"], items
    finally:
        await engine.dispose()


def main() -> None:
    with DB_DIR:
        asyncio.run(run())


if __name__ == "__main__":
    main()
