"""SQF010's example project, examples and valid cases: what `sqla-fix explain SQF010` shows and
what the tests run on the pass (tests/test_passes.py)."""

from __future__ import annotations

from .base import Example, Valid
from .examples import BOT

# A FastAPI provider whose sessions do not expire on commit.
QUIET_PROVIDER = '''
from bot.services import quiet_pool


async def get_db():
    async with quiet_pool() as session:
        yield session
'''


PROJECT = {"bot/__init__.py": "", "bot/services.py": BOT, "bot/deps.py": QUIET_PROVIDER}


def charge_loop(top: str = "", on_short: str = "await db.rollback()", on_charge: str = "await db.commit()",
                round_top: str = "", pool: str = "quiet_pool", session: str = "db") -> str:
    """A loop over loaded users that hands each one, with the session ``session``, to a
    function that reads it first thing and commits or rolls back (what ``top``/``round_top``
    add runs first). Its tests live in tests/test_round_handoff.py."""
    return _CHARGE_LOOP.format(top=f"{top}\n    " if top else "", on_short=on_short, on_charge=on_charge,
                               round_top=f"{round_top}\n            " if round_top else "", pool=pool,
                               session=session)


_CHARGE_LOOP = '''
from sqlalchemy import select
from bot.services import User, {pool}


async def charge(db, user) -> str:
    {top}if user.visits < 10:
        {on_short}
        return "refused"
    user.visits -= 10
    {on_charge}
    return "charged"


async def charge_all() -> int:
    async with {pool}() as db:
        users = (await db.scalars(select(User))).all()
        charged = 0
        for user in users:
            {round_top}if await charge({session}, user) == "charged":
                charged += 1
        return charged
'''

