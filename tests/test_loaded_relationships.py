"""What SQF006's loaded-relationship tracking rests on: the options the index can read, and
how SQLAlchemy's refresh treats the relationships of a loaded object and of a new one."""

from __future__ import annotations

import asyncio
import textwrap

import pytest
from sqlalchemy import ForeignKey, inspect, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload

from codemods.index.extract import extract


class Base(DeclarativeBase):
    pass


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)


class Player(Base):
    __tablename__ = "players"
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    team: Mapped[Team] = relationship()

REPO = textwrap.dedent('''
    from sqlalchemy import select
    from sqlalchemy.orm import raiseload, selectinload


    async def plain(db, uid):
        stmt = select(User).options(selectinload(User.orders).selectinload(Order.lines), selectinload("notes"))
        return (await db.execute(stmt.where(User.id == uid))).scalar_one()


    async def spread(db, uid, *opts):
        return (await db.execute(select(User).options(*opts))).scalar_one()


    async def helper_options(db, uid):
        return (await db.execute(select(User).options(user_options()))).scalar_one()


    async def raising(db, uid):
        return (await db.execute(select(User).options(selectinload(User.orders), raiseload("*")))).scalar_one()


    async def wildcard(db, uid):
        return (await db.execute(select(User).options(selectinload("*")))).scalar_one()
''')


@pytest.mark.parametrize("name,opaque", [
    ("plain", False), ("spread", True), ("helper_options", True), ("raising", True), ("wildcard", True),
])
def test_the_index_knows_which_loader_options_it_can_read(name, opaque):
    facts = extract("app/repo.py", REPO, "app.repo")
    fn = facts.functions[name]
    assert fn.opaque_options is opaque
    if name == "plain":
        assert fn.eager == {"orders", "lines", "notes"}


def test_refresh_keeps_what_the_loading_query_loaded_and_drops_what_a_new_object_was_given():
    """The facts behind the rule: refresh(obj) loads again with the options obj was loaded
    with, so a selectinload-ed relationship stays loaded; an object built in the session has
    no such options, and refresh leaves its relationships unloaded, even one set in the
    constructor."""
    async def scenario() -> tuple[set[str], set[str], set[str]]:
        engine = create_async_engine("sqlite+aiosqlite://")
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        maker = async_sessionmaker(engine, expire_on_commit=False)
        async with maker() as session:
            team = Team(id=1)
            session.add(team)
            built = Player(id=1, team=team)
            session.add(built)
            await session.commit()
            await session.refresh(built)
            after_build = set(inspect(built).unloaded)
        async with maker() as session:
            loaded = (await session.execute(select(Player).options(selectinload(Player.team)))).scalar_one()
            await session.refresh(loaded)
            after_load = set(inspect(loaded).unloaded)
            plain = (await session.execute(select(Player).execution_options(populate_existing=True))).scalar_one()
            after_plain = set(inspect(plain).unloaded)
        await engine.dispose()
        return after_build, after_load, after_plain

    after_build, after_load, after_plain = asyncio.run(scenario())
    assert "team" in after_build
    assert "team" not in after_load
    assert "team" in after_plain


@pytest.mark.parametrize("annotation,collection", [
    ('Mapped[list["Order"]]', True), ("Mapped[List[Order]]", True), ('Mapped["list[Order]"]', True),
    ('"Mapped[set[Order]]"', True), ('list["Order"]', True),  # SQLModel: `orders: list["Order"] = Relationship()`
    ('Mapped["Customer"]', False), ("Mapped[Optional[Customer]]", False), ("Mapped[Customer | None]", False),
    ("DynamicMapped[Order]", None),
])
def test_the_index_knows_which_relationships_hold_collections(annotation, collection):
    import ast

    from codemods.index.astutil import annotation_collection

    assert annotation_collection(ast.parse(annotation, mode="eval").body) is collection
