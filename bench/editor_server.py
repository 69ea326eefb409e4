"""The editor server's figures: `sqla-fix server` driven over stdio by the LSP client the tests
use (``tests/lsp_session.py``), as an editor drives it.

:func:`measure` runs one session in a process of its own (this module as a script, printing
the figures as JSON), so the benchmark's process never loads pygls: a child forked from a
larger parent would report the parent's resident set as its own peak (wait4's ru_maxrss), and
the other rows' peak memory would be wrong. In the session the server is started, initialized
and the file with session code opened (the first open builds the project's index); then, warm,
the file is changed N times for each kind of :class:`Edit` (a different buffer each time) and
each change is timed up to the diagnostics it brings; the same for a file without session
code; and, when the session file has a fixable finding, the code actions on it. Each sample has
the wall seconds and the server process's CPU seconds for it (user + system, read from
``/proc/<pid>/stat`` before and after; at the first open, with the children it waited for, the
index's workers).

    python bench/editor_server.py ROOT SESSION_FILE PLAIN_FILE --changes N [--first-open] -- COMMAND...
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import os
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

TYPE_CHECKING = False  # not `typing`'s: the benchmark's process imports this module, and stays small
if TYPE_CHECKING:
    import ast

    from lsp_session import Session
    from lsprotocol import types

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Sample:
    seconds: float  # wall
    cpu: float  # the server process's user + system seconds


def cpu_seconds(pid: int) -> float:
    """User + system seconds of a process and of the children it waited for."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()  # after the command name, from field 3 on
    return sum(int(f) for f in fields[11:15]) / TICKS  # fields 14-17: utime stime cutime cstime


def peak_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


DEFINITION = re.compile(r"^(?:async def|def|class) ", re.MULTILINE)


class Edit(enum.Enum):
    """Edits as one types them."""

    COMMENT_LINE = "an added comment line"  # every later line moves: the file's facts change
    RENAMED_LOCAL = "a renamed local"  # nothing moves; the facts change where they name the local
    LINE_COMMENT = "a comment typed at the end of a line"  # nothing moves, no fact changes


def edited(text: str, i: int, kind: Edit = Edit.COMMENT_LINE) -> str:
    """The ``i``-th edit of ``text`` of that kind, each different, cycling over the places:
    a comment line before a top-level definition; a local variable of a function renamed; a
    comment at the end of a simple statement's last line. (A comment line when the file has
    no place of that kind.)"""
    import ast  # in the session's process only (see the module's docstring)

    if kind is Edit.RENAMED_LOCAL:
        spots = _locals(text)
        if spots:
            return _rename(text, spots[i % len(spots)], f"_{i}")
    if kind is Edit.LINE_COMMENT:
        ends = sorted({node.end_lineno for node in ast.walk(ast.parse(text))
                       if isinstance(node, ast.stmt) and not hasattr(node, "body") and node.end_lineno})
        if ends:
            lines = text.splitlines(keepends=True)
            at = ends[i % len(ends)] - 1
            body = lines[at].rstrip("\r\n")
            lines[at] = f"{body}  # note {i}{lines[at][len(body):]}"
            return "".join(lines)
    starts = [m.start() for m in DEFINITION.finditer(text)] or [0]
    at = starts[i % len(starts)]
    return f"{text[:at]}# edit {i}\n{text[at:]}"


def _locals(text: str) -> list[list[ast.Name]]:
    """For each function and each name it assigns (not a parameter, global or nonlocal), the
    places the name occurs in that function's own body (nested functions left out)."""
    import ast

    out = []
    for fn in ast.walk(ast.parse(text)):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        names: dict[str, list[ast.Name]] = {}
        outer: set[str] = {a.arg for a in ast.walk(fn.args) if isinstance(a, ast.arg)}
        todo: list[ast.AST] = list(fn.body)
        while todo:
            node = todo.pop()
            if isinstance(node, (ast.Global, ast.Nonlocal)):
                outer.update(node.names)
            elif isinstance(node, ast.Name):
                names.setdefault(node.id, []).append(node)
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                todo.extend(ast.iter_child_nodes(node))
        out += [uses for name, uses in sorted(names.items())
                if name not in outer and any(isinstance(u.ctx, ast.Store) for u in uses)]
    return out


