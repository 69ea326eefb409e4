"""What SQF006's reads through a model's own code rest on: which reads of a method the index
keeps, and SQLAlchemy's behaviour (checked by running it) for eager strategies at a cycle and
for relationships declared lazy="raise"."""

from __future__ import annotations

import ast
import asyncio
import textwrap

import pytest
from sqlalchemy import Column, ForeignKey, Table, create_engine, inspect, select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncAttrs, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from codemods.index.model_reads import method_reads


def _reads(source: str) -> list[str] | None:
    fn = ast.parse(textwrap.dedent(source)).body[0]
    assert isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
    return method_reads(fn)


@pytest.mark.parametrize("source,expected", [
    ('''
     def to_dict(self):
         """Doc."""
         data = {"id": self.id, "tags": [t.name for t in self.tags]}
         return data
     ''', ["id", "tags"]),
    ('''
     def summary(self):
         return self.describe() + (self.title or self.owner.name)
     ''', ["describe()", "title"]),
    ('''
     def pick(self, flag):
         if flag:
             return self.owner
         return self.name
     ''', []),
    ('''
     def set_then_read(self, owner):
         self.owner = owner
         return self.owner.name
     ''', []),
    ('''
     def guarded(self):
         if "owner" in inspect(self).unloaded:
             return None
         return self.owner
     ''', None),
    ('''
     def lazy_only(self):
         return lambda: self.owner
     ''', []),
    ('''
     @staticmethod
     def helper(x):
         return x.owner
     ''', None),
    ('''
     async def later(self):
         return await self.awaitable_attrs.owner
     ''', None),
])
def test_method_reads_are_those_made_on_every_call(source, expected):
    assert _reads(source) == expected


class Base(AsyncAttrs, DeclarativeBase):
    pass


members = Table("members", Base.metadata, Column("team_id", ForeignKey("teams.id"), primary_key=True),
                Column("agent_id", ForeignKey("agents.id"), primary_key=True))


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)
    agents: Mapped[list[Agent]] = relationship(secondary=members, lazy="selectin", back_populates="teams")


class Agent(Base):
    __tablename__ = "agents"
    id: Mapped[int] = mapped_column(primary_key=True)
    teams: Mapped[list[Team]] = relationship(secondary=members, lazy="selectin", back_populates="agents")
    notes: Mapped[list[Note]] = relationship(lazy="raise")


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))


class Folder(Base):
    __tablename__ = "folders"
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("folders.id"))
    children: Mapped[list[Folder]] = relationship(lazy="selectin")


class Shelf(Base):
    __tablename__ = "shelves"
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("shelves.id"))
    children: Mapped[list[Shelf]] = relationship(lazy="selectin", join_depth=2)


async def _eager_at_cycles() -> dict[str, set[str]]:
    engine = create_async_engine("sqlite+aiosqlite://")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    maker = async_sessionmaker(engine, expire_on_commit=False)
    async with maker() as s:
        s.add(Agent(id=1, teams=[Team(id=1)]))
        s.add_all([Folder(id=1), Folder(id=2, parent_id=1), Shelf(id=1), Shelf(id=2, parent_id=1)])
        await s.commit()
    async with maker() as s:
        agent = (await s.execute(select(Agent))).scalar_one()
        teams = await agent.awaitable_attrs.teams
        folder = await s.get(Folder, 1)
        shelf = await s.get(Shelf, 1)
        out = {"agent": set(inspect(agent).unloaded), "team": set(inspect(teams[0]).unloaded),
               "folder": set(inspect(folder).unloaded), "shelf": set(inspect(shelf).unloaded)}
    await engine.dispose()
    return out


def test_eager_strategies_stop_where_the_path_holds_their_target():
    unloaded = asyncio.run(_eager_at_cycles())
    assert "teams" not in unloaded["agent"]  # lazy="selectin" from the query's entity
    assert "agents" in unloaded["team"]  # reached from an agent: back to Agent, a cycle
    assert "children" in unloaded["folder"]  # self-referential, no join_depth
    assert "children" not in unloaded["shelf"]  # join_depth lets it load


def test_a_raise_relationship_not_loaded_raises_in_sync_code_too():
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add(Agent(id=1))
        s.commit()
        agent = s.get(Agent, 1)
        assert agent is not None
        with pytest.raises(InvalidRequestError, match="lazy='raise'"):
            _ = agent.notes
        assert Agent(id=2).notes == []  # a transient object reads as empty
