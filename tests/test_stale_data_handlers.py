"""SQF009: a handler of StaleDataError that reads an instance before any rollback. The programs
here run: the read really raises PendingRollbackError (sync and async), in place of the error
the handler meant to raise, and sqla-fix reports that line; the same handler with the id taken
before the `try` runs as meant and is left alone."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from codemods.cli import cli

_MODEL = '''
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.orm.exc import StaleDataError


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column()
    body: Mapped[str]
    __mapper_args__ = {"version_id_col": version}
'''

SYNC = _MODEL + '''
    def save(self, session: Session):
        CAPTURE_try:
            session.add(self)
            session.commit()
        except StaleDataError as error:
            raise LookupError(f"note {READ} was changed meanwhile") from error


def main() -> None:
    from sqlalchemy import create_engine

    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(Note(id=1, body="a"))
        session.commit()
    with Session(engine) as session, Session(engine) as other:
        note = session.get(Note, 1)
        other.execute(update(Note).where(Note.id == 1).values(version=Note.version + 1))
        other.commit()
        note.body = "b"
        try:
            note.save(session)
        except LookupError as error:
            print(f"handled: {error}")


main()
'''

ASYNC = _MODEL + '''
    async def save(self, session: AsyncSession):
        CAPTURE_try:
            session.add(self)
            await session.commit()
        except StaleDataError as error:
            raise LookupError(f"note {READ} was changed meanwhile") from error


async def main() -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine("sqlite+aiosqlite://")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with AsyncSession(engine) as session:
        session.add(Note(id=1, body="a"))
        await session.commit()
    async with AsyncSession(engine) as session, AsyncSession(engine) as other:
        note = await session.get(Note, 1)
        await other.execute(update(Note).where(Note.id == 1).values(version=Note.version + 1))
        await other.commit()
        note.body = "b"
        try:
            await note.save(session)
        except LookupError as error:
            print(f"handled: {error}")
    await engine.dispose()


asyncio.run(main())
'''


def _program(tmp_path: Path, template: str, captured: bool) -> Path:
    capture = "note_id = self.id\n        " if captured else ""
    text = template.replace("CAPTURE_", capture).replace("READ", "note_id" if captured else "self.id")
    if template is ASYNC:
        text = "import asyncio\n" + text
    (tmp_path / "pyproject.toml").write_text("")
    path = tmp_path / "notes.py"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def _run(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-W", "ignore", str(path)], capture_output=True, text=True,
                          timeout=120, cwd=path.parent)


def _sqf009(root: Path, monkeypatch) -> list[tuple[int, str]]:
    monkeypatch.chdir(root)
    res = CliRunner().invoke(cli, ["check", "--format", "json", "--no-cache", "--no-progress", "--select",
                                   "SQF009", "."], catch_exceptions=False)
    return [(f["line"], f["message"]) for f in json.loads(res.output)["findings"]]


@pytest.mark.parametrize("template", [SYNC, ASYNC], ids=["sync", "async"])
def test_the_read_in_the_handler_raises_and_is_reported(tmp_path, monkeypatch, template):
    path = _program(tmp_path, template, captured=False)
    proc = _run(path)
    assert proc.returncode != 0 and "PendingRollbackError" in proc.stderr  # not the LookupError meant
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "raise LookupError" in text)
    found = _sqf009(tmp_path, monkeypatch)
    assert [n for n, _ in found] == [line]
    assert "`self.id` is read" in found[0][1] and "no automatic fix" in found[0][1]


@pytest.mark.parametrize("template", [SYNC, ASYNC], ids=["sync", "async"])
def test_the_id_taken_before_the_try_runs_and_is_left_alone(tmp_path, monkeypatch, template):
    path = _program(tmp_path, template, captured=True)
    proc = _run(path)
    assert proc.returncode == 0, proc.stderr
    assert "handled: note 1 was changed meanwhile" in proc.stdout
    assert _sqf009(tmp_path, monkeypatch) == []


_HANDLER = '''
import sqlalchemy.orm.exc
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.orm import exc as orm_exc
from sqlalchemy.orm.exc import StaleDataError

from app.db import Base


class StaleDataErrorLike(Exception):
    pass


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)

    def save(self, session: Session) -> None:
        try:
            session.add(self)
            session.commit()
        except {caught} as error:
            raise LookupError(f"note {{self.id}} not saved") from error
'''


@pytest.mark.parametrize(("caught", "reported"), [
    ("StaleDataError", True),
    ("orm_exc.StaleDataError", True),
    ("sqlalchemy.orm.exc.StaleDataError", True),
    ("(IntegrityError, StaleDataError)", True),  # SQLAlchemy's errors only: a flush failed
    ("(StaleDataError, ValueError)", False),  # the ValueError may come before any flush
    ("(StaleDataError, Exception)", False),
    ("StaleDataErrorLike", False),  # a project's class of a similar name
    ("IntegrityError", False),  # `self` may be new: its INSERT failed, and it stays readable
])
def test_which_handlers_prove_a_failed_update(tmp_path, monkeypatch, caught, reported):
    (tmp_path / "pyproject.toml").write_text("")
    app = tmp_path / "app"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "db.py").write_text("from sqlalchemy.orm import DeclarativeBase\n\n\nclass Base(DeclarativeBase):\n"
                               "    pass\n")
    (app / "notes.py").write_text(_HANDLER.format(caught=caught).lstrip("\n"))
    found = _sqf009(tmp_path, monkeypatch)
    assert bool(found) is reported, found


_GOES_ON = '''
import logging

from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from app.db import Note

log = logging.getLogger(__name__)


def touch_all(session: Session, note_ids: list[int]) -> None:
    for note_id in note_ids:
        note = session.get(Note, note_id)
        note.body = "seen"
        try:
            session.commit()
        except StaleDataError:
            log.warning("note %s changed meanwhile", note.id)
'''


def test_a_handler_reported_for_its_missing_rollback_is_one_finding(tmp_path, monkeypatch):
    # the loop's next round uses the session; the rollback put first also makes the read work
    (tmp_path / "pyproject.toml").write_text("")
    app = tmp_path / "app"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "db.py").write_text(_MODEL)
    (app / "notes.py").write_text(_GOES_ON.lstrip("\n"))
    found = _sqf009(tmp_path, monkeypatch)
    assert len(found) == 1 and "next round" in found[0][1], found
