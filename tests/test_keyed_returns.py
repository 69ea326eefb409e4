"""SQF006 through a dict a helper returns: ``prep = await self._prepare(id)`` whose every
``return`` is a dict literal, ``prep["chat"].persona`` read in async code. And hasattr() is a
read: it catches AttributeError only, not the failed load."""

from __future__ import annotations

import asyncio
import gc
import textwrap

import libcst as cst
import pytest
from sqlalchemy import ForeignKey, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from codemods.index.extract import extract
from codemods.passes.flow import EventKind, events


class Base(DeclarativeBase):
    pass


class Persona(Base):
    __tablename__ = "personas"
    id: Mapped[int] = mapped_column(primary_key=True)


class Chat(Base):
    __tablename__ = "chats"
    id: Mapped[int] = mapped_column(primary_key=True)
    persona_id: Mapped[int] = mapped_column(ForeignKey("personas.id"))
    persona: Mapped[Persona] = relationship()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the load's coroutine, never awaited
def test_hasattr_runs_the_lazy_load_and_does_not_catch_its_failure():
    async def run() -> None:
        engine = create_async_engine("sqlite+aiosqlite://")
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        async with async_sessionmaker(engine)() as session:
            session.add(Chat(id=1, persona=Persona(id=1)))
            await session.commit()
        async with async_sessionmaker(engine)() as session:
            chat = (await session.execute(select(Chat))).scalar_one()
            with pytest.raises(Exception) as caught:
                hasattr(chat, "persona")  # the Persona is not in this session's identity map
            assert not isinstance(caught.value, AttributeError)
            assert "greenlet" in str(caught.value)
        await engine.dispose()

    asyncio.run(run())
    gc.collect()  # the failed load's coroutine goes here, under this test's warning filter


HELPERS = textwrap.dedent('''
    from sqlalchemy import select


    async def agreeing(db, chat_id):
        chat = (await db.execute(select(Chat).where(Chat.id == chat_id))).scalar_one_or_none()
        if chat is None:
            return {"missing": True}
        return {"chat": chat, "turns": 0}


    async def disagreeing(db, chat_id, other):
        chat = (await db.execute(select(Chat).where(Chat.id == chat_id))).scalar_one()
        if chat_id:
            return {"chat": chat}
        return {"chat": other}


    async def not_only_dicts(db, chat_id):
        chat = (await db.execute(select(Chat).where(Chat.id == chat_id))).scalar_one()
        if chat_id:
            return None
        return {"chat": chat}
''')


def test_the_index_knows_what_each_key_of_a_returned_dict_holds():
    functions = extract("helpers.py", HELPERS, "helpers").functions
    assert functions["agreeing"].returns_keys == {"chat": ("helpers.Chat", "optional")}
    assert functions["disagreeing"].returns_keys == {}  # one return puts another value there
    assert functions["not_only_dicts"].returns_keys == {}  # one return is no dict


def test_reads_through_a_constant_key_and_hasattr_are_read_events():
    module = cst.parse_module(textwrap.dedent('''
        async def f(prep, key):
            a = prep["chat"].persona
            b = hasattr(prep["chat"], "owner")
            c = prep[key].other
            d = hasattr(prep["chat"], "x", None)
    '''))
    fn = module.body[0]
    assert isinstance(fn, cst.FunctionDef)
    reads = [(e.owner, e.name) for e in events(fn) if e.kind == EventKind.READ]
    assert reads == [('prep["chat"]', "persona"), ('prep["chat"]', "owner")]
