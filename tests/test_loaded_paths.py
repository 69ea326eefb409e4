"""SQF006 along paths: what a helper reads deep into an object it is handed (through names
bound to parts of it, loops, and further helpers), against the relationship paths the loading
query's options reach; and the SQLAlchemy fact behind it."""

from __future__ import annotations

import ast
import asyncio
import textwrap

from sqlalchemy import Column, ForeignKey, Table, inspect, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload, undefer

from codemods.index.paths import read_paths


class Base(DeclarativeBase):
    pass


links = Table("links", Base.metadata, Column("node_id", ForeignKey("nodes.id"), primary_key=True),
              Column("peer_id", ForeignKey("nodes.id"), primary_key=True))


class Leaf(Base):
    __tablename__ = "leaves"
    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"))


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(deferred=True)


class Node(Base):
    __tablename__ = "nodes"
    id: Mapped[int] = mapped_column(primary_key=True)
    leaves: Mapped[list[Leaf]] = relationship()
    peers: Mapped[list[Node]] = relationship(secondary=links, primaryjoin=id == links.c.node_id,
                                               secondaryjoin=id == links.c.peer_id)


def test_an_option_chain_loads_a_relationship_at_its_own_depth_only():
    """selectinload(Node.leaves) and selectinload(Node.peers) load the leaves of the node the
    query returns, not those of its peers: the same relationship is unloaded one step down."""
    async def scenario() -> tuple[set[str], set[str]]:
        engine = create_async_engine("sqlite+aiosqlite://")
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        maker = async_sessionmaker(engine, expire_on_commit=False)
        async with maker() as session:
            session.add(Node(id=1, leaves=[Leaf(id=1)], peers=[Node(id=2, leaves=[Leaf(id=2)])]))
            await session.commit()
        async with maker() as session:
            stmt = select(Node).where(Node.id == 1).options(selectinload(Node.leaves), selectinload(Node.peers))
            top = (await session.execute(stmt)).scalar_one()
            peer = top.peers[0]
            return set(inspect(top).unloaded), set(inspect(peer).unloaded)

    top, peer = asyncio.run(scenario())
    assert "leaves" not in top and "leaves" in peer


def test_a_deferred_column_stays_unloaded_through_refresh_unless_undeferred():
    async def scenario() -> tuple[set[str], set[str], set[str]]:
        engine = create_async_engine("sqlite+aiosqlite://")
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        maker = async_sessionmaker(engine, expire_on_commit=False)
        async with maker() as session:
            session.add(Note(id=1, text="x"))
            await session.commit()
        async with maker() as session:
            plain = (await session.execute(select(Note))).scalar_one()
            loaded = set(inspect(plain).unloaded)
            await session.refresh(plain)
            refreshed = set(inspect(plain).unloaded)
        async with maker() as session:
            undeferred = (await session.execute(select(Note).options(undefer(Note.text)))).scalar_one()
            return loaded, refreshed, set(inspect(undeferred).unloaded)

    loaded, refreshed, undeferred = asyncio.run(scenario())
    assert "text" in loaded and "text" in refreshed and "text" not in undeferred


def _paths(source: str, name: str):
    tree = ast.parse(textwrap.dedent(source))
    fn = next(f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == name)
    return read_paths(fn, lambda dotted: f"app.{dotted}")


def test_the_index_reads_paths_through_names_loops_and_getattr():
    found = _paths('''
        def urls(job, limit):
            project = job.project
            own = [m.url for m in project.mirrors]
            for up in project.upstreams:
                own.extend(x.url for x in up.mirrors)
            if hasattr(job, "owner"):
                check(project, limit=limit)
            return own
    ''', "urls")
    assert set(found.paths["job"]) >= {"project", "project.mirrors", "project.mirrors.url", "project.upstreams",
                                       "project.upstreams.mirrors", "project.upstreams.mirrors.url", "owner"}
    assert [(h.param, h.path, h.callee, h.position, h.keyword) for h in found.handoffs] == [
        ("job", "project", "app.check", 0, None), ("limit", "", "app.check", -1, "limit")]


def test_a_name_bound_twice_or_a_rebound_parameter_has_no_path():
    found = _paths('''
        def urls(job, other):
            item = job.project
            item = other
            for job in other.items:
                pass
            return item.mirrors, job.project.mirrors
    ''', "urls")
    assert "job" not in found.paths and found.paths.get("other") == ["items"]


def _sqf006(source: str) -> list[tuple[int, str]]:
    from codemods.config import Config
    from codemods.engine import fix_text
    from codemods.passes.lazy_load_outside_session import LazyLoadOutsideSession

    result = fix_text(textwrap.dedent(source).lstrip("\n"), Config(root="/project", select=("SQF006",)),
                      project=LazyLoadOutsideSession.example_project, path="app/example.py")
    assert result.error is None
    return [(f.line, f.message) for f in result.findings if f.code == "SQF006"]


