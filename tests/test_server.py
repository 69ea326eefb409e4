"""`sqla-fix server`: a real LSP session over stdio, driven by pygls's own client."""

from __future__ import annotations

import pytest
from snippets import BUG_LINE, BUGGY, FIXED, FIXED_LINE

pytest.importorskip("pygls")  # the optional dependency; part of the test extras

from lsp_session import Session, apply, session_run  # noqa: E402
from lsprotocol import types  # noqa: E402

from codemods.server import Workspace, _utf16, text_edit  # noqa: E402

PLAIN = "def total(values):\n    seen = set()\n    for v in values:\n        seen.add(v)\n    return seen\n"
# A provider module and an endpoint in another module that uses it: the finding needs the index.
DEPS = '''\
from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

engine = create_async_engine("sqlite+aiosqlite://")
SessionLocal = async_sessionmaker(engine)


async def get_db():
    async with SessionLocal() as session:
        yield session


async def get_auth_db():
    async with SessionLocal() as session:
        yield session


async def get_current_user(auth_db: AsyncSession = Depends(get_auth_db)):
    return await auth_db.get(User, 1)
'''
ROUTE = '''\
from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import get_current_user, get_db


async def touch(user=Depends(get_current_user), db: AsyncSession = Depends(get_db)):
    user.visits += 1
    db.add(user)
    await db.commit()
'''


def test_diagnostics_quickfix_and_cleared_after_the_fix(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "visits.py").write_text(BUGGY)

    async def body(s: Session) -> None:
        diags = await s.open("visits.py", BUGGY)
        assert [d.code for d in diags] == ["SQF002"]
        d = diags[0]
        assert d.source == "sqla-fix" and d.severity == types.DiagnosticSeverity.Warning
        line = BUGGY.splitlines().index(BUG_LINE)
        assert d.range.start.line == line and d.range.start.character == BUG_LINE.index("db.add")

        actions = await s.actions("visits.py", diags, only=[types.CodeActionKind.QuickFix])
        assert len(actions) == 1 and actions[0].kind == types.CodeActionKind.QuickFix
        fixed = apply(BUGGY, actions[0].edit.changes[s.uri("visits.py")])
        assert fixed == FIXED

        assert await s.change("visits.py", fixed) == []

    session_run(tmp_path, body)


def test_diagnostics_follow_edits_that_move_lines_or_change_no_fact(tmp_path):
    # A comment typed at the end of a line changes none of the file's facts (the index keeps
    # its state); a comment line above moves every line (the file's facts are taken again).
    # Either way the diagnostics and the quick fix are those of the text as it is now.
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "visits.py").write_text(BUGGY)
    line = BUGGY.splitlines().index(BUG_LINE)
    typed = BUGGY.replace(BUG_LINE, BUG_LINE + "  # note")
    moved = "# a comment\n" + typed

    async def body(s: Session) -> None:
        await s.open("visits.py", BUGGY)
        assert [(d.code, d.range.start.line) for d in await s.change("visits.py", typed)] == [("SQF002", line)]
        diags = await s.change("visits.py", moved)
        assert [(d.code, d.range.start.line) for d in diags] == [("SQF002", line + 1)]
        actions = await s.actions("visits.py", diags, only=[types.CodeActionKind.QuickFix])
        fixed = apply(moved, actions[0].edit.changes[s.uri("visits.py")])
        assert fixed.startswith("# a comment\n") and FIXED_LINE in fixed and BUG_LINE not in fixed
        assert await s.change("visits.py", fixed) == []

    session_run(tmp_path, body)


