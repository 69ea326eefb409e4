"""A module of SQF006's example project: models whose own methods read relationships, and
relationships whose eager strategy stops at a cycle (a team's agents reached from an agent,
a folder's sub-folders)."""

TEAMS = '''
from sqlalchemy import Column, ForeignKey, Table, inspect
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.services import Base

members = Table(
    "members",
    Base.metadata,
    Column("team_id", ForeignKey("teams.id"), primary_key=True),
    Column("agent_id", ForeignKey("agents.id"), primary_key=True),
)


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    agents: Mapped[list["Agent"]] = relationship(secondary=members, lazy="selectin", back_populates="teams")

    def summary(self) -> dict:
        return {"name": self.name, "agents": [a.id for a in self.agents]}


class Agent(Base):
    __tablename__ = "agents"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    teams: Mapped[list[Team]] = relationship(secondary=members, lazy="selectin", back_populates="agents")
    memos: Mapped[list["Memo"]] = relationship()

    def to_dict(self) -> dict:
        """What the API returns."""
        data = {"id": self.id, "name": self.name}
        data["memos"] = [m.text for m in self.memos]
        return data

    def label(self) -> str:
        return f"{self.id}: {self.name}"

    def memo_count(self, with_memos: bool) -> int:
        if with_memos:
            return len(self.memos)
        return 0

    def safe_memos(self) -> list[str]:
        if "memos" in inspect(self).unloaded:
            return []
        return [m.text for m in self.memos]


def memo_count_of(agent: Agent, known: int | None = None) -> int:
    if known is None:
        return len(agent.memos)
    return known


class Memo(Base):
    __tablename__ = "memos"
    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))
    text: Mapped[str]


class Folder(Base):
    __tablename__ = "folders"
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("folders.id"))
    children: Mapped[list["Folder"]] = relationship(lazy="selectin")


class Category(Base):
    __tablename__ = "categories"
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    children: Mapped[list["Category"]] = relationship(lazy="selectin", join_depth=2)
'''
