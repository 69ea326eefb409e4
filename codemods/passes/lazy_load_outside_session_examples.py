"""SQF006's example project, examples and valid cases: what `sqla-fix explain SQF006` shows and
what the tests run on the pass (tests/test_passes.py)."""

from __future__ import annotations

from .base import Example, Valid
from .examples import BOT, REPO
from .lazy_examples import ACCOUNTS, CHATS, JOBS, SHOP
from .model_examples import TEAMS

PROJECT = {"bot/__init__.py": "", "bot/services.py": BOT, "bot/repo.py": REPO, "bot/shop.py": SHOP,
                       "bot/jobs.py": JOBS, "bot/accounts.py": ACCOUNTS, "bot/chats.py": CHATS,
                       "bot/teams.py": TEAMS}

EXAMPLES = (
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

VALID = (
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
