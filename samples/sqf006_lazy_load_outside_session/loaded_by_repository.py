"""SQF006: an object a repository function loaded, and a relationship its query did not load.

`get_order` loads an order with its customer (`selectinload(Order.customer)`) and nothing
else. The handler reaches the customer through `order.customer`, which is loaded, and then
asks for the customer's other orders: that collection was never loaded, so reading it needs a
lazy load, which an AsyncSession cannot run implicitly: MissingGreenlet. The default of
`getattr(customer, "orders", [])` does not help: it catches a missing attribute, not the load.
The fix is to name the collection in the query (`selectinload(Order.customer).selectinload(
Customer.orders)`) or to `await customer.awaitable_attrs.orders`.
"""

import asyncio

from sqlalchemy import ForeignKey, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload

engine = create_async_engine("sqlite+aiosqlite://")
session_pool = async_sessionmaker(engine, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    orders: Mapped[list["Order"]] = relationship(back_populates="customer")


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    customer: Mapped[Customer] = relationship(back_populates="orders")


async def get_order(session: AsyncSession, order_id: int) -> Order | None:
    result = await session.execute(
        select(Order).options(selectinload(Order.customer)).where(Order.id == order_id)
    )
    return result.scalar_one_or_none()


async def other_orders(order_id: int) -> list[int]:
    async with session_pool() as session:
        order = await get_order(session, order_id)
        if order is None:
            return []
        customer = order.customer
        return [o.id for o in getattr(customer, "orders", [])]


async def main() -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with session_pool() as session:
        session.add(Customer(id=1, name="ann"))
        session.add_all([Order(id=1, customer_id=1), Order(id=2, customer_id=1)])
        await session.commit()
    print("orders:", await other_orders(1))


asyncio.run(main())
