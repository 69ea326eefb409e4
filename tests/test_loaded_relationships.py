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


# --------------------------------------------------------------------------- callers' objects

def _sqf006(source: str) -> list[tuple[int, str]]:
    from codemods.config import Config
    from codemods.engine import fix_text
    from codemods.passes.lazy_load_outside_session import LazyLoadOutsideSession

    result = fix_text(textwrap.dedent(source).lstrip("\n"), Config(root="/project", select=("SQF006",)),
                      project=LazyLoadOutsideSession.example_project, path="app/example.py")
    assert result.error is None
    return [(f.line, f.message) for f in result.findings if f.code == "SQF006"]


def _dispatch(loader: str = "get_order") -> str:
    """The pass's own example of a table of handlers, its caller loading with ``loader``."""
    from codemods.passes.lazy_load_outside_session import LazyLoadOutsideSession

    example = next(e for e in LazyLoadOutsideSession.examples if "table of handlers" in e.title)
    return example.source.replace("import Customer, get_order", f"import Customer, {loader}") \
        .replace("await get_order(", f"await {loader}(")


def test_a_parameter_filled_through_a_table_has_what_the_caller_loaded():
    found = _sqf006(_dispatch())
    assert [line for line, _ in found] == [6]  # the lazy collection; `notes` is lazy="selectin"
    message = found[0][1]
    assert "`customer.orders`" in message and "in `report` (which passes it here, line 20)" in message
    assert "selectinload(Order.customer).selectinload(Customer.orders)" in message
    # the caller's query loads the collection: nothing to report
    assert _sqf006(_dispatch("get_order_with_history")) == []


def test_the_index_counts_a_call_through_a_table_as_a_call_of_each_function_in_it():
    facts = extract("app/example.py", _dispatch(), "app.example")
    assert facts.function_tables == {"_REPORTS": ["app.example._note_count", "app.example._order_count"]}
    sites = [s for s in facts.functions["report"].calls if s.table is not None]
    assert sorted(s.callee for s in sites) == ["app.example._note_count", "app.example._order_count"]
    assert {s.table for s in sites} == {"_REPORTS"} and {s.arg_names[1] for s in sites} == {"customer"}
    rebound = extract("app/example.py", _dispatch() + "\n_REPORTS = {}\n",
                      "app.example")
    assert rebound.function_tables == {} and all(s.table is None for s in rebound.functions["report"].calls)


@pytest.mark.parametrize("change", [
    # another caller passes an object it knows nothing of
    ("    return await handler(session, customer)",
     "    return await handler(session, customer) + await _REPORTS[kind](session, kind)"),
    # the function is handed on as a value: its callers are not all here
    ("_REPORTS = {", "CALLBACK = _order_count\n_REPORTS = {"),
    # the function looks at the load state itself
    ('    return len(getattr(customer, "orders", None) or [])',
     '    if "orders" in inspect(customer).unloaded:\n        return 0\n    return len(customer.orders)'),
    # a decorator may register it
    ("async def _order_count", "@router.get('/')\nasync def _order_count"),
])
def test_a_parameter_whose_callers_are_not_all_known_is_left_alone(change):
    source = _dispatch()
    assert change[0] in source
    assert _sqf006(source.replace(*change)) == []
