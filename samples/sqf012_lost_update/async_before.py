"""SQF012, async: a subscription renewed after the session that loaded it has closed.

Leaving `async with SessionLocal() as session:` closes the session and detaches the
subscription. The new expiry date set afterwards stays in memory: the next session's commit
saves nothing, and the row keeps the old date.
"""

import asyncio
import os
import tempfile
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

DB_DIR = tempfile.TemporaryDirectory()
engine = create_async_engine(f"sqlite+aiosqlite:///{os.path.join(DB_DIR.name, 'app.db')}")
SessionLocal = async_sessionmaker(engine)


class Base(DeclarativeBase):
    pass


class Subscription(Base):
    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    expires: Mapped[date]


async def renew(subscription_id: int, until: date) -> None:
    async with SessionLocal() as session:
        subscription = await session.get(Subscription, subscription_id)
    subscription.expires = until
    async with SessionLocal() as session:
        await session.commit()


async def run() -> date:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with SessionLocal() as session:
        session.add(Subscription(id=1, expires=date(2025, 1, 31)))
        await session.commit()
    await renew(1, date(2026, 1, 31))
    async with SessionLocal() as session:
        expires = await session.scalar(select(Subscription.expires).where(Subscription.id == 1))
    await engine.dispose()
    return expires


def main() -> None:
    with DB_DIR:
        expires = asyncio.run(run())
        if expires == date(2026, 1, 31):
            print(f"expires: {expires}")
        else:
            print(f"lost update: the row still says {expires}")


if __name__ == "__main__":
    main()