def _rename(text: str, uses: list[ast.Name], suffix: str) -> str:
    lines = text.splitlines(keepends=True)
    for use in sorted(uses, key=lambda u: (u.lineno, u.col_offset), reverse=True):
        line = lines[use.lineno - 1].encode()  # ast's columns count UTF-8 bytes
        end = use.col_offset + len(use.id.encode())
        lines[use.lineno - 1] = (line[:end] + suffix.encode() + line[end:]).decode()
    return "".join(lines)


@dataclass
class Figures:
    first_open: Sample  # start, initialize, didOpen of the session file -> its diagnostics
    peak_mb: float  # the server process's largest resident set
    findings: int = 0  # in the session file as it is on disk
    # didChange of the session file -> diagnostics, per kind of edit
    change: dict[Edit, list[Sample]] = dataclasses.field(default_factory=dict)
    plain_change: list[Sample] = dataclasses.field(default_factory=list)  # of the file without session code
    action: list[Sample] = dataclasses.field(default_factory=list)  # on a fixable finding (none: no such finding)

    def to_json(self) -> dict[str, object]:
        out = dataclasses.asdict(self)
        out["change"] = {kind.name: [dataclasses.asdict(x) for x in xs] for kind, xs in self.change.items()}
        return out

    @classmethod
    def from_json(cls, data: dict) -> Figures:
        def samples(xs: list[dict]) -> list[Sample]:
            return [Sample(**x) for x in xs]

        return cls(Sample(**data["first_open"]), data["peak_mb"], data["findings"],
                   {Edit[k]: samples(v) for k, v in data["change"].items()}, samples(data["plain_change"]),
                   samples(data["action"]))


async def _timed(s: Session, step: Callable[[], Awaitable[object]]) -> Sample:
    cpu, start = cpu_seconds(s.pid), time.perf_counter()
    await step()
    return Sample(time.perf_counter() - start, cpu_seconds(s.pid) - cpu)


async def _session(root: Path, command: list[str], session_file: str, plain_file: str, n: int,
                   first_only: bool) -> Figures:
    from lsp_session import Session
    from lsprotocol import types

    session_text = (root / session_file).read_text(encoding="utf-8")
    s = Session(root, command, env={}, timeout=600)
    start = time.perf_counter()
    await s.start()
    try:
        diags = await s.open(session_file, session_text)
        figures = Figures(Sample(time.perf_counter() - start, cpu_seconds(s.pid)), 0.0, len(diags))
        if not first_only:
            for kind in Edit:
                figures.change[kind] = [await _timed(s, lambda i=i, kind=kind: s.change(
                    session_file, edited(session_text, i, kind))) for i in range(n)]
            await s.change(session_file, session_text)  # as on disk again, for the code actions
            plain_text = (root / plain_file).read_text(encoding="utf-8")
            await s.open(plain_file, plain_text)
            figures.plain_change = [await _timed(s, lambda i=i: s.change(plain_file, edited(plain_text, i)))
                                    for i in range(n)]
            fixable = [d for d in diags if isinstance(d.data, dict) and d.data.get("fixable")]
            if fixable:
                only = [types.CodeActionKind.QuickFix]
                figures.action = [await _timed(s, lambda: _some_actions(s, session_file, fixable[:1], only))
                                  for _ in range(n)]
        figures.peak_mb = peak_mb(s.pid)
        return figures
    finally:
        await s.stop()


async def _some_actions(s: Session, rel: str, diags: list[types.Diagnostic], only: list) -> None:
    if not await s.actions(rel, diags, only=only):
        raise SystemExit(f"no code action offered for {diags[0].code} in {rel}")


def measure(root: str, command: list[str], session_file: str, plain_file: str, n: int,
            first_only: bool = False) -> Figures:
    """The figures of one session with the server ``command`` starts (``sqla-fix``, without
    the ``server`` subcommand), in ``root``; with ``first_only``, its first open alone."""
    import json

    script = [sys.executable, os.path.abspath(__file__), root, session_file, plain_file, "--changes", str(n)]
    done = subprocess.run([*script, *(["--first-open"] if first_only else []), "--", *command],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the editor server's session failed:\n{done.stderr}")
    return Figures.from_json(json.loads(done.stdout))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("session_file")
    ap.add_argument("plain_file")
    ap.add_argument("--changes", type=int, default=10)
    ap.add_argument("--first-open", action="store_true")
    ap.add_argument("command", nargs="+")
    args = ap.parse_args()
    import asyncio
    import json

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
    figures = asyncio.run(_session(Path(args.root), args.command, args.session_file, args.plain_file,
                                   args.changes, args.first_open))
    json.dump(figures.to_json(), sys.stdout)


if __name__ == "__main__":
    main()
