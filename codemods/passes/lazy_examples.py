"""A module of SQF006's example project: loads whose options reach some paths of an object
graph and not others, and helpers that read deep into what they are handed."""

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
