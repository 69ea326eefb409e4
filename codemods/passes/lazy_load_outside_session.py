"""SQF006 lazy-load-outside-session (report only)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..lazy import lazy
from .base import Example, FileContext, Finding, Pass, Valid
from .closed_scope_reads import ClosedRead, closed_scope_reads
from .examples import BOT, REPO
from .flow import (
    Event,
    EventKind,
    bound_through,
    events,
    functions,
    lazy_relationships_read,
    read_key,
    session_scoped,
    shape,
    with_end,
    with_scopes,
)
from .helpers import dotted
from .lazy_examples import ACCOUNTS, CHATS, JOBS, SHOP
from .loaded_callers import caller_holdings
from .loaded_relationships import UnloadedRead, closes_its_sessions, unloaded_reads
from .model_examples import TEAMS

if TYPE_CHECKING:
    import libcst as cst

    from .. import index as index_mod
else:
    cst = lazy("libcst")
    index_mod = lazy("codemods.index")


class LazyLoadOutsideSession(Pass):
    code = "SQF006"
    name = "lazy-load-outside-session"
    summary = "a lazy relationship read where it cannot load: async code, or after the session closed"
    fix_safety = "none"
    triggers = (b".",)
    explanation = """
    ## What it does
    Reports reads of a relationship attribute with the default lazy strategy (`lazy="select"`)
    where the load cannot happen:

    - in async code, on an instance attached to an `AsyncSession`, when the query that
      loaded it did not load the relationship eagerly: the implicit load raises
      `MissingGreenlet` (wrapped in `StatementError` on SQLAlchemy 2.1 with aiosqlite);
    - in async code, on an instance loaded by a query on an `AsyncSession` parameter, or
      returned by an async project function whose query loaded it (`sub = await
      get_subscription(db, id)`), or reached through one of its loaded relationships
      (`user = sub.user`), when that query's loader options did not name the relationship:
      `getattr(user, "subscriptions", None)` raises `MissingGreenlet` too, as the default only
      catches a missing attribute (and `hasattr()` catches only `AttributeError`); handing it
      to a project function that reads the relationship is reported at the call; an instance
      such a function returns under a constant key of a dict literal (`prep = await
      self._prepare(id)`, then `prep["chat"].agent`) is followed the same way;
    - in async code, along a path: a helper handed `job` that reads
      `job.project.upstreams[i].mirrors`, or a loop over `job.project.upstreams`, when the
      query's options stop at `upstreams` (reported at the option that stops short when the
      read is in a helper); a deferred column the query did not `undefer()` counts as well;
    - in async code, through the model's own code: a property, or a plain method called on
      the object (`agent.to_dict()`), reads the relationship on every call (before any branch,
      loop or `try` in its body);
    - in async code, a relationship the mapping loads eagerly (`lazy="selectin"`,
      `"subquery"`) where SQLAlchemy does not apply that strategy: on an object reached along
      a loading path that already holds the relationship's target model (a team's `agents`
      reached from an agent's `teams`; a self-referential `children`), unless the
      relationship sets `join_depth`. Instances a model's async method gets from
      `await self.awaitable_attrs.rel` (also kept and awaited later, or through
      `asyncio.gather`) are followed this way, and so are comprehension variables;
    - where the load state is known as above, a relationship declared `lazy="raise"` that
      the query did not load: reading it raises `InvalidRequestError`;
    - in async code, on an object built there, added and flushed: a collection it was not
      given has nothing loaded, and after a plain `await session.refresh(obj)` no lazy
      relationship of it is loaded;
    - on an instance returned by a project function whose session closed before it
      returned (`with Session(engine) as s: return s.get(Author, 1)`), when that function did
      not load the relationship eagerly: `DetachedInstanceError: Parent instance <Author> is
      not bound to a Session; lazy load operation of attribute 'books' cannot proceed`.

    - in sync code, on an object a project function built, committed (under a session that
      expires on commit) and returned inside a `with` block, read after that block closed the
      session: the commit expired what the object was built with, and a `refresh()` reloads
      columns only.

    A relationship read after a session scope closed in the same function, of an object the
    scope loaded, is reported by SQF003, which also captures the columns read there.

    ## Why is this bad?
    Lazy loading needs a session that is open and, for `AsyncSession`, an explicit await.
    Neither is there at these reads, so they fail at run time, often only on the code path a
    test did not take.

    ## The fix
    There is no single mechanical fix; the message names the concrete remedies:
    `selectinload(Model.rel)` (or `joinedload`) on the query that loads the object,
    `lazy="selectin"` on the relationship, or, in async code,
    `await obj.awaitable_attrs.rel` (with the `AsyncAttrs` mixin on the base class).

    ## Fix safety
    No automatic fix: choosing between eager loading on the query, on the relationship, or an
    awaited attribute is a design decision.
    """
    example_project = {"bot/__init__.py": "", "bot/services.py": BOT, "bot/repo.py": REPO, "bot/shop.py": SHOP,
                       "bot/jobs.py": JOBS, "bot/accounts.py": ACCOUNTS, "bot/chats.py": CHATS,
                       "bot/teams.py": TEAMS}
    examples = (
        Example(
            title="async: a lazy relationship read while attached",
            before='''
            from bot.services import get_user_service


            async def show_balance(user_id: int) -> int:
                async with get_user_service() as user_service:
                    user = await user_service.get(user_id)
                    return user.balance.amount
            ''',
        ),
        Example(
            title="async, a session: the query did not load it",
            before='''
            from sqlalchemy import select
            from bot.services import User, session_pool


            async def show_balance(user_id: int) -> int:
                async with session_pool() as session:
                    user = (await session.execute(select(User).where(User.id == user_id))).scalar_one()
                    return user.balance.amount
            ''',
        ),
        Example(
            title="an object returned from a closed session",
            before='''
            from bot.repo import get_author


            def book_count(author_id: int) -> int:
                author = get_author(author_id)
                return len(author.books)
            ''',
        ),
        Example(
            title="async: reached through a relationship the loading function's query loaded",
            before='''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.shop import get_order


            async def other_orders(session: AsyncSession, order_id: int) -> int:
                order = await get_order(session, order_id)
                customer = order.customer
                return len(getattr(customer, "orders", None) or [])
            ''',
        ),
        Example(
            title="async: a query on an AsyncSession parameter",
            before='''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.shop import Order


            async def customer_of(order_id: int, db: AsyncSession) -> int:
                order = await db.get(Order, order_id)
                return order.customer.id
            ''',
        ),
        Example(
            title="async: the loop variable over what a project function loaded",
            before='''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.shop import list_orders


            async def order_history(session: AsyncSession) -> int:
                total = 0
                for order in await list_orders(session):
                    total += len(order.customer.orders)
                return total
            ''',
        ),
        Example(
            title="async: handed to a project function that reads the relationship",
            before='''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.shop import get_order, orders_of


            async def other_orders(session: AsyncSession, order_id: int) -> int:
                order = await get_order(session, order_id)
                customer = order.customer
                return orders_of(customer)
            ''',
        ),
        Example(
            title="async: a collection of an object built here, read after the flush",
            before='''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.shop import Customer


            async def register(session: AsyncSession) -> int:
                customer = Customer()
                session.add(customer)
                await session.flush()
                return len(customer.orders)
            ''',
        ),
        Example(
            title="async: refresh() of an object built here leaves its relationships unloaded",
            before='''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.shop import Customer


            async def register(session: AsyncSession) -> int:
                customer = Customer(orders=[])
                session.add(customer)
                await session.commit()
                await session.refresh(customer)
                return len(customer.orders)
            ''',
        ),
        Example(
            title="async: a parameter every caller fills, here through a table of handlers",
            before='''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.shop import Customer, get_order


            async def _order_count(session: AsyncSession, customer: Customer) -> int:
                return len(getattr(customer, "orders", None) or [])


            async def _note_count(session: AsyncSession, customer: Customer) -> int:
                return len(customer.notes)


            _REPORTS = {"orders": _order_count, "notes": _note_count}


            async def report(session: AsyncSession, order_id: int, kind: str) -> int:
                order = await get_order(session, order_id)
                customer = order.customer
                handler = _REPORTS[kind]
                return await handler(session, customer)
            ''',
        ),
        Example(
            title="async: a helper reads one step deeper than the query's loader option goes",
            before='''
            from sqlalchemy import select
            from sqlalchemy.ext.asyncio import AsyncSession
            from sqlalchemy.orm import selectinload
            from bot.jobs import Job, Project, mirror_urls


            async def queued_urls(session: AsyncSession) -> list[str]:
                result = await session.execute(
                    select(Job).options(
                        selectinload(Job.project).selectinload(Project.mirrors),
                        selectinload(Job.project).selectinload(Project.upstreams),
                    )
                )
                urls = []
                for job in result.scalars().all():
                    urls.extend(mirror_urls(job))
                return urls
            ''',
        ),
        Example(
            title="async: a loop over a loaded relationship reads one step further than the option goes",
            before='''
            from sqlalchemy import select
            from sqlalchemy.ext.asyncio import AsyncSession
            from sqlalchemy.orm import selectinload
            from bot.jobs import Job, Project


            async def urls(session: AsyncSession) -> list[str]:
                result = await session.execute(
                    select(Job).options(
                        selectinload(Job.project).selectinload(Project.mirrors),
                        selectinload(Job.project).selectinload(Project.upstreams),
                    )
                )
                job = result.scalars().one()
                out = [m.url for m in job.project.mirrors]
                for up in job.project.upstreams:
                    out.extend(m.url for m in up.mirrors)
                project = job.project
                return out + [str(len(project.mirrors) + len(project.upstreams))]
            ''',
        ),
        Example(
            title="async: an object a project function built, refreshed, handed to a helper that reads a collection",
            before='''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.jobs import check_quota, new_project


            async def open_project(session: AsyncSession, name: str) -> bool:
                project = await new_project(session, name)
                await session.commit()
                await session.refresh(project)
                return await check_quota(session, project)
            ''',
        ),
        Example(
            title="async: a deferred column its query did not undefer",
            before='''
            from sqlalchemy import select
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.jobs import Project


            async def readme_of(session: AsyncSession, project_id: int) -> str:
                project = (await session.execute(select(Project).where(Project.id == project_id))).scalar_one()
                return project.readme
            ''',
        ),
        Example(
            title="a property of the model that reads a lazy relationship",
            before='''
            from bot.repo import get_author


            def describe(author_id: int) -> str:
                author = get_author(author_id)
                return f"{author.book_count} books"
            ''',
        ),
        Example(
            title="sync: built and committed in the block, its relationship read after the block closed",
            before='''
            from bot.accounts import SessionLocal, open_account


            def register(name: str, labels: list[str]) -> str:
                with SessionLocal() as db:
                    account = open_account(db, name, labels)
                return ", ".join(key.label for key in account.keys)
            ''',
        ),
        Example(
            title="async: an instance a helper returns under a key of a dict, its relationship read (hasattr too)",
            before='''
            from sqlalchemy import select
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.chats import Chat, chat_context


            class Replies:
                def __init__(self, db: AsyncSession) -> None:
                    self.db = db

                async def _prepare(self, chat_id: int) -> dict:
                    result = await self.db.execute(select(Chat).where(Chat.id == chat_id))
                    chat = result.scalar_one()
                    return {"chat": chat, "turns": 0}

                async def greeting(self, chat_id: int) -> str:
                    prep = await self._prepare(chat_id)
                    persona = prep["chat"].persona if hasattr(prep["chat"], "persona") else None
                    return persona.greeting if persona else ""


            async def opening(db: AsyncSession, chat_id: int) -> str:
                context = await chat_context(db, chat_id)
                return context["chat"].persona.greeting
            ''',
        ),
        Example(
            title="async: a method of the model reads a relationship its query did not load",
            before='''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.teams import Agent


            async def agent_card(session: AsyncSession, agent_id: int) -> dict:
                agent = await session.get(Agent, agent_id)
                return agent.to_dict()
            ''',
        ),
        Example(
            title="async: lazy=\"selectin\" stops at a cycle (a team's agents, reached from an agent)",
            before='''
            from sqlalchemy import select
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.teams import Agent


            async def teams_of(session: AsyncSession, agent_id: int) -> list[dict]:
                agent = (await session.execute(select(Agent).where(Agent.id == agent_id))).scalar_one()
                out = []
                for team in agent.teams:
                    out.append(team.summary())
                return out
            ''',
        ),
        Example(
            title="async: a self-referential lazy=\"selectin\" without join_depth loads nothing",
            before='''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.teams import Folder


            async def size(session: AsyncSession, folder_id: int) -> int:
                folder = await session.get(Folder, folder_id)
                return len(folder.children)
            ''',
        ),
        Example(
            title="async: a model's own async method awaits awaitable_attrs (through asyncio.gather) and calls a method of each instance",
            before='''
            import asyncio

            from sqlalchemy import ForeignKey
            from sqlalchemy.orm import Mapped, mapped_column, relationship

            from bot.services import Base


            class Board(Base):
                __tablename__ = "boards"
                id: Mapped[int] = mapped_column(primary_key=True)
                cards: Mapped[list["Card"]] = relationship(lazy="selectin")
                labels: Mapped[list["Label"]] = relationship(lazy="selectin")

                async def export(self, with_cards: bool) -> dict:
                    cards = self.awaitable_attrs.cards if with_cards else asyncio.sleep(0, [])
                    labels = self.awaitable_attrs.labels
                    cards, labels = await asyncio.gather(cards, labels)
                    return {"cards": [card.export() for card in cards], "labels": [label.name for label in labels]}


            class Card(Base):
                __tablename__ = "cards"
                id: Mapped[int] = mapped_column(primary_key=True)
                board_id: Mapped[int] = mapped_column(ForeignKey("boards.id"))
                parent_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id"))
                subcards: Mapped[list["Card"]] = relationship(lazy="selectin")

                def export(self) -> dict:
                    return {"id": self.id, "subcards": [card.id for card in self.subcards]}


            class Label(Base):
                __tablename__ = "labels"
                id: Mapped[int] = mapped_column(primary_key=True)
                board_id: Mapped[int] = mapped_column(ForeignKey("boards.id"))
                name: Mapped[str]
            ''',
        ),
        Example(
            title="async: a relationship declared lazy=\"raise\" that its query did not load",
            before='''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.shop import Order


            async def line_count(session: AsyncSession, order_id: int) -> int:
                order = await session.get(Order, order_id)
                return len(order.lines)
            ''',
        ),
    )
    valid = (
        Valid(
            '''
            from sqlalchemy import select
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.teams import Agent, memo_count_of


            async def counts(session: AsyncSession) -> list[int]:
                agents = (await session.execute(select(Agent))).scalars().all()
                ids = [agent.id for agent in agents]
                return ids + [memo_count_of(agent, 0) for agent in agents]
            ''',
            "a comprehension's variable handed to a function is not followed (here the function reads "
            "the relationship only when it is not given the count)",
        ),
        Valid(
            '''
            from sqlalchemy import select
            from sqlalchemy.exc import InvalidRequestError
            from sqlalchemy.ext.asyncio import AsyncSession
            from sqlalchemy.orm import selectinload
            from bot.shop import Order, get_order


            async def line_count(session: AsyncSession, order_id: int) -> int:
                order = (await session.execute(select(Order).options(selectinload(Order.lines)))).scalar_one()
                other = await get_order(session, order_id)
                other.lines = []
                third = await session.get(Order, order_id)
                try:
                    known = len(third.lines)
                except InvalidRequestError:
                    known = 0
                return len(order.lines) + len(other.lines) + known
            ''',
            "lazy=\"raise\" relationships the query loads, that the code assigns before reading, or read "
            "where the error is caught",
        ),
        Valid(
            '''
            import asyncio

            from sqlalchemy import ForeignKey
            from sqlalchemy.orm import Mapped, mapped_column, relationship

            from bot.services import Base


            class Board(Base):
                __tablename__ = "boards"
                id: Mapped[int] = mapped_column(primary_key=True)
                cards: Mapped[list["Card"]] = relationship(lazy="selectin")
                labels: Mapped[list["Label"]] = relationship(lazy="selectin")

                async def export(self, with_cards: bool) -> dict:
                    cards = self.awaitable_attrs.cards if with_cards else asyncio.sleep(0, [])
                    labels = self.awaitable_attrs.labels
                    cards, labels = await asyncio.gather(cards, labels)
                    return {"cards": [card.export() for card in cards], "ids": [card.id for card in cards], "labels": [label.name for label in labels]}


            class Card(Base):
                __tablename__ = "cards"
                id: Mapped[int] = mapped_column(primary_key=True)
                board_id: Mapped[int] = mapped_column(ForeignKey("boards.id"))
                parent_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id"))
                subcards: Mapped[list["Card"]] = relationship(lazy="selectin", join_depth=3)

                def export(self) -> dict:
                    return {"id": self.id, "subcards": [card.id for card in self.subcards]}


            class Label(Base):
                __tablename__ = "labels"
                id: Mapped[int] = mapped_column(primary_key=True)
                board_id: Mapped[int] = mapped_column(ForeignKey("boards.id"))
                name: Mapped[str]
            ''',
            "join_depth lets the self-referential lazy=\"selectin\" load the sub-cards; labels read only columns",
        ),
        Valid(
            '''
            from sqlalchemy import select
            from sqlalchemy.ext.asyncio import AsyncSession
            from sqlalchemy.orm import selectinload
            from bot.teams import Agent, Category, Team


            async def card(session: AsyncSession, agent_id: int, category_id: int) -> list:
                agent = await session.get(Agent, agent_id)
                category = await session.get(Category, category_id)
                full = (await session.execute(select(Agent).options(
                    selectinload(Agent.teams).selectinload(Team.agents), selectinload(Agent.memos)))).scalar_one()
                out = [agent.label(), agent.memo_count(False), agent.safe_memos(), len(category.children), full.to_dict()]
                for team in full.teams:
                    out.append(team.summary())
                return out
            ''',
            "methods that read only columns, read the relationship only on one branch, or look at load "
            "state themselves; a self-referential relationship with join_depth; options that load what "
            "the methods read, along the cycle too",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session
            from bot.teams import Agent, Folder


            def card(session: Session, agent_id: int) -> tuple[dict, int]:
                agent = session.get(Agent, agent_id)
                folder = session.get(Folder, 1)
                return agent.to_dict(), len(folder.children)
            ''',
            "sync code with the session open: the method's lazy load runs",
        ),
        Valid(
            '''
            from bot.accounts import KeepingSession, SessionLocal, find_account, find_account_with_keys, open_account


            def register(name: str, labels: list[str]) -> str:
                with KeepingSession() as db:
                    account = open_account(db, name, labels)
                return ", ".join(key.label for key in account.keys)


            def key_count(name: str) -> int:
                with SessionLocal() as db:
                    account = find_account_with_keys(db, name)
                return len(account.keys)


            def labels(name: str, given: list[str]) -> list[str]:
                with SessionLocal() as db:
                    account = open_account(db, name, given)
                    keys = account.keys
                return [key.label for key in keys] + [key.label for key in account.keys]


            def renamed(name: str) -> str:
                with open("names.txt") as db:
                    account = find_account(db, name)
                return str(len(account.keys))
            ''',
            "a session that does not expire on commit keeps what the account was built with; an account "
            "loaded by a query (SQF003's); keys read inside the block (loaded there); a `with` that is no session",
        ),
        Valid(
            '''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.chats import chat_context, chat_context_with_persona


            async def opening(db: AsyncSession, chat_id: int) -> str:
                context = await chat_context_with_persona(db, chat_id)
                return context["chat"].persona.greeting


            async def persona_id(db: AsyncSession, chat_id: int) -> int | None:
                context = await chat_context(db, chat_id)
                return context["chat"].persona_id


            async def replaced(db: AsyncSession, chat_id: int, other) -> str:
                context = await chat_context(db, chat_id)
                context["chat"] = other
                return context["chat"].persona.greeting
            ''',
            "the helper's query loads the relationship; a column of the instance; a key the function "
            "stores another value under",
        ),
        Valid(
            '''
            from sqlalchemy import select
            from sqlalchemy.ext.asyncio import AsyncSession
            from sqlalchemy.orm import load_only, undefer
            from bot.jobs import Project


            async def readme_of(session: AsyncSession, project_id: int) -> str:
                project = (await session.execute(
                    select(Project).where(Project.id == project_id).options(undefer(Project.readme)))).scalar_one()
                other = (await session.execute(select(Project).where(Project.id == project_id + 1))).scalar_one()
                await session.execute(select(Project).options(load_only(Project.readme)))
                return project.readme + other.readme
            ''',
            "undefer() in the query loads the column; another query with a column option may load it on the same "
            "instance",
        ),
        Valid(
            '''
            from sqlalchemy.ext.asyncio import AsyncSession
            from sqlalchemy.orm import undefer
            from bot.jobs import Project


            async def readme_of(session: AsyncSession, project_id: int) -> str:
                project = await session.get(Project, project_id, options=[undefer(Project.readme)])
                return project.readme
            ''',
            "loader options passed to get() load the column",
        ),
        Valid(
            '''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.jobs import check_quota, new_project, start_project


            async def open_project(session: AsyncSession, name: str) -> bool:
                project = await new_project(session, name)
                await session.commit()
                await session.refresh(project, ["mirrors"])
                draft = await start_project(session, name + "-draft")
                return await check_quota(session, project) and await check_quota(session, draft)
            ''',
            "a refresh naming the collection loads it; a pending object (never flushed) loads nothing",
        ),
        Valid(
            '''
            from sqlalchemy import select
            from sqlalchemy.ext.asyncio import AsyncSession
            from sqlalchemy.orm import selectinload
            from bot.jobs import Job, Project, mirror_urls


            async def queued_urls(session: AsyncSession) -> list[str]:
                result = await session.execute(
                    select(Job).options(
                        selectinload(Job.project).selectinload(Project.mirrors),
                        selectinload(Job.project).selectinload(Project.upstreams).selectinload(Project.mirrors),
                    )
                )
                urls = []
                for job in result.scalars().all():
                    urls.extend(mirror_urls(job))
                return urls
            ''',
            "the options reach every path the helper reads",
        ),
        Valid(
            '''
            from sqlalchemy import select
            from sqlalchemy.ext.asyncio import AsyncSession
            from sqlalchemy.orm import selectinload
            from bot.jobs import Job, Project, mirror_urls


            async def queued_urls(session: AsyncSession, upstream_ids: list[int]) -> list[str]:
                await session.execute(select(Project).where(Project.id.in_(upstream_ids)).options(
                    selectinload(Project.mirrors)))
                result = await session.execute(select(Job).options(selectinload(Job.project).selectinload(Project.upstreams)))
                first = result.scalars().first()
                return mirror_urls(first) if first is not None else []
            ''',
            "another query loads `mirrors` on projects the identity map shares: what it reaches is not known",
        ),
        Valid(
            '''
            from bot.repo import get_author_with_books


            def describe(author_id: int) -> str:
                author = get_author_with_books(author_id)
                return f"{author.book_count} books"
            ''',
            "a property whose relationship the loading query loaded eagerly",
        ),
        Valid(
            '''
            from sqlalchemy import select
            from sqlalchemy.orm import selectinload
            from bot.services import User, session_pool


            async def show_balance(user_id: int) -> int:
                async with session_pool() as session:
                    query = select(User).options(selectinload(User.balance)).where(User.id == user_id)
                    user = (await session.execute(select(User).options(selectinload(User.balance)))).scalar_one()
                    return user.balance.amount
            ''',
            "loaded eagerly by the query",
        ),
        Valid(
            '''
            from bot.services import get_user_service


            async def show_balance(user_id: int) -> int:
                async with get_user_service() as user_service:
                    user = await user_service.get(user_id)
                    balance = await user.awaitable_attrs.balance
                    return balance.amount
            ''',
            "an awaited attribute",
        ),
        Valid(
            '''
            from bot.repo import get_author_with_books


            def book_count(author_id: int) -> int:
                author = get_author_with_books(author_id)
                return len(author.books)
            ''',
            "the function that returned it loaded the relationship eagerly",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session
            from bot.repo import Author


            def book_count(session: Session, author_id: int) -> int:
                author = session.get(Author, author_id)
                return len(author.books)
            ''',
            "sync code with the session open: the lazy load works",
        ),
        Valid(
            '''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.shop import get_order_with_history


            async def other_orders(session: AsyncSession, order_id: int) -> int:
                order = await get_order_with_history(session, order_id)
                customer = order.customer
                return len(customer.orders)
            ''',
            "the loading query names the collection after the hop: selectinload(...).selectinload(Customer.orders)",
        ),
        Valid(
            '''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.shop import get_order


            async def summary(session: AsyncSession, order_id: int) -> tuple[int, int]:
                order = await get_order(session, order_id)
                customer = order.customer
                notes = customer.notes
                try:
                    lines = len(order.lines)
                except Exception:
                    lines = 0
                return len(notes), lines
            ''',
            "lazy=\"selectin\" on the relationship loads it with its parent; lazy=\"raise\" never loads",
        ),
        Valid(
            '''
            from sqlalchemy.ext.asyncio import AsyncSession
            from sqlalchemy.orm import selectinload
            from bot.shop import Customer, Order, get_order_with


            async def other_orders(session: AsyncSession, order_id: int) -> int:
                order = await get_order_with(session, order_id, selectinload(Order.customer), *more_options())
                customer = order.customer
                return len(customer.orders)


            def more_options():
                return [selectinload(Order.customer).selectinload(Customer.orders)]
            ''',
            "options the query takes from its caller: what they load is not known",
        ),
        Valid(
            '''
            from sqlalchemy import inspect
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.shop import get_order


            async def other_orders(session: AsyncSession, order_id: int) -> int:
                order = await get_order(session, order_id)
                customer = order.customer
                if "orders" in inspect(customer).unloaded:
                    return 0
                return len(customer.orders)
            ''',
            "the code checks the load state before it reads",
        ),
        Valid(
            '''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.shop import get_order


            async def other_orders(session: AsyncSession, order_id: int) -> int:
                order = await get_order(session, order_id)
                customer = order.customer
                await session.refresh(customer, ["orders"])
                first = len(customer.orders)
                again = await get_order(session, order_id)
                owner = again.customer
                orders = await owner.awaitable_attrs.orders
                return first + len(orders)
            ''',
            "refresh naming the relationship, and an awaited attribute, load it",
        ),
        Valid(
            '''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.shop import Customer, place_order


            async def order_for(session: AsyncSession, customer: Customer) -> int:
                order = await place_order(session, customer)
                return order.customer.id
            ''',
            "an object the function built, not loaded: its relationships are what the code set",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session
            from bot.shop import get_order_sync


            def other_orders(session: Session, order_id: int) -> int:
                order = get_order_sync(session, order_id)
                customer = order.customer
                return len(customer.orders)
            ''',
            "sync code: the lazy load runs",
        ),
        Valid(
            '''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.shop import Customer, Order


            async def register(session: AsyncSession, first_order: bool) -> int:
                customer = Customer(orders=[])
                session.add(customer)
                await session.commit()
                count = len(customer.orders)
                order = Order(customer_id=1)
                session.add(order)
                await session.flush()
                owner = order.customer
                other = Customer()
                session.add(other)
                if first_order:
                    await session.flush()
                else:
                    count += len(other.orders)
                return count + owner.id
            ''',
            "a collection given when building stays loaded after the commit; a many-to-one may come from the "
            "identity map with no query; a read on a path that did not flush reads a pending object",
        ),
        Valid(
            '''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.shop import Customer, Order


            async def register(session: AsyncSession) -> int:
                customer = Customer()
                session.add(customer)
                session.add(Order(customer=customer))
                await session.flush()
                first = len(customer.orders)
                again = Customer()
                session.add(again)
                await session.commit()
                await session.refresh(again, ["orders"])
                return first + len(again.orders)
            ''',
            "another object's relationship fills the collection; a refresh naming it loads it",
        ),
        Valid(
            '''
            from sqlalchemy import select
            from sqlalchemy.ext.asyncio import AsyncSession
            from sqlalchemy.orm import raiseload
            from bot.shop import Order

            ORDER_OPTIONS = []


            async def customer_of(order_id: int, db: AsyncSession) -> tuple[int, int]:
                order = (await db.execute(select(Order).options(*ORDER_OPTIONS))).scalar_one()
                strict = (await db.execute(select(Order).options(raiseload("*")))).scalar_one()
                return order.customer.id, strict.customer.id
            ''',
            "options read from elsewhere, or a raiseload: what is loaded is not plain",
        ),
        Valid(
            '''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.shop import Order


            async def settle(db: AsyncSession, order_id: int, ledger) -> int:
                order = await db.get(Order, order_id)
                order, receipt = await ledger.settle(order)
                return order.customer.id + receipt
            ''',
            "the name is bound again, to an object loaded elsewhere",
        ),
        Valid(
            '''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.shop import get_order, known_orders


            async def other_orders(session: AsyncSession, order_id: int) -> int:
                order = await get_order(session, order_id)
                customer = order.customer
                return known_orders(customer)
            ''',
            "the function it is handed to checks the load state before it reads",
        ),
        Valid(
            '''
            from sqlalchemy import select
            from sqlalchemy.ext.asyncio import AsyncSession
            from sqlalchemy.orm import selectinload
            from bot.shop import Order, list_orders


            async def customers(order_id: int, db: AsyncSession) -> list[int]:
                order = (await db.execute(select(Order).options(selectinload(Order.customer)))).scalar_one()
                seen = [order.customer.id]
                for other in await list_orders(db):
                    seen.append(len(other.customer.notes))
                return seen
            ''',
            "the query on the parameter loads what is read; the loop reads a relationship loaded with its parent",
        ),
        Valid(
            '''
            from sqlalchemy import inspect
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.shop import Customer, get_order, get_order_with_history


            async def _order_count(session: AsyncSession, customer: Customer) -> int:
                return len(customer.orders)


            async def _guarded_count(session: AsyncSession, customer: Customer) -> int:
                if "orders" in inspect(customer).unloaded:
                    return 0
                return len(customer.orders)


            _REPORTS = {"orders": _order_count}
            _GUARDED = [_guarded_count]


            async def report(session: AsyncSession, order_id: int, kind: str) -> int:
                order = await get_order_with_history(session, order_id)
                customer = order.customer
                first = await _REPORTS[kind](session, customer)
                again = await get_order(session, order_id)
                return first + await _GUARDED[0](session, again.customer) + await _GUARDED[0](session, customer)
            ''',
            "the caller's query loaded the relationship; the function looks at the load state itself",
        ),
        Valid(
            '''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.shop import Customer, get_order


            async def _order_count(session: AsyncSession, customer: Customer) -> int:
                return len(customer.orders)


            async def _note_count(session: AsyncSession, customer: Customer) -> int:
                return len(customer.orders) + len(customer.notes)


            _REPORTS = {"orders": _order_count}


            async def report(session: AsyncSession, order_id: int, kind: str, other: Customer) -> int:
                order = await get_order(session, order_id)
                customer = order.customer
                first = await _REPORTS.get(kind)(session, customer)
                return first + await _REPORTS[kind](session, other) + await run_later(_note_count, session, customer)


            async def run_later(job, session, customer):
                return await job(session, customer)
            ''',
            "another caller passes an object whose load state is not known; a function handed on as a value "
            "has callers this code does not show",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session
            from bot.shop import Customer, get_order_sync


            def _order_count(session: Session, customer: Customer) -> int:
                return len(customer.orders)


            _REPORTS = {"orders": _order_count}


            def report(session: Session, order_id: int, kind: str) -> int:
                order = get_order_sync(session, order_id)
                return _REPORTS[kind](session, order.customer)
            ''',
            "sync code: the lazy load runs",
        ),
    )

    @classmethod
    def wants(cls, index, facts) -> bool:
        if facts is None or index.any_scope(facts.all_with_callees):
            return True
        if facts.has_async and any(v.rsplit(".", 1)[-1] == "AsyncSession" for v in facts.imports.values()):
            return True  # queries on an AsyncSession parameter
        if facts.has_async and any(index.instance_model(f"{facts.module}.{cls}") is not None for cls in facts.classes):
            return True  # a model's own async methods (`await self.awaitable_attrs.rel`)
        for name in facts.all_called:
            target = facts.imports.get(name) or f"{facts.module}.{name}"
            if _returns_detached(index, target) or (facts.has_async and index.returned(target) is not None):
                return True
        return False

    def run(self, ctx: FileContext) -> Iterator[Finding]:
        returning = self._session_returning_names(ctx)
        for qualname, fn in functions(ctx.module, ctx):
            found = shape(ctx, fn, qualname)
            attached = fn.asynchronous is not None and session_scoped(ctx, fn, qualname)
            detached = bool(found.calls & returning)
            closing = fn.asynchronous is None and session_scoped(ctx, fn, qualname)
            if fn.asynchronous is None and not detached and not closing:
                continue
            evs = events(fn, ctx)
            reported: set[int] = set()
            for closed in closed_scope_reads(ctx, evs) if closing else ():
                reported.add(id(closed.event.node))
                yield self._closed(closed)
            if attached:
                for f in self._async_attached(ctx, evs):
                    reported.add(id(f.node))
                    yield f
            if detached:
                for f in self._returned_detached(ctx, evs):
                    reported.add(id(f.node))
                    yield f
            given = caller_holdings(ctx, qualname, fn) if fn.asynchronous is not None else None
            for read in unloaded_reads(ctx, fn, evs, given):
                finding = self._unloaded(read)
                if id(finding.node) not in reported:
                    reported.add(id(finding.node))
                    yield finding

    def _closed(self, read: ClosedRead) -> Finding:
        X, rel = read.name, read.relationship
        return self.finding(read.event.node, (
            f"{_what(X, read.event.name, rel)}, read after the `with` block of line {read.block_line} closed the "
            f"session `{X}` came from, and `{read.built}(...)` committed it (expiring what it was built with): "
            f"the read raises DetachedInstanceError; read it inside the block, or load it there with "
            f"`{read.session}.refresh({X}, [\"{rel}\"])`"))

    def _unloaded(self, read: UnloadedRead) -> Finding:
        X, rel, h = read.name, read.relationship, read.holding
        if h.built:
            where = f"built by `{h.maker}`" if h.maker else "built here"
            when = (f"`refresh()` without attribute names left every lazy relationship of this object, {where}, "
                    "unloaded" if h.source == "refresh" else f"it was built here without `{rel}` and then flushed")
            what = f"`{read.callee}(...)` reads `{X}.{rel}`" if read.callee else f"`{X}.{rel}`"
            given = "" if h.source == "refresh" else f"give it a value when building the object (`{h.model.name}({rel}=[...])`) or "
            return self.finding(read.event.node, (
                f"{what}, a lazy collection that was never loaded ({when}): reading it in async code runs an "
                f"implicit load, which raises MissingGreenlet; {given}load it with "
                f"`await session.refresh({X}, [\"{rel}\"])`"))
        failure = "DetachedInstanceError (its session closed)" if h.detached else "MissingGreenlet"
        implicit = "reading it in async code runs an implicit load, which raises"
        if h.model.relationships.get(rel) == "raise":
            failure = f"InvalidRequestError ('{h.model.name}.{rel}' is not available due to lazy='raise')"
            implicit = "reading it raises"
        column = rel in h.model.deferred
        loader = "undefer" if column else "selectinload"
        if read.option is not None:  # a deep read of what the query's own options loaded
            return self.finding(read.option, (
                f"this loader option stops at `{X}`: it does not load `.{rel}`, which `{read.callee}(...)` reads "
                f"(line {read.line}): {implicit} {failure}; extend the option with "
                f"`.{loader}({h.model.name}.{rel})`"))
        raising = h.model.relationships.get(rel) == "raise"
        kind = "a deferred column" if column else "a relationship declared lazy=\"raise\"" if raising \
            else "a lazy relationship"
        if read.callee:
            what = f"`{read.callee}(...)` reads `{X}.{rel}`, {kind}"
        elif raising and read.event.name == rel:
            what = f"`{X}.{rel}` is {kind}"
        else:
            what = f"`{X}.{rel}` is {kind}" if column else _what(X, read.event.name, rel)
        awaited = "" if "." in X or raising else f", or use `await {X}.awaitable_attrs.{rel}`"
        cycle = ""
        if rel in h.stopped:  # the mapping's eager strategy, stopped by the loading path
            cycle = (f"; its lazy=\"{h.model.relationships[rel]}\" does not apply here: SQLAlchemy stops eager "
                     f"loading where the path already holds the model it loads (set `join_depth` on the "
                     f"relationship, or name it in a loader option)")
        return self.finding(read.event.node, (
            f"{what} that {h.source} did not load"
            f"{f' (reached through `{h.via}`)' if h.via else ''}{cycle}: {implicit} {failure}; load it with "
            f"{h.path}{loader}({h.model.name}.{rel}) in that query{awaited}"))

    @staticmethod
    def _session_returning_names(ctx: FileContext) -> set[str]:
        """Local names of project functions that return a model from a session they close."""
        index = ctx.index
        mod = ctx.facts
        if mod is None:
            return set()
        out = set()
        for local, target in list(mod.imports.items()) + [(q, f"{mod.module}.{q}") for q in mod.functions]:
            if _returns_detached(index, target):
                out.add(local)
        return out

    def _async_attached(self, ctx: FileContext, evs: list[Event]) -> Iterator[Finding]:
        for w in evs:
            if w.kind != EventKind.WITH or not w.node.asynchronous:  # type: ignore[attr-defined]
                continue
            end = with_end(evs, w.node)
            region = evs[w.index + 1: end]
            for name, scope in with_scopes(ctx, w.node):  # type: ignore[arg-type]
                for ev in region:
                    if ev.kind != EventKind.ASSIGN:
                        continue
                    bound = bound_through(ctx, ev, name, scope)
                    X = ev.name
                    if bound is None or X is None:
                        continue
                    for r in region:
                        if r.index <= ev.index:
                            continue
                        if r.kind == EventKind.ASSIGN and r.name == X:
                            break
                        if r.kind == EventKind.CALL and r.name == "refresh" and r.args[:1] == (X,):
                            break  # refresh(X, ["rel"]) and friends: assume it loads what is read
                        key = read_key(r) if r.owner == X else None
                        rels = lazy_relationships_read(bound.model, key, bound.eager) if key else []
                        if rels:
                            rel = rels[0]
                            yield self.finding(r.node, (
                                f"{_what(X, key, rel)}{' read' if r.name == rel else ''} in async code: the implicit "
                                f"load raises MissingGreenlet; load it with selectinload({bound.model.name}."
                                f"{rel}) on the query, set lazy=\"selectin\" on the relationship, or use "
                                f"`await {X}.awaitable_attrs.{rel}`"))

    def _returned_detached(self, ctx: FileContext, evs: list[Event]) -> Iterator[Finding]:
        index = ctx.index
        for ev in evs:
            if ev.kind != EventKind.ASSIGN or not isinstance(ev.value, (cst.Call, cst.Await)):
                continue
            value = ev.value.expression if isinstance(ev.value, cst.Await) else ev.value
            if not isinstance(value, cst.Call):
                continue
            callee = dotted(value.func)
            if callee is None or "." in callee and callee.split(".")[0] in ("self", "cls"):
                continue
            target = ctx.qualify(callee)
            returned = index.returned(target)
            if returned is None or returned.shape is index_mod.Stage.LIST \
                    or not closes_its_sessions(index, index.function(target)):
                continue
            model = returned.model
            X = ev.name
            if X is None:  # an assignment event always names its target
                continue
            for r in evs[ev.index + 1:]:
                if r.kind == EventKind.ASSIGN and r.name == X:
                    break
                key = read_key(r) if r.owner == X else None
                rels = lazy_relationships_read(model, key, frozenset(returned.function.eager)) if key else []
                if rels:
                    rel = rels[0]
                    yield self.finding(r.node, (
                        f"{_what(X, key, rel)} of an object whose session closed in "
                        f"`{callee}`: DetachedInstanceError; load it there with "
                        f"selectinload({model.name}.{rel}), or set lazy=\"selectin\" on the relationship"))
                    break


def _what(X: str, attr: str | None, rel: str) -> str:
    """`user.posts` is a lazy relationship / `episode.title` reads the lazy relationship `parent`."""
    if attr == rel:
        return f"`{X}.{rel}` is a lazy relationship"
    return f"`{X}.{attr}` reads the lazy relationship `{rel}`"


def _returns_detached(index, target: str) -> bool:
    """A project function that returns ORM instances from sessions it closed."""
    return index.returned(target) is not None and closes_its_sessions(index, index.function(target))
