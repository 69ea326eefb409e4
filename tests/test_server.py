"""`sqla-fix server`: a real LSP session over stdio, driven by pygls's own client."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from snippets import BUG_LINE, BUGGY, FIXED

pytest.importorskip("pygls")  # the optional dependency; part of the test extras

from lsprotocol import types  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402
from pygls.uris import from_fs_path  # noqa: E402

from codemods.server import _utf16, text_edit  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
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


def apply(text: str, edits: list[types.TextEdit]) -> str:
    lines = text.splitlines(keepends=True)

    def offset(pos: types.Position) -> int:
        return sum(len(ln) for ln in lines[:pos.line]) + pos.character

    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        text = text[:offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end):]
    return text


class Session:
    """A language client with the diagnostics it received, per document."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.client = LanguageClient("sqla-fix-tests", "1")
        self.diagnostics: dict[str, asyncio.Queue] = {}

        @self.client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_diagnostics(params: types.PublishDiagnosticsParams) -> None:
            self.queue(params.uri).put_nowait(list(params.diagnostics))

    def queue(self, uri: str) -> asyncio.Queue:
        return self.diagnostics.setdefault(uri, asyncio.Queue())

    async def __aenter__(self) -> Session:
        env = dict(os.environ, PYTHONPATH=str(ROOT), GIT_CEILING_DIRECTORIES=str(self.root.parent))
        await self.client.start_io(sys.executable, "-m", "codemods", "server", cwd=str(self.root), env=env)
        await self.client.initialize_async(types.InitializeParams(
            capabilities=types.ClientCapabilities(), root_uri=from_fs_path(str(self.root))))
        self.client.initialized(types.InitializedParams())
        return self

    async def __aexit__(self, *exc) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()

    def uri(self, rel: str) -> str:
        return from_fs_path(str(self.root / rel))  # type: ignore[return-value]

    async def next_diagnostics(self, uri: str) -> list[types.Diagnostic]:
        return await asyncio.wait_for(self.queue(uri).get(), timeout=120)

    async def open(self, rel: str, text: str) -> list[types.Diagnostic]:
        uri = self.uri(rel)
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
        return await self.next_diagnostics(uri)

    async def change(self, rel: str, text: str, version: int) -> list[types.Diagnostic]:
        uri = self.uri(rel)
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))
        return await self.next_diagnostics(uri)

    async def actions(self, rel: str, diags: list[types.Diagnostic], only=None) -> list[types.CodeAction]:
        rng = diags[0].range if diags else types.Range(start=types.Position(0, 0), end=types.Position(0, 0))
        return await self.client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=self.uri(rel)), range=rng,
            context=types.CodeActionContext(diagnostics=diags, only=only))) or []  # type: ignore[return-value]


def session_run(root: Path, body) -> None:
    async def main() -> None:
        async with Session(root) as s:
            await body(s)

    asyncio.run(main())


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

        assert await s.change("visits.py", fixed, 2) == []

    session_run(tmp_path, body)


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
        await s.change("app/deps.py", shared, 2)
        s.client.text_document_did_save(types.DidSaveTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=s.uri("app/deps.py"))))
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
