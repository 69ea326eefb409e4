"""SARIF 2.1.0 output (GitHub code scanning and other CI dashboards).

Paths become percent-encoded URIs relative to ``%SRCROOT%`` (the current directory), columns
count Unicode code points, each rule's help points at its section of the README, and a
finding's fix becomes a SARIF ``fix``: its unified diff, hunk by hunk, as replacements of
whole lines (a line's break is part of the line, as SARIF counts them).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from . import HOMEPAGE, __version__
from .passes import ALL_PASSES
from .passes.base import Pass

if TYPE_CHECKING:
    from .engine import FileResult, FindingRecord

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SRCROOT = "%SRCROOT%"
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")


def rule_anchor(p: type[Pass]) -> str:
    """The README heading's anchor for a rule, as GitHub makes it: `SQF002 merge-foreign-instance`
    -> `sqf002-merge-foreign-instance`."""
    return f"{p.code} {p.name}".lower().replace(" ", "-")


def help_uri(p: type[Pass]) -> str:
    return f"{HOMEPAGE}/blob/main/README.md#{rule_anchor(p)}"


def artifact_location(path: str) -> dict:
    """A percent-encoded URI: relative to %SRCROOT% when the file is under the current
    directory, else an absolute file: URI."""
    absolute = os.path.abspath(path)
    cwd = os.getcwd()
    if absolute.startswith(cwd.rstrip(os.sep) + os.sep):
        rel = os.path.relpath(absolute, cwd).replace(os.sep, "/")
        return {"uri": quote(rel, safe="/"), "uriBaseId": SRCROOT}
    return {"uri": Path(absolute).as_uri()}


def replacements(diff: str) -> list[dict]:
    """The hunks of a unified diff (as ``FindingRecord.fix_diff`` holds) as SARIF
    replacements: the hunk's old lines, context included, replaced by its new lines."""
    out = []
    hunk: tuple[int, int] | None = None
    old: list[str] = []
    new: list[str] = []

    def close() -> None:
        if hunk is None:
            return
        start, count = hunk
        if count == 0:  # a pure insertion after line `start`
            region = {"startLine": start + 1, "startColumn": 1, "endLine": start + 1, "endColumn": 1}
        else:
            region = {"startLine": start, "startColumn": 1, "endLine": start + count - 1,
                      "endColumn": len(old[-1]) + 1}
        out.append({"deletedRegion": region, "insertedContent": {"text": "".join(new)}})

    for line in diff.split("\n")[2:]:  # after the ---/+++ header
        m = _HUNK.match(line)
        if m:
            close()
            hunk = int(m.group(1)), int(m.group(2) if m.group(2) is not None else 1)
            old, new = [], []
        elif line[:1] in (" ", "-", "+"):
            text = line[1:] + "\n"
            if line[0] != "+":
                old.append(text)
            if line[0] != "-":
                new.append(text)
    close()
    return out


def _rule(p: type[Pass]) -> dict:
    page = p.explain()
    return {
        "id": p.code,
        "name": p.name,
        "shortDescription": {"text": p.summary},
        "fullDescription": {"text": p.summary},
        "help": {"text": page, "markdown": page},
        "helpUri": help_uri(p),
        "defaultConfiguration": {"level": "warning"},
        "properties": {"fix": p.fix_safety},
    }


def _result(f: FindingRecord) -> dict:
    location = artifact_location(f.path)
    result: dict = {
        "ruleId": f.code,
        "level": "warning",
        "message": {"text": f.message},
        "locations": [{
            "physicalLocation": {
                "artifactLocation": location,
                "region": {"startLine": f.line, "startColumn": f.col, "endLine": f.end_line, "endColumn": f.end_col},
            }
        }],
    }
    if f.fix_diff:
        safety = "safe" if f.fix_safe else "unsafe (applied with --unsafe-fixes)"
        result["fixes"] = [{
            "description": {"text": f"sqla-fix's fix for {f.code}, {safety}"},
            "artifactChanges": [{"artifactLocation": location, "replacements": replacements(f.fix_diff)}],
        }]
    return result


def _notification(r: FileResult, line: int | None, col: int | None, message: str) -> dict:
    location: dict = {"artifactLocation": artifact_location(r.path)}
    if line is not None:
        location["region"] = {"startLine": line, "startColumn": col or 1}
    return {"level": "error", "message": {"text": message}, "locations": [{"physicalLocation": location}]}


def document(results: Sequence[FileResult], errors: Sequence[tuple[FileResult, int | None, int | None, str]]) -> dict:
    """The SARIF log; ``errors`` are the files that could not be checked, with the position
    and message of each error."""
    notifications = [_notification(*error) for error in errors]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "sqla-fix", "version": __version__, "informationUri": HOMEPAGE,
                                "rules": [_rule(p) for p in ALL_PASSES]}},
            "originalUriBaseIds": {SRCROOT: {"uri": Path(os.getcwd()).as_uri() + "/"}},
            "columnKind": "unicodeCodePoints",
            "results": [_result(f) for r in results for f in r.findings],
            "invocations": [{"executionSuccessful": not notifications,
                             "toolExecutionNotifications": notifications}],
        }],
    }
