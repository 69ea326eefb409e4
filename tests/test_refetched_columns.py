"""Columns the database sets when it updates a row (`onupdate=func.now()`, `server_onupdate=`):
the flush that updates the row expires them even under `expire_on_commit=False`, so an async
read after it reloads implicitly (MissingGreenlet). Reads one call away count: a project
function reading the attributes of the object it is handed (the index's ``param_reads``)."""

from __future__ import annotations

import pytest

from codemods.config import Config
from codemods.engine import fix_text
from codemods.index import ProjectIndex, extract

DB = '''
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

engine = create_async_engine("sqlite+aiosqlite://")
maker = async_sessionmaker(engine, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
'''

ENDPOINT = '''
from app.db import Note, maker


def _out(note: Note) -> dict:
    return {"id": note.id, "text": note.text, "updated": note.updated_at.isoformat()}


async def edit(note_id: int, text: str) -> dict:
    async with maker() as session:
        note = await session.get(Note, note_id)
        if note is None:
            return {}
        note.text = text
        await session.commit()
        return _out(note)
'''


def run(source: str, db: str = DB):
    config = Config(root="/p", select=("SQF010",))
    return fix_text(source, config, project={"app/__init__.py": "", "app/db.py": db}, path="app/notes.py")


def test_param_reads_are_the_attributes_a_function_reads_of_its_parameter():
    idx = ProjectIndex([extract("app/notes.py", ENDPOINT, "app.notes"), extract("app/db.py", DB, "app.db")])
    assert idx.param_reads("app.notes._out", 0) == ["id", "text", "updated_at"]
    assert idx.param_reads("app.notes._out", "note") == ["id", "text", "updated_at"]
    assert idx.param_reads("app.notes._out", 1) == []
    assert idx.model("app.db.Note").refetched == {"updated_at"}


def test_a_column_set_on_update_read_one_call_away_after_the_commit():
    result = run(ENDPOINT)
    assert [(f.code, f.line) for f in result.findings] == [("SQF010", ENDPOINT.splitlines().index("        return _out(note)") + 1)]
    assert "`note.updated_at` (in `_out(note)`)" in result.findings[0].message
    assert "await session.commit()\n        await session.refresh(note)\n        return _out(note)" in result.new_text


def test_a_direct_read_after_a_flush_counts_too():
    source = ENDPOINT.replace("await session.commit()\n        return _out(note)",
                              "await session.flush()\n        return note.updated_at")
    assert [f.code for f in run(source).findings] == ["SQF010"]


@pytest.mark.parametrize("db,source,why", [
    (DB.replace("onupdate=func.now()", "onupdate=datetime.now"), ENDPOINT, "a Python callable: set in Python, not expired"),
    (DB.replace('    __tablename__ = "notes"', '    __tablename__ = "notes"\n    __mapper_args__ = {"eager_defaults": True}'),
     ENDPOINT, "eager_defaults: the flush fetches it back"),
    (DB, ENDPOINT.replace("        note.text = text\n", ""), "nothing changed: no UPDATE"),
    (DB, ENDPOINT.replace("        note.text = text\n", "        note.text = text\n        note.updated_at = None\n"),
     "the code sets the column itself"),
    (DB, ENDPOINT.replace("return _out(note)", "return {'id': note.id}"), "only columns the database does not set"),
])
def test_left_alone(db, source, why):
    assert run(source, db).findings == [], why


def test_the_commit_still_counts_after_a_try_whose_handler_rolls_back_and_raises():
    source = ENDPOINT.replace("        await session.commit()\n", (
        "        try:\n"
        "            await session.commit()\n"
        "        except ValueError:\n"
        "            await session.rollback()\n"
        "            raise\n"))
    found = run(source).findings
    assert [f.code for f in found] == ["SQF010"]
    assert "`session.commit()`" in found[0].message
