"""Output formats: text, concise, json, github, sarif."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import __version__
from .passes import ALL_PASSES

if TYPE_CHECKING:
    from .engine import FileResult, FindingRecord

FORMATS = ("text", "concise", "json", "github", "sarif")


def finding_line(f: FindingRecord) -> str:
    return f"{f.path}:{f.line}:{f.col}: {f.code} {f.message}"


def summary(results: Sequence[FileResult], fixed_verb: str = "fixable") -> str:
    findings = [f for r in results for f in r.findings]
    errors = [r for r in results if r.error]
    files = len({f.path for f in findings})
    if not findings:
        text = f"No findings in {len(results)} file{'s' if len(results) != 1 else ''}."
    else:
        fixable = sum(1 for f in findings if f.fix_applies)
        unsafe = sum(1 for f in findings if f.fixable and not f.fix_applies)
        text = (f"Found {len(findings)} finding{'s' if len(findings) != 1 else ''} in {files} "
                f"file{'s' if files != 1 else ''} ({fixable} {fixed_verb} with `sqla-fix apply`")
        if unsafe:
            text += f", {unsafe} more with `--unsafe-fixes`"
        text += ")."
    if errors:
        text += f" {len(errors)} file{'s' if len(errors) != 1 else ''} could not be checked."
    return text


def render(results: Sequence[FileResult], fmt: str) -> str:
    findings = [f for r in results for f in r.findings]
    if fmt in ("text", "concise"):
        lines = [finding_line(f) for f in findings]
        if fmt == "text":
            lines.append(summary(results))
        return "\n".join(lines) + ("\n" if lines else "")
    if fmt == "json":
        data = {
            "version": __version__,
            "findings": [_json_finding(f) for f in findings],
            "errors": [{"path": r.path, "message": r.error} for r in results if r.error],
            "files": len(results),
        }
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt == "github":
        out = []
        for f in findings:
            out.append(
                f"::warning title=sqla-fix {f.code},file={f.path},line={f.line},col={f.col},"
                f"endLine={f.end_line},endColumn={f.end_col}::{_gh_escape(f.code + ' ' + f.message)}"
            )
        for r in results:
            if r.error:
                out.append(f"::error title=sqla-fix,file={r.path}::{_gh_escape(r.error)}")
        return "\n".join(out) + ("\n" if out else "")
    if fmt == "sarif":
        return json.dumps(_sarif(results), indent=2, ensure_ascii=False) + "\n"
    raise ValueError(fmt)


def _json_finding(f: FindingRecord) -> dict:
    return {
        "path": f.path,
        "line": f.line,
        "column": f.col,
        "end_line": f.end_line,
        "end_column": f.end_col,
        "code": f.code,
        "message": f.message,
        "fixable": f.fixable,
        "fix": {"safe": f.fix_safe, "applies": f.fix_applies, "diff": f.fix_diff} if f.fixable else None,
    }


def _gh_escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _sarif(results: Sequence[FileResult]) -> dict:
    rules = [
        {
            "id": p.code,
            "name": p.name,
            "shortDescription": {"text": p.summary},
            "fullDescription": {"text": p.explain()},
            "helpUri": f"https://pypi.org/project/sqla-fix/#{p.code.lower()}",
        }
        for p in ALL_PASSES
    ]
    sarif_results = []
    for r in results:
        for f in r.findings:
            sarif_results.append({
                "ruleId": f.code,
                "level": "warning",
                "message": {"text": f.message},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": f.path.replace("\\", "/")},
                        "region": {"startLine": f.line, "startColumn": f.col,
                                   "endLine": f.end_line, "endColumn": f.end_col},
                    }
                }],
            })
    notifications = [
        {"level": "error", "message": {"text": r.error},
         "locations": [{"physicalLocation": {"artifactLocation": {"uri": r.path}}}]}
        for r in results if r.error
    ]
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "sqla-fix", "version": __version__, "rules": rules}},
            "results": sarif_results,
            "invocations": [{"executionSuccessful": not notifications,
                             "toolExecutionNotifications": notifications}],
        }],
    }
