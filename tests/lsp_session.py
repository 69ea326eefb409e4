"""A real LSP client session with `sqla-fix server` over stdio, built on pygls's own client.

Shared by the server's tests (``tests/test_server.py``) and the benchmark (``bench/bench.py``,
which puts this directory on ``sys.path`` as it does for ``fuzzing.py``): one client, so the
figures the bench prints are of the same session the tests check.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

ROOT = Path(__file__).resolve().parent.parent
# The server as the tests run it: this tree's code, in this interpreter.
THIS_TREE = (sys.executable, "-m", "codemods")


def apply(text: str, edits: Sequence[types.TextEdit]) -> str:
    """``text`` with the edits of a code action applied, as an editor would."""
    lines = text.splitlines(keepends=True)

    def offset(pos: types.Position) -> int:
        return sum(len(ln) for ln in lines[:pos.line]) + pos.character

    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        text = text[:offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end):]
    return text


class ServerError(Exception):
    """The server showed an error message instead of publishing diagnostics."""


class Session:
    """A language client with the diagnostics it received, per document.

    ``command`` starts sqla-fix (the server subcommand is added); ``env`` is added to this
    process's environment. The tests run this tree's code; the bench runs its own install.
    """

    def __init__(self, root: Path, command: Sequence[str] = THIS_TREE, env: dict[str, str] | None = None,
                 timeout: float = 120) -> None:
        self.root = root.resolve()
        self.command = list(command)
        self.env = env if env is not None else {"PYTHONPATH": str(ROOT)}
        self.timeout = timeout
        self.client = LanguageClient("sqla-fix-client", "1")
        self.diagnostics: dict[str, asyncio.Queue] = {}
        self.versions: dict[str, int] = {}

        self.messages: list[str] = []  # what the server showed the user (window/showMessage)

        @self.client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_diagnostics(params: types.PublishDiagnosticsParams) -> None:
            self.queue(params.uri).put_nowait(list(params.diagnostics))

        @self.client.feature(types.WINDOW_SHOW_MESSAGE)
        def on_message(params: types.ShowMessageParams) -> None:
            self.messages.append(params.message)
            if params.type == types.MessageType.Error:  # no diagnostics will come: stop waiting
                for queue in self.diagnostics.values():
                    queue.put_nowait(ServerError(params.message))

    def queue(self, uri: str) -> asyncio.Queue:
        return self.diagnostics.setdefault(uri, asyncio.Queue())

    @property
    def pid(self) -> int:
        """The server process's id (pygls keeps the process it started to itself)."""
        process = getattr(self.client, "_server", None)
        assert process is not None, "the server is not started"
        return process.pid

    async def start(self) -> None:
        """Start the server and initialize the session (the LSP handshake)."""
        env = dict(os.environ, GIT_CEILING_DIRECTORIES=str(self.root.parent), **self.env)
        await self.client.start_io(self.command[0], *self.command[1:], "server", cwd=str(self.root), env=env)
        await self.client.initialize_async(types.InitializeParams(
            capabilities=types.ClientCapabilities(), root_uri=from_fs_path(str(self.root))))
        self.client.initialized(types.InitializedParams())

    async def stop(self) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()

    async def __aenter__(self) -> Session:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def uri(self, rel: str) -> str:
        return from_fs_path(str(self.root / rel))  # type: ignore[return-value]

    async def next_diagnostics(self, uri: str) -> list[types.Diagnostic]:
        got = await asyncio.wait_for(self.queue(uri).get(), timeout=self.timeout)
        if isinstance(got, ServerError):
            raise got
        return got

    async def open(self, rel: str, text: str) -> list[types.Diagnostic]:
        uri = self.uri(rel)
        self.versions[uri] = 1
        self.queue(uri)  # before the notification: an error message is delivered to it
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
        return await self.next_diagnostics(uri)

    async def change(self, rel: str, text: str) -> list[types.Diagnostic]:
        """The whole new text of an open document (its version goes up by one)."""
        uri = self.uri(rel)
        version = self.versions[uri] = self.versions.get(uri, 1) + 1
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))
        return await self.next_diagnostics(uri)

    def save(self, rel: str) -> None:
        self.client.text_document_did_save(types.DidSaveTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=self.uri(rel))))

    async def actions(self, rel: str, diags: list[types.Diagnostic], only=None) -> list[types.CodeAction]:
        rng = diags[0].range if diags else types.Range(start=types.Position(0, 0), end=types.Position(0, 0))
        return await self.client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=self.uri(rel)), range=rng,
            context=types.CodeActionContext(diagnostics=diags, only=only))) or []  # type: ignore[return-value]


def session_run(root: Path, body: Callable[[Session], Awaitable[None]], **options) -> None:
    """Run ``body`` in a session with the server started in ``root``."""
    async def main() -> None:
        async with Session(root, **options) as s:
            await body(s)

    asyncio.run(main())