EXAMPLES = (
        Example(
            title="created, committed, read while the session is open",
            before='''
            from bot.services import User, session_pool


            async def register(name: str) -> str:
                async with session_pool() as session:
                    user = User(name=name)
                    session.add(user)
                    await session.commit()
                    return f"user {user.id} registered"
            ''',
            after='''
            from bot.services import User, session_pool


            async def register(name: str) -> str:
                async with session_pool() as session:
                    user = User(name=name)
                    session.add(user)
                    await session.commit()
                    await session.refresh(user)
                    return f"user {user.id} registered"
            ''',
        ),
        Example(
            title="loaded with get(), changed, committed, read again",
            before='''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.services import User


            async def visit(session: AsyncSession, user_id: int) -> int:
                user = await session.get(User, user_id)
                user.visits += 1
                await session.commit()
                print(f"{user.name} visited")
                return user.visits
            ''',
            after='''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.services import User


            async def visit(session: AsyncSession, user_id: int) -> int:
                user = await session.get(User, user_id)
                user.visits += 1
                await session.commit()
                await session.refresh(user)
                print(f"{user.name} visited")
                return user.visits
            ''',
        ),
        Example(
            title="a load that may give None, committed by the end of a begin() block",
            before='''
            from bot.services import User, session_pool


            async def invite(user_id: int, name: str) -> str | None:
                async with session_pool() as session:
                    async with session.begin():
                        user = await session.get(User, user_id)
                        session.add(User(name=name))
                    if user is None:
                        return None
                    return user.name
            ''',
            after='''
            from bot.services import User, session_pool


            async def invite(user_id: int, name: str) -> str | None:
                async with session_pool() as session:
                    async with session.begin():
                        user = await session.get(User, user_id)
                        session.add(User(name=name))
                    if user is not None:
                        await session.refresh(user)
                    if user is None:
                        return None
                    return user.name
            ''',
        ),
        Example(
            title="expire_on_commit=False, but a rollback expires everything",
            before='''
            from sqlalchemy.exc import IntegrityError
            from bot.services import User, quiet_pool


            async def add_friend(user_id: int, name: str) -> str:
                async with quiet_pool() as session:
                    user = await session.get(User, user_id)
                    if user is None:
                        return "no such user"
                    session.add(User(name=name))
                    try:
                        await session.commit()
                    except IntegrityError:
                        await session.rollback()
                    return f"{user.name} now has a friend"
            ''',
            after='''
            from sqlalchemy.exc import IntegrityError
            from bot.services import User, quiet_pool


            async def add_friend(user_id: int, name: str) -> str:
                async with quiet_pool() as session:
                    user = await session.get(User, user_id)
                    if user is None:
                        return "no such user"
                    session.add(User(name=name))
                    try:
                        await session.commit()
                    except IntegrityError:
                        await session.rollback()
                        await session.refresh(user)
                    return f"{user.name} now has a friend"
            ''',
        ),
        Example(
            title="read in the handler that rolled back: captured before the try",
            before='''
            from sqlalchemy.exc import IntegrityError
            from bot.services import User, quiet_pool


            async def rename(user_id: int, name: str) -> bool:
                async with quiet_pool() as session:
                    user = await session.get(User, user_id)
                    if user is None:
                        return False
                    try:
                        user.name = name
                        await session.commit()
                    except IntegrityError:
                        await session.rollback()
                        log.warning("name %s taken for user %s", name, user.id)
                        return False
                    return True
            ''',
            after='''
            from sqlalchemy.exc import IntegrityError
            from bot.services import User, quiet_pool


            async def rename(user_id: int, name: str) -> bool:
                async with quiet_pool() as session:
                    user = await session.get(User, user_id)
                    if user is None:
                        return False
                    user_id_2 = user.id
                    try:
                        user.name = name
                        await session.commit()
                    except IntegrityError:
                        await session.rollback()
                        log.warning("name %s taken for user %s", name, user_id_2)
                        return False
                    return True
            ''',
        ),
        Example(
            title="a project function that rolls back the session it is given",
            before='''
            from sqlalchemy.exc import IntegrityError
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.services import User, quiet_pool


            async def _save(session: AsyncSession) -> bool:
                try:
                    await session.commit()
                except IntegrityError:
                    await session.rollback()
                    return False
                return True


            async def invite_all(user_id: int, names: list[str]) -> str:
                async with quiet_pool() as session:
                    user = await session.get(User, user_id)
                    if user is None:
                        return "no such user"
                    for name in names:
                        session.add(User(name=name))
                        await _save(session)
                    return f"{user.name} invited {len(names)}"
            ''',
            after='''
            from sqlalchemy.exc import IntegrityError
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.services import User, quiet_pool


            async def _save(session: AsyncSession) -> bool:
                try:
                    await session.commit()
                except IntegrityError:
                    await session.rollback()
                    return False
                return True


            async def invite_all(user_id: int, names: list[str]) -> str:
                async with quiet_pool() as session:
                    user = await session.get(User, user_id)
                    if user is None:
                        return "no such user"
                    for name in names:
                        session.add(User(name=name))
                        await _save(session)
                        await session.refresh(user)
                    return f"{user.name} invited {len(names)}"
            ''',
        ),
        Example(
            title="an instance reached through a loaded relationship, read in the handler that rolled back",
            before='''
            from sqlalchemy import select
            from sqlalchemy.exc import IntegrityError
            from sqlalchemy.orm import selectinload
            from bot.services import User, quiet_pool


            async def rename(user_id: int, name: str) -> str:
                async with quiet_pool() as session:
                    user = (await session.execute(
                        select(User).options(selectinload(User.balance)).where(User.id == user_id))).scalar_one()
                    balance = user.balance
                    if balance is None:
                        return "no balance"
                    try:
                        user.name = name
                        await session.commit()
                    except IntegrityError:
                        await session.rollback()
                        return f"balance {balance.id} keeps its owner's name"
                    return "renamed"
            ''',
            after='''
            from sqlalchemy import select
            from sqlalchemy.exc import IntegrityError
            from sqlalchemy.orm import selectinload
            from bot.services import User, quiet_pool


            async def rename(user_id: int, name: str) -> str:
                async with quiet_pool() as session:
                    user = (await session.execute(
                        select(User).options(selectinload(User.balance)).where(User.id == user_id))).scalar_one()
                    balance = user.balance
                    if balance is None:
                        return "no balance"
                    balance_id = balance.id
                    try:
                        user.name = name
                        await session.commit()
                    except IntegrityError:
                        await session.rollback()
                        return f"balance {balance_id} keeps its owner's name"
                    return "renamed"
            ''',
        ),
        Example(
            title="a model's own method deletes it; the handler that rolled back names it",
            before='''
            from sqlalchemy.ext.asyncio import AsyncSession
            from sqlalchemy.orm import Mapped, mapped_column

            from bot.services import Base


            class Entity(Base):
                __abstract__ = True
                id: Mapped[int] = mapped_column(primary_key=True)

                async def purge(self, db: AsyncSession) -> None:
                    try:
                        await db.delete(self)
                        await db.commit()
                    except Exception as exc:
                        await db.rollback()
                        raise LookupError(f"entity {self.id} was not purged") from exc
            ''',
            after='''
            from sqlalchemy.ext.asyncio import AsyncSession
            from sqlalchemy.orm import Mapped, mapped_column

            from bot.services import Base


            class Entity(Base):
                __abstract__ = True
                id: Mapped[int] = mapped_column(primary_key=True)

                async def purge(self, db: AsyncSession) -> None:
                    self_id = self.id
                    try:
                        await db.delete(self)
                        await db.commit()
                    except Exception as exc:
                        await db.rollback()
                        raise LookupError(f"entity {self_id} was not purged") from exc
            ''',
        ),
        Example(
            title="the attribute changes in the try: no automatic fix",
            before='''
            from sqlalchemy.exc import IntegrityError
            from bot.services import User, quiet_pool


            async def rename(user_id: int, name: str) -> bool:
                async with quiet_pool() as session:
                    user = await session.get(User, user_id)
                    if user is None:
                        return False
                    try:
                        user.name = name
                        await session.commit()
                    except IntegrityError:
                        await session.rollback()
                        log.warning("could not keep %s", user.name)
                        return False
                    return True
            ''',
        ),
        Example(
            title="a loop's next round reads an element the round before expired",
            before='''
            from sqlalchemy import select
            from bot.services import User, session_pool


            async def greet_all() -> list[str]:
                async with session_pool() as session:
                    users = (await session.scalars(select(User))).all()
                    lines = []
                    for user in users:
                        lines.append(f"hello {user.name}")
                        user.visits += 1
                        await session.commit()
                    return lines
            ''',
        ),
        Example(
            title="an instance taken out of a dict of loaded instances after a rollback",
            before='''
            from sqlalchemy import select
            from sqlalchemy.exc import IntegrityError
            from bot.services import User, quiet_pool


            async def rename_all(names: dict[int, str]) -> str:
                async with quiet_pool() as session:
                    users = (await session.scalars(select(User))).all()
                    by_id = {user.id: user for user in users}
                    try:
                        for user_id, name in names.items():
                            by_id[user_id].name = name
                        await session.commit()
                    except IntegrityError:
                        await session.rollback()
                    first = by_id.get(1)
                    if first is None:
                        return ""
                    return first.name
            ''',
        ),
        Example(
            title="a loop hands each element to a function that may roll back: the next round's element comes in "
                  "expired",
            before=charge_loop(),
        ),
    )

