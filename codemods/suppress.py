"""``# sqla-fix: ignore`` and ``# sqla-fix: ignore[SQF001, SQF002]`` comments.

A comment on the first or the last line of a finding suppresses it (all codes, or the codes
listed). ``# sqla-fix: skip-file`` anywhere in a file's first lines skips the whole file.
"""

from __future__ import annotations

import re

_IGNORE = re.compile(r"#\s*sqla-fix:\s*ignore(?:\[(?P<codes>[^\]]*)\])?", re.IGNORECASE)
SKIP_FILE = re.compile(rb"#\s*sqla-fix:\s*skip-file")


def codes_on(line: str) -> set[str] | None:
    """None: no suppression; empty set: every code; else the codes named."""
    m = _IGNORE.search(line)
    if m is None:
        return None
    if not m.group("codes"):
        return set()
    return {c.strip().upper() for c in m.group("codes").split(",") if c.strip()}


def suppressed(lines: list[str], start: int, end: int, code: str) -> bool:
    for lineno in {start, end}:
        if 1 <= lineno <= len(lines):
            codes = codes_on(lines[lineno - 1])
            if codes is not None and (not codes or code in codes):
                return True
    return False