def _visits(tmp_path):
    """A workspace with a project of one module (BUGGY) and its index."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    path = tmp_path / "visits.py"
    path.write_text(BUGGY)
    work = Workspace()
    return work, path, path.as_uri(), work.project_for(str(path)).index


def test_the_index_keeps_its_state_for_an_edit_that_changes_no_fact(tmp_path):
    # What the index derived (project-wide answers, the callers' files parsed for SQF010) is
    # kept for its state: an edit that changes none of the file's facts must not start a new
    # state, one that does must.
    work, path, uri, index = _visits(tmp_path)
    built = index.generation
    assert [f.code for f in work.check(uri, str(path), BUGGY).findings] == ["SQF002"]
    assert index.generation == built  # the first open of the file as on disk
    typed = BUGGY.replace(BUG_LINE, BUG_LINE + "  # note")
    assert [f.code for f in work.check(uri, str(path), typed).findings] == ["SQF002"]
    assert index.generation == built
    renamed = BUGGY.replace("record_visit", "record_visit_once")
    assert [f.code for f in work.check(uri, str(path), renamed).findings] == ["SQF002"]
    assert index.generation > built
    assert "record_visit_once" in index.module_for_path(str(path)).functions


def test_an_edit_that_only_moves_code_keeps_the_projects_session_names(tmp_path):
    # A line added above a definition changes the file's facts only in their lines: a new
    # state of the index (the lines are new), but the session-related names, which read no
    # line, are not worked out again. An edit that adds a provider changes them.
    work, path, uri, index = _visits(tmp_path)
    names = index.names()
    built, line = index.generation, index.module_for_path(str(path)).functions["handle"].line
    moved = "# a note\n" + BUGGY
    assert [f.code for f in work.check(uri, str(path), moved).findings] == ["SQF002"]
    assert index.generation > built and index.module_for_path(str(path)).functions["handle"].line == line + 1
    assert index.names() is names
    provider = moved + "\n\ndef open_visits():\n    with SessionLocal() as s:\n        yield s\n"
    work.check(uri, str(path), provider)
    assert "open_visits" in index.names() and "open_visits" not in names


def test_fix_all_source_action(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "visits.py").write_text(BUGGY)

    async def body(s: Session) -> None:
        diags = await s.open("visits.py", BUGGY)
        actions = await s.actions("visits.py", diags, only=[types.CodeActionKind.SourceFixAll])
        assert [a.kind for a in actions] == ["source.fixAll.sqla-fix"]
        assert apply(BUGGY, actions[0].edit.changes[s.uri("visits.py")]) == FIXED

    session_run(tmp_path, body)


def test_a_file_without_session_code_gets_empty_diagnostics(tmp_path):
    (tmp_path / "plain.py").write_text(PLAIN)

    async def body(s: Session) -> None:
        assert await s.open("plain.py", PLAIN) == []
        assert await s.actions("plain.py", []) == []

    session_run(tmp_path, body)


def test_the_index_in_memory_follows_edits_of_another_module(tmp_path):
    # The route's finding needs the provider module's facts: the session the current user
    # comes from. Once the provider is edited to share the endpoint's session and saved, the
    # open route is checked again and is clean: the index in memory took the editor's text
    # (the file on disk never changed).
    app = tmp_path / "app"
    app.mkdir()
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (app / "__init__.py").write_text("")
    (app / "deps.py").write_text(DEPS)
    (app / "routes.py").write_text(ROUTE)
    shared = DEPS.replace("Depends(get_auth_db)", "Depends(get_db)")

    async def body(s: Session) -> None:
        assert [d.code for d in await s.open("app/routes.py", ROUTE)] == ["SQF002"]
        await s.open("app/deps.py", DEPS)
        await s.change("app/deps.py", shared)
        s.save("app/deps.py")
        await s.next_diagnostics(s.uri("app/deps.py"))
        assert await s.next_diagnostics(s.uri("app/routes.py")) == []

    session_run(tmp_path, body)


def test_text_edit_replaces_only_the_lines_that_differ():
    old = "a\nb\nc\nd\n"
    new = "a\nB\nB2\nc\nd\n"
    edit = text_edit(old, new)
    assert (edit.range.start.line, edit.range.end.line) == (1, 2)
    assert edit.new_text == "B\nB2\n"
    assert apply(old, [edit]) == new


def test_columns_are_utf16_code_units():
    assert _utf16("x = '😀'; y", 8) == 9  # the emoji is one code point, two UTF-16 units
    assert _utf16("x = 'é'; y", 8) == 8
