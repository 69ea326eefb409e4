"""Unified diffs, hunks, and the per-hunk review (``[y,n,a,d,q,?]``, after Bowler)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import click

CONTEXT = 3
NO_NEWLINE = "\\ No newline at end of file\n"


@dataclass
class Hunk:
    header: str
    lines: list[str]  # diff body lines: " x", "-x", "+x", each ending in a newline
    changes: list[tuple[int, int, int, int]]  # the non-equal opcodes of this hunk

    @property
    def text(self) -> str:
        return self.header + "".join(self.lines)


def _split(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _diff_line(prefix: str, line: str) -> str:
    if line.endswith("\n"):
        return prefix + line
    return prefix + line + "\n" + NO_NEWLINE


def hunks(old: str, new: str, context: int = CONTEXT) -> list[Hunk]:
    a, b = _split(old), _split(new)
    out = []
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(context):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        header = f"@@ -{_range(i1, i2)} +{_range(j1, j2)} @@\n"
        lines: list[str] = []
        changes = []
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                lines.extend(_diff_line(" ", x) for x in a[a1:a2])
                continue
            changes.append((a1, a2, b1, b2))
            lines.extend(_diff_line("-", x) for x in a[a1:a2])
            lines.extend(_diff_line("+", x) for x in b[b1:b2])
        out.append(Hunk(header, lines, changes))
    return out


def _range(start: int, stop: int) -> str:
    length = stop - start
    first = start + 1 if length else start
    return f"{first}" if length == 1 else f"{first},{length}"


def unified_diff(old: str, new: str, path: str, context: int = CONTEXT) -> str:
    hs = hunks(old, new, context)
    if not hs:
        return ""
    return f"--- a/{path}\n+++ b/{path}\n" + "".join(h.text for h in hs)


def apply_hunks(old: str, new: str, accepted: Sequence[bool], context: int = CONTEXT) -> str:
    """``old`` with only the accepted hunks of ``old -> new`` applied."""
    a, b = _split(old), _split(new)
    hs = hunks(old, new, context)
    keep_new = {c for h, ok in zip(hs, accepted) if ok for c in h.changes}
    out: list[str] = []
    for tag, a1, a2, b1, b2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.extend(a[a1:a2])
        elif (a1, a2, b1, b2) in keep_new:
            out.extend(b[b1:b2])
        else:
            out.extend(a[a1:a2])
    return "".join(out)


# --------------------------------------------------------------------------- colour


def colorize(diff: str, color: bool) -> str:
    if not color:
        return diff
    out = []
    for line in diff.splitlines(keepends=True):
        if line.startswith(("---", "+++")):
            out.append(click.style(line, bold=True))
        elif line.startswith("@@"):
            out.append(click.style(line, fg="cyan"))
        elif line.startswith("+"):
            out.append(click.style(line, fg="green"))
        elif line.startswith("-"):
            out.append(click.style(line, fg="red"))
        else:
            out.append(line)
    return "".join(out)


# --------------------------------------------------------------------------- review

HELP = """\
y - apply this hunk
n - do not apply this hunk (the default)
a - apply this hunk and every remaining hunk, in every file
d - do not apply this hunk or any remaining hunk of this file
q - quit: apply no more hunks (hunks already accepted are written)
? - print this help
"""


class Quit(Exception):
    pass


class Reviewer:
    """Asks about each hunk. ``ask`` returns one line of the user's answer ('' at EOF)."""

    def __init__(self, ask: Callable[[str], str], echo: Callable[[str], None], color: bool) -> None:
        self.ask = ask
        self.echo = echo
        self.color = color
        self.accept_all = False

    def review(self, path: str, old: str, new: str) -> list[bool]:
        """Decisions for each hunk of ``path``. Raises Quit (with ``decisions``) on ``q``."""
        hs = hunks(old, new)
        decisions = [False] * len(hs)
        if self.accept_all:
            return [True] * len(hs)
        self.echo(colorize(f"--- a/{path}\n+++ b/{path}\n", self.color))
        for i, hunk in enumerate(hs):
            if self.accept_all:
                decisions[i] = True
                continue
            self.echo(colorize(hunk.text, self.color))
            while True:
                answer = self.ask(f"({i + 1}/{len(hs)}) Apply this hunk to {path} [y,n,a,d,q,?]? ")
                if answer == "":  # end of input
                    err = Quit()
                    err.decisions = decisions  # type: ignore[attr-defined]
                    raise err
                choice = answer.strip().lower()[:1] or "n"
                if choice == "y":
                    decisions[i] = True
                elif choice == "n":
                    pass
                elif choice == "a":
                    self.accept_all = True
                    decisions[i] = True
                elif choice == "d":
                    return decisions
                elif choice == "q":
                    err = Quit()
                    err.decisions = decisions  # type: ignore[attr-defined]
                    raise err
                else:
                    self.echo(HELP)
                    continue
                break
        return decisions
