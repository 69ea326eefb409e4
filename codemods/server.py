"""`sqla-fix server`: a language server (LSP over stdio, built on pygls).

It keeps each project's index in memory, built once when the first file of the project is
opened, and re-extracts one file's facts whenever that file is opened, changed or saved, so
providers and factories defined in other modules are known without indexing again. It
publishes the findings of open documents as diagnostics and offers each fix as a code action
(quickfix), plus "fix all safe" (``source.fixAll.sqla-fix``).

pygls is imported only by :func:`serve`: it is an optional dependency (``sqla-fix[server]``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import __version__, engine, pool
from . import index as index_mod
from .config import Config, ConfigError, load
from .discovery import discover
from .prefilter import relevant
from .project import index_triggers

if TYPE_CHECKING:
    from lsprotocol import types

    from .engine import FileResult, FindingRecord

SOURCE = "sqla-fix"
FIX_ALL = "source.fixAll.sqla-fix"


# --------------------------------------------------------------------------- state


@dataclass
class Project:
    """One project root: its configuration and its index, kept up to date file by file."""

    config: Config
    index: index_mod.ProjectIndex
    indexed: set[str] = field(default_factory=set)  # absolute paths whose facts are in the index

    @classmethod
    def build(cls, config: Config) -> Project:
        files = discover([config.root], is_excluded=config.excludes)
        idx = engine.build_index(files, config, pool.default_jobs(), use_cache=True)
        return cls(config, idx, {os.path.abspath(f.path) for f in idx.modules.values()})

    def update(self, path: str, raw: bytes) -> None:
        """Re-extract one file's facts from its current text. A file the index never took and
        that mentions nothing it cares about stays out (a byte scan, as in a full run). Facts
        the index already holds are not added again: adding starts a new state of the index,
        and everything derived from the old one (the project-wide answers, the callers' files
        parsed and walked for SQF010) would be derived again for the same facts."""
        absolute = os.path.abspath(path)
        if absolute not in self.indexed and not any(t in raw for t in index_triggers(self.config)) \
                and not relevant(raw, self.index):
            return
        try:
            facts = index_mod.extract(path, raw, index_mod.module_names(path, self.config.root, self.config.src))
        except index_mod.UNPARSABLE:
            return  # half-typed code: keep what the index knew
        known = self.index.module_for_path(absolute)
        if _same_facts(known, facts):
            pass
        elif _same_facts(known, facts, _unplaced):
            self.index.add_moved(facts)
        else:
            self.index.add(facts)
        self.indexed.add(absolute)

    @contextmanager
    def checking(self, path: str) -> Iterator[None]:
        """While the engine checks ``path``: the facts it makes findable by that path (those of
        a file the index did not take, those of the text after a fix round, see
        ``ProjectIndex.add_transient``) are a worker's shortcut for one file; the index in
        memory serves the next checks, so they are undone after."""
        absolute = os.path.abspath(path)
        before = self.index.by_path.get(absolute)
        try:
            yield
        finally:
            if before is None:
                self.index.by_path.pop(absolute, None)
            else:
                self.index.by_path[absolute] = before


def _same_facts(known: index_mod.ModuleFacts | None, facts: index_mod.ModuleFacts,
                seen_as: Callable[[object], object] = lambda value: value) -> bool:
    """Whether the index holds ``facts`` already (for an edit that changes none: a renamed
    local, a comment that moves no line), as ``seen_as`` shows both. The path is compared as a
    file, not as spelled."""
    return known is not None and os.path.abspath(known.path) == os.path.abspath(facts.path) \
        and seen_as(dataclasses.replace(facts, path=known.path)) == seen_as(known)


def _unplaced(value: object) -> object:
    """``value`` with every record's ``line`` field left out (recursively through records,
    lists, tuples and dicts): equal for the facts of a module before and after an edit that
    only moved code. A set is kept as it is (compared with its lines)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value), tuple((f.name, _unplaced(getattr(value, f.name)))
                                   for f in dataclasses.fields(value) if f.name != "line"))
    if isinstance(value, dict):
        return {k: _unplaced(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_unplaced(v) for v in value]
    return value


class Workspace:
    """The projects of the open documents and the last result of each document."""

    def __init__(self) -> None:
        self.projects: dict[str, Project] = {}
        self.results: dict[str, tuple[str, FileResult]] = {}  # uri -> (text, result)

    def project_for(self, path: str) -> Project:
        config = load(os.path.dirname(path))
        project = self.projects.get(config.root)
        if project is None:
            project = self.projects[config.root] = Project.build(config)
        return project

    def check(self, uri: str, path: str, text: str) -> FileResult:
        """The findings of a document as it is now (with each finding's fixed text)."""
        cached = self.results.get(uri)
        if cached is not None and cached[0] == text:
            return cached[1]
        raw = _encode(text)
        project = self.project_for(path)
        project.update(path, raw)
        with project.checking(path):
            result = engine.run_source(path, raw, project.index, project.config, want_fix_diffs=True)
        self.results[uri] = (text, result)
        return result

    def forget(self, uri: str) -> None:
        self.results.pop(uri, None)


def _encode(text: str) -> bytes:
    """The document's text as the bytes of its file: editors hand over text, and a PEP 263
    cookie naming another encoding (latin-1) must decode back to that same text."""
    import tokenize
    from io import BytesIO

    raw = text.encode("utf-8", errors="surrogatepass")
    try:
        encoding, _ = tokenize.detect_encoding(BytesIO(raw).readline)
        return raw if encoding in ("utf-8", "utf-8-sig") else text.encode(encoding)
    except (SyntaxError, LookupError, UnicodeError):
        return raw  # the engine reports what it cannot decode


# --------------------------------------------------------------------------- LSP shapes


def _utf16(line: str, column: int) -> int:
    """LSP counts characters in UTF-16 code units; libcst counts code points."""
    prefix = line[:column]
    return column + sum(1 for ch in prefix if ord(ch) > 0xFFFF)


def diagnostics(result: FileResult, text: str) -> list[types.Diagnostic]:
    from lsprotocol import types

    lines = text.splitlines()

    def position(line: int, col: int) -> types.Position:
        here = lines[line - 1] if 0 < line <= len(lines) else ""
        return types.Position(line=line - 1, character=_utf16(here, col - 1))

    return [
        types.Diagnostic(
            range=types.Range(start=position(f.line, f.col), end=position(f.end_line, f.end_col)),
            message=f.message, severity=types.DiagnosticSeverity.Warning, code=f.code, source=SOURCE,
            data={"fixable": f.fixable},
        )
        for f in result.findings
    ]


def text_edit(old: str, new: str) -> types.TextEdit:
    """One edit that turns ``old`` into ``new``: the lines between their common head and tail."""
    from lsprotocol import types

    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    return types.TextEdit(
        range=types.Range(start=types.Position(line=head, character=0),
                          end=types.Position(line=len(a) - tail, character=0)),
        new_text="".join(b[head:len(b) - tail]),
    )


def _overlaps(f: FindingRecord, rng: types.Range) -> bool:
    start, end = (f.line - 1, f.col - 1), (f.end_line - 1, f.end_col - 1)
    return start <= (rng.end.line, rng.end.character) and (rng.start.line, rng.start.character) <= end


def _wanted(kind: str, only: list[str] | None) -> bool:
    return not only or any(kind == k or kind.startswith(k + ".") for k in only)


def code_actions(uri: str, text: str, result: FileResult, rng: types.Range,
                 only: list[str] | None) -> list[types.CodeAction]:
    from lsprotocol import types

    actions = []
    if _wanted(types.CodeActionKind.QuickFix, only):
        diags = diagnostics(result, text)
        for f, diag in zip(result.findings, diags):
            if f.fixed_text is None or not _overlaps(f, rng):
                continue
            unsafe = "" if f.fix_safe else " (unsafe fix)"
            actions.append(types.CodeAction(
                title=f"sqla-fix: fix {f.code}{unsafe}", kind=types.CodeActionKind.QuickFix,
                diagnostics=[diag], is_preferred=f.fix_safe,
                edit=types.WorkspaceEdit(changes={uri: [text_edit(text, f.fixed_text)]}),
            ))
    if _wanted(FIX_ALL, only) and result.changed and result.new_text is not None:
        actions.append(types.CodeAction(
            title="sqla-fix: fix all safe fixes", kind=FIX_ALL,
            edit=types.WorkspaceEdit(changes={uri: [text_edit(text, result.new_text)]}),
        ))
    return actions


# --------------------------------------------------------------------------- the server


def make_server():
    from lsprotocol import types
    from pygls.lsp.server import LanguageServer
    from pygls.uris import to_fs_path

    server = LanguageServer(SOURCE, __version__, text_document_sync_kind=types.TextDocumentSyncKind.Full)
    work = Workspace()

    def publish(uri: str) -> None:
        doc = server.workspace.get_text_document(uri)
        path = to_fs_path(uri)
        if path is None or not path.endswith((".py", ".pyi")):
            return
        try:
            result = work.check(uri, path, doc.source)
        except ConfigError as exc:
            server.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=str(exc)))
            return
        if result.error:
            server.window_log_message(types.LogMessageParams(type=types.MessageType.Info, message=result.error))
        server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=uri, version=doc.version, diagnostics=diagnostics(result, doc.source)))

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls, params: types.DidOpenTextDocumentParams) -> None:
        publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls, params: types.DidChangeTextDocumentParams) -> None:
        publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls, params: types.DidSaveTextDocumentParams) -> None:
        # A saved module may change what the others' findings depend on (a provider, a
        # factory): every open document is checked again against the updated index.
        saved = params.text_document.uri
        publish(saved)
        work.results.clear()
        for uri in list(server.workspace.text_documents):
            if uri != saved:
                publish(uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls, params: types.DidCloseTextDocumentParams) -> None:
        work.forget(params.text_document.uri)
        server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(
        code_action_kinds=[types.CodeActionKind.QuickFix, FIX_ALL]))
    def code_action(ls, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        doc = server.workspace.get_text_document(uri)
        path = to_fs_path(uri)
        if path is None:
            return []
        result = work.check(uri, path, doc.source)
        only = [str(k) for k in params.context.only] if params.context.only else None
        return code_actions(uri, doc.source, result, params.range, only)

    return server


def serve() -> None:
    make_server().start_io()