def _example(title: str) -> str:
    """One of the pass's own examples, by a part of its title."""
    from codemods.passes.lazy_load_outside_session import LazyLoadOutsideSession

    return next(e.source for e in LazyLoadOutsideSession.examples if title in e.title)


# a helper reads deeper than the query's option goes
QUEUED = _example("one step deeper").replace("import Job, Project, mirror_urls",
                                             "import Job, Project, check_quota, mirror_urls")


def test_the_finding_names_the_option_that_stops_short():
    found = _sqf006(QUEUED)
    assert [line for line, _ in found] == [11]
    message = found[0][1]
    assert "stops at `job.project.upstreams`" in message and "`.selectinload(Project.mirrors)`" in message
    assert "`mirror_urls(...)` reads (line 16)" in message


def test_a_helper_that_hands_the_object_on_is_followed():
    """check_quota(session, project) passes project to may_mirror, which reads its mirrors."""
    source = QUEUED.replace("selectinload(Job.project).selectinload(Project.mirrors),", "").replace(
        "    for job in result.scalars().all():\n        urls.extend(mirror_urls(job))\n",
        "    job = result.scalars().one()\n    project = job.project\n    urls.append(await check_quota(session, project))\n")
    found = _sqf006(source)
    assert len(found) == 1
    assert "`check_quota(...)` reads `project.mirrors`" in found[0][1]
    loaded = source.replace("selectinload(Job.project).selectinload(Project.upstreams)",
                            "selectinload(Job.project).selectinload(Project.mirrors)")
    assert _sqf006(loaded) == []


def test_the_index_knows_a_function_that_returns_what_it_built():
    from codemods.index.extract import extract

    facts = extract("app/repo.py", textwrap.dedent('''
        from sqlalchemy.orm import relationship
        from app.models import Base, Product


        class Shelf(Base):
            __tablename__ = "shelves"
            tags = relationship("Tag", secondary="shelf_tags")
            owner = relationship("User")


        async def create(db, payload):
            product = Product(**payload)
            db.add(product)
            return product


        async def create_or_load(db, payload, pk):
            if pk:
                return await db.get(Product, pk)
            product = Product(**payload)
            return product
    '''), "app.repo")
    assert facts.functions["create"].returns_built == "app.models.Product"
    assert facts.functions["create_or_load"].returns_built is None
    attrs = facts.classes["Shelf"].attributes
    assert attrs["tags"].collection is True and not attrs["owner"].collection


def test_a_deferred_column_declared_with_raiseload_is_not_an_implicit_load():
    from codemods.index import ProjectIndex
    from codemods.index.extract import extract

    index = ProjectIndex([extract("app/models.py", textwrap.dedent('''
        from sqlalchemy import Column, Text
        from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column


        class Base(DeclarativeBase):
            pass


        class Page(Base):
            __tablename__ = "pages"
            id: Mapped[int] = mapped_column(primary_key=True)
            body: Mapped[str] = mapped_column(deferred=True)
            html: Mapped[str] = mapped_column(deferred=True, deferred_raiseload=True)
            raw = deferred(Column(Text), raiseload=True)
    '''), "app.models")])
    page = index.model("app.models.Page")
    assert page.deferred == {"body", "html", "raw"} and page.raising == {"html", "raw"}


IN_PLACE = _example("a loop over a loaded relationship")


def test_a_loop_over_a_loaded_relationship_holds_what_the_options_load_below_it():
    found = _sqf006(IN_PLACE)
    assert [line for line, _ in found] == [17]
    assert "`up.mirrors`" in found[0][1] and "reached through `job.project.upstreams`" in found[0][1]
    deeper = IN_PLACE.replace("selectinload(Job.project).selectinload(Project.upstreams),",
                              "selectinload(Job.project).selectinload(Project.upstreams).selectinload(Project.mirrors),")
    assert _sqf006(deeper) == []


def test_a_read_that_another_parameter_decides_is_not_followed_through_a_hand_off():
    """`first_mirror(project, chosen)` reads `project.mirrors` only when `chosen` is None:
    called directly, the read counts (as a direct read always did); reached through
    `describe`, which may pass a value, it does not. A test on an attribute is no such
    dispatch: `check` reads `obj.team` on every call but a superuser's."""
    from codemods.index import ProjectIndex
    from codemods.index.extract import extract
    from codemods.index.paths import param_paths

    index = ProjectIndex([extract("app/helpers.py", textwrap.dedent('''
        def first_mirror(project, chosen=None):
            if chosen is not None:
                return chosen
            return project.mirrors[0]


        def describe(project, chosen):
            return first_mirror(project, chosen).url


        def check(obj, user):
            if user.is_superuser:
                return True
            return obj.team.name


        def create(obj, user):
            return check(obj, user)
    '''), "app.helpers")])
    assert param_paths(index, "app.helpers.first_mirror", 0) == {"mirrors"}
    assert param_paths(index, "app.helpers.describe", 0) == set()
    assert param_paths(index, "app.helpers.create", 0) == {"team.name"}
