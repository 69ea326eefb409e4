"""Suppression comments: ``# sqla-fix: ignore[SQF001, SQF002]`` and flake8's ``# noqa``.

A comment on the first or the last line of a finding suppresses it: ``# sqla-fix: ignore`` and
a bare ``# noqa`` every code, ``# sqla-fix: ignore[...]`` and ``# noqa: SQF001,SQF002`` the
codes listed (as ruff reads ``# noqa``, a ``# noqa: E501`` naming other tools' codes only
suppresses nothing here). ``# sqla-fix: skip-file`` anywhere in a file's first lines skips
the whole file.
"""

from __future__ import annotations

import re

_IGNORE = re.compile(r"#\s*sqla-fix:\s*ignore(?:\[(?P<codes>[^\]]*)\])?", re.IGNORECASE)
# flake8's form: the word noqa alone, or followed by a colon and codes separated by commas or
# spaces. A colon followed by no code suppresses nothing (ruff warns rather than suppress all).
_NOQA = re.compile(r"#\s*noqa(?![\w-])(?P<colon>\s*:\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?",
                   re.IGNORECASE)
_NOQA_COLON = re.compile(r"#\s*noqa\s*:", re.IGNORECASE)
SKIP_FILE = re.compile(rb"#\s*sqla-fix:\s*skip-file")


def _split(codes: str) -> set[str]:
    return {c.strip().upper() for c in re.split(r"[\s,]+", codes) if c.strip()}


def codes_on(line: str) -> set[str] | None:
    """None: no suppression; empty set: every code; else the codes named."""
    found: set[str] | None = None
    if "#" not in line:
        return None
    for m in _IGNORE.finditer(line):
        if not m.group("codes"):
            return set()
        found = (found or set()) | _split(m.group("codes"))
    for m in _NOQA.finditer(line):
        if m.group("codes"):
            found = (found or set()) | _split(m.group("codes"))
        elif not _NOQA_COLON.match(line, m.start()):
            return set()  # the word alone: every code
    return found


def suppressed(lines: list[str], start: int, end: int, code: str) -> bool:
    for lineno in {start, end}:
        if 1 <= lineno <= len(lines):
            codes = codes_on(lines[lineno - 1])
            if codes is not None and (not codes or code in codes):
                return True
    return False