VALID = (
        Valid(
            '''
            from sqlalchemy.ext.asyncio import AsyncSession
            from sqlalchemy.orm import Mapped, mapped_column

            from bot.services import Base


            class Entity(Base):
                __abstract__ = True
                id: Mapped[int] = mapped_column(primary_key=True)

                async def save(self, db: AsyncSession) -> None:
                    try:
                        db.add(self)
                        await db.commit()
                    except Exception as exc:
                        await db.rollback()
                        raise LookupError(f"entity {self.id} was not saved") from exc

                async def purge_then_log(self, db: AsyncSession) -> None:
                    await db.delete(self)
                    await db.commit()
                    try:
                        await db.execute(text("select 1"))
                        await db.commit()
                    except Exception:
                        await db.rollback()
                        log.warning("entity %s purged, the check failed", self.id)
            ''',
            "`self` added in the method may be new (a rollback leaves it transient and readable); "
            "a delete committed before the try detached `self`, and the later rollback does not touch it",
        ),
        Valid(
            '''
            from sqlalchemy import select
            from bot.services import User, quiet_pool


            async def greet_all() -> list[str]:
                async with quiet_pool() as session:
                    users = (await session.scalars(select(User))).all()
                    lines = []
                    for user in users:
                        lines.append(f"hello {user.name}")
                        user.visits += 1
                        await session.commit()
                    return lines
            ''',
            "a loop that commits each round under a factory built with expire_on_commit=False",
        ),
        Valid(
            '''
            from sqlalchemy import select
            from bot.services import User, session_pool


            async def greet_all() -> list[str]:
                async with session_pool() as session:
                    ids = (await session.scalars(select(User.id))).all()
                    lines = []
                    for user_id in ids:
                        user = await session.get(User, user_id)
                        lines.append(f"hello {user.name}")
                        user.visits += 1
                        await session.commit()
                    return lines
            ''',
            "each round loads its element again before reading it",
        ),
        Valid(
            '''
            from sqlalchemy import select
            from bot.services import User, session_pool


            async def greet_all() -> list[str]:
                async with session_pool() as session:
                    users = (await session.scalars(select(User))).all()
                    lines = []
                    for user in users:
                        await session.refresh(user)
                        lines.append(f"hello {user.name}")
                        user.visits += 1
                        await session.commit()
                    return lines
            ''',
            "each round refreshes its element before reading it",
        ),
        Valid(
            '''
            from sqlalchemy import select
            from bot.services import User, session_pool


            async def greet_all() -> list[str]:
                async with session_pool() as session:
                    users = (await session.scalars(select(User))).all()
                    names = [(user.id, user.name) for user in users]
                    lines = []
                    for user_id, name in names:
                        lines.append(f"hello {name}")
                        session.add(User(name=f"{name} junior"))
                        await session.commit()
                    return lines
            ''',
            "the values are taken before the loop that commits",
        ),
        Valid(
            '''
            from sqlalchemy import select
            from bot.services import User, session_pool


            async def first_greeting() -> str:
                async with session_pool() as session:
                    users = (await session.scalars(select(User))).all()
                    for user in users:
                        line = f"hello {user.name}"
                        user.visits += 1
                        await session.commit()
                        return line
                    return ""
            ''',
            "the round that commits leaves the loop: no next round reads an expired element",
        ),
        Valid(
            '''
            from bot.services import User, quiet_pool


            async def register(name: str) -> int:
                async with quiet_pool() as session:
                    user = User(name=name)
                    session.add(user)
                    await session.commit()
                    return user.id
            ''',
            "a factory built with expire_on_commit=False, and no rollback",
        ),
        Valid(
            '''
            from fastapi import Depends
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.deps import get_db
            from bot.services import User


            async def register(name: str, db: AsyncSession = Depends(get_db)) -> int:
                user = User(name=name)
                db.add(user)
                await db.commit()
                return user.id
            ''',
            "a session typed AsyncSession from a provider whose factory does not expire on commit",
        ),
        Valid(
            '''
            from contextlib import asynccontextmanager
            from sqlalchemy.ext.asyncio import async_sessionmaker
            from bot.services import User, engine


            @asynccontextmanager
            async def memory_session():
                maker = async_sessionmaker(engine, expire_on_commit=False)
                async with maker() as session:
                    yield session


            async def register(name: str) -> int:
                async with memory_session() as db:
                    user = User(name=name)
                    db.add(user)
                    await db.commit()
                    return user.id
            ''',
            "a scope whose factory is built in the context manager itself with expire_on_commit=False",
        ),
        Valid(
            '''
            from bot.services import User, session_pool


            async def register(name: str) -> int:
                async with session_pool() as session:
                    user = User(name=name)
                    session.add(user)
                    await session.commit()
                    await session.refresh(user)
                    return user.id
            ''',
            "already refreshed after the commit",
        ),
        Valid(
            '''
            from bot.services import User, session_pool


            async def register(name: str) -> int:
                async with session_pool() as session:
                    user = User(name=name)
                    session.add(user)
                    await session.commit()
                    return await user.awaitable_attrs.id
            ''',
            "read through `awaitable_attrs`: an awaited load",
        ),
        Valid(
            '''
            from bot.services import User, session_pool


            async def greet(user: User, name: str) -> str:
                async with session_pool() as session:
                    session.add(User(name=name))
                    await session.commit()
                    return f"hello {user.name}"
            ''',
            "an object that is not attached to that session (a parameter)",
        ),
        Valid(
            '''
            from sqlalchemy.orm import Session
            from bot.services import User


            def register(session: Session, name: str) -> int:
                user = User(name=name)
                session.add(user)
                session.commit()
                return user.id
            ''',
            "sync code: the implicit reload works there",
        ),
        Valid(
            '''
            from sqlalchemy.exc import IntegrityError
            from bot.services import User, session_pool


            async def register(name: str) -> str:
                async with session_pool() as session:
                    user = User(name=name)
                    session.add(user)
                    try:
                        await session.flush()
                    except IntegrityError:
                        await session.rollback()
                        return f"{user.name} is taken"
                    await session.commit()
                    await session.refresh(user)
                    return f"{user.name} registered"
            ''',
            "a new object a rollback made transient again: its values stay readable",
        ),
        Valid(
            '''
            from sqlalchemy.exc import IntegrityError
            from bot.services import User, quiet_pool


            async def register(name: str) -> int:
                async with quiet_pool() as session:
                    user = await session.get(User, 1)
                    try:
                        await session.commit()
                    except IntegrityError:
                        await session.rollback()
                        raise
                    return user.id
            ''',
            "the rollback's handler raises: the read after the try is never reached after it",
        ),
        Valid(
            '''
            from sqlalchemy import select
            from bot.services import User, session_pool


            async def touch(user_id: int) -> str:
                async with session_pool() as session:
                    user = await session.get(User, user_id)
                    await session.commit()
                    user.name = "renamed"
                    await session.execute(select(User).where(User.id == user_id))
                    return user.name
            ''',
            "set after the commit, then a load of the same model: nothing left expired to read",
        ),
        Valid(
            '''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.services import User, session_pool


            async def _stage(session: AsyncSession, name: str) -> None:
                session.add(User(name=name))
                await session.flush()


            async def invite(user_id: int, name: str) -> str:
                async with session_pool() as session:
                    user = await session.get(User, user_id)
                    await _stage(session, name)
                    return f"{user.name} invited {name}"
            ''',
            "a project function given the session only flushes: nothing expires",
        ),
        Valid(
            '''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.services import User, quiet_pool


            async def _save(session: AsyncSession) -> None:
                await session.commit()


            async def invite(user_id: int, name: str) -> str:
                async with quiet_pool() as session:
                    user = await session.get(User, user_id)
                    session.add(User(name=name))
                    await _save(session)
                    return f"{user.name} invited {name}"
            ''',
            "a project function commits the session, whose factory does not expire on commit",
        ),
        Valid(
            '''
            from sqlalchemy.ext.asyncio import AsyncSession
            from bot.services import User, session_pool


            async def _save(session: AsyncSession) -> None:
                await session.commit()


            async def invite(user_id: int, name: str) -> str:
                async with session_pool() as session:
                    user = await session.get(User, user_id)
                    user_name = user.name
                    async with session_pool() as other:
                        other.add(User(name=name))
                        await _save(other)
                    return f"{user_name} invited {name}"
            ''',
            "the project function commits another session; the value was taken before",
        ),
        Valid(charge_loop(top="await db.refresh(user)"),
              "the function handed each element refreshes it before it reads it"),
        Valid(charge_loop(round_top="await db.refresh(user)"),
              "the loop refreshes its element at the start of each round"),
        Valid(charge_loop(on_short="pass"),
              "the round only commits, under a factory built with expire_on_commit=False"),
        Valid(charge_loop(on_short="await db.flush()", on_charge="await db.flush()"),
              "nothing in the round commits or rolls back: the function only flushes"),
    )
