"""SQF006: in async code, a relationship the query did not load is read while attached.

The read needs a lazy load, which an AsyncSession cannot run implicitly: MissingGreenlet.
The fix is to load it eagerly (`selectinload(User.wallet)`) or `await user.awaitable_attrs.wallet`.
"""

import asyncio

from sqlalchemy import ForeignKey, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

engine = create_async_engine("sqlite+aiosqlite://")
session_pool = async_sessionmaker(engine, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


class Wallet(Base):
    __tablename__ = "wallets"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    amount: Mapped[int]


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    wallet: Mapped[Wallet] = relationship()


async def show_balance(user_id: int) -> int:
    async with session_pool() as session:
        user = (await session.execute(select(User).where(User.id == user_id))).scalar_one()
        return user.wallet.amount


async def main() -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with session_pool() as session:
        session.add(User(id=1, name="ann"))
        session.add(Wallet(id=1, user_id=1, amount=30))
        await session.commit()
    print("balance:", await show_balance(1))


asyncio.run(main())
