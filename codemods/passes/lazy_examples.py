"""Modules of SQF006's example project: a shop (queries with and without loader options,
functions that load, build and read), and jobs (loads whose options reach some paths of an
object graph and not others, and helpers that read deep into what they are handed), and
accounts (sync: functions that load, or build and commit, with the session they are given)."""

SHOP = '''
from sqlalchemy import ForeignKey, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, selectinload

from bot.services import Base


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    orders: Mapped[list["Order"]] = relationship(back_populates="customer")
    notes: Mapped[list["Note"]] = relationship(lazy="selectin")


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    customer: Mapped[Customer] = relationship(back_populates="orders")
    lines: Mapped[list["Line"]] = relationship(lazy="raise")


class Line(Base):
    __tablename__ = "lines"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))


async def get_order(session: AsyncSession, order_id: int) -> Order | None:
    result = await session.execute(select(Order).options(selectinload(Order.customer)).where(Order.id == order_id))
    return result.scalar_one_or_none()


async def get_order_with_history(session: AsyncSession, order_id: int):
    stmt = select(Order).options(selectinload(Order.customer).selectinload(Customer.orders))
    return (await session.execute(stmt.where(Order.id == order_id))).scalar_one()


async def get_order_with(session: AsyncSession, order_id: int, *options) -> Order | None:
    return (await session.execute(select(Order).options(*options).where(Order.id == order_id))).scalar_one_or_none()


async def place_order(session: AsyncSession, customer: Customer) -> Order:
    order = Order(customer=customer)
    session.add(order)
    await session.flush()
    return order


async def list_orders(session: AsyncSession) -> list[Order]:
    return (await session.scalars(select(Order).options(selectinload(Order.customer)))).all()


def orders_of(customer: Customer) -> int:
    return len(customer.orders)


def known_orders(customer: Customer) -> int:
    if "orders" in inspect(customer).unloaded:
        return 0
    return len(customer.orders)


def get_order_sync(session: Session, order_id: int) -> Order | None:
    return session.execute(select(Order).options(selectinload(Order.customer)).where(Order.id == order_id)).scalar_one_or_none()
'''

JOBS = '''
from sqlalchemy import Column, ForeignKey, Table, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column, relationship, selectinload

from bot.services import Base

upstream_links = Table(
    "upstream_links",
    Base.metadata,
    Column("project_id", ForeignKey("projects.id"), primary_key=True),
    Column("upstream_id", ForeignKey("projects.id"), primary_key=True),
)


class Mirror(Base):
    __tablename__ = "mirrors"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    url: Mapped[str]


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    readme: Mapped[str] = mapped_column(deferred=True)
    mirrors: Mapped[list[Mirror]] = relationship()
    upstreams: Mapped[list["Project"]] = relationship(
        secondary=upstream_links,
        primaryjoin=id == upstream_links.c.project_id,
        secondaryjoin=id == upstream_links.c.upstream_id,
    )


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    project: Mapped[Project] = relationship()


def mirror_urls(job: Job) -> list[str]:
    own = [m.url for m in job.project.mirrors]
    upstream = [mirror.url for up in job.project.upstreams for mirror in up.mirrors]
    return own + upstream


def may_mirror(project, quota: int) -> bool:
    return len(project.mirrors) < quota


async def check_quota(session: AsyncSession, project: Project) -> bool:
    return may_mirror(project, 3)


async def new_project(session: AsyncSession, name: str) -> Project:
    project = Project(name=name, mirrors=[])
    session.add(project)
    await session.flush()
    await session.refresh(project)
    return project


async def start_project(session: AsyncSession, name: str) -> Project:
    project = Project(name=name)
    session.add(project)
    return project
'''


# Sync: a session factory (one that expires on commit, one that does not), and functions that
# load, or build and commit, an account with the session they are given.
ACCOUNTS = '''
from sqlalchemy import ForeignKey, create_engine, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, selectinload, sessionmaker

from bot.repo import Base

SessionLocal = sessionmaker(bind=create_engine("sqlite://"))
KeepingSession = sessionmaker(bind=create_engine("sqlite://"), expire_on_commit=False)


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    keys: Mapped[list["Key"]] = relationship()


class Key(Base):
    __tablename__ = "keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    label: Mapped[str]


def open_account(db: Session, name: str, labels: list[str]):
    account = Account(name=name, keys=[Key(label=label) for label in labels])
    db.add(account)
    db.commit()
    db.refresh(account)
    return account


def find_account(db: Session, name: str):
    return db.execute(select(Account).where(Account.name == name)).scalar_one_or_none()


def find_account_with_keys(db: Session, name: str):
    stmt = select(Account).options(selectinload(Account.keys)).where(Account.name == name)
    return db.execute(stmt).scalar_one_or_none()
'''

CHATS = '''
from sqlalchemy import ForeignKey, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column, relationship, selectinload

from bot.services import Base


class Persona(Base):
    __tablename__ = "personas"
    id: Mapped[int] = mapped_column(primary_key=True)
    greeting: Mapped[str]


class Chat(Base):
    __tablename__ = "chats"
    id: Mapped[int] = mapped_column(primary_key=True)
    persona_id: Mapped[int | None] = mapped_column(ForeignKey("personas.id"))
    persona: Mapped[Persona | None] = relationship()


async def chat_context(db: AsyncSession, chat_id: int) -> dict:
    chat = (await db.execute(select(Chat).where(Chat.id == chat_id))).scalar_one_or_none()
    if chat is None:
        return {"missing": True}
    return {"chat": chat, "history": []}


async def chat_context_with_persona(db: AsyncSession, chat_id: int) -> dict:
    stmt = select(Chat).options(selectinload(Chat.persona)).where(Chat.id == chat_id)
    return {"chat": (await db.execute(stmt)).scalar_one(), "history": []}
'''
