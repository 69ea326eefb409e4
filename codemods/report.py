"""Output formats: text, concise, json, github, sarif; statistics and the fixed summary."""

from __future__ import annotations

import json
import re
import textwrap
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import __version__
from .lazy import lazy

if TYPE_CHECKING:
    from . import passes, sarif
    from .engine import FileResult, FindingRecord
else:  # `--version`, `rules` and `explain` import this module, and need neither
    passes = lazy("codemods.passes")
    sarif = lazy("codemods.sarif")

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


def render(results: Sequence[FileResult], fmt: str, with_summary: bool = True, show_fixes: bool = False) -> str:
    """The report in format ``fmt``. ``with_summary``: the text format's last line;
    ``show_fixes``: text and concise list each fix's diff, indented, under its finding."""
    findings = [f for r in results for f in r.findings]
    if fmt in ("text", "concise"):
        lines = []
        for f in findings:
            lines.append(finding_line(f))
            if show_fixes and f.fix_diff:
                lines.append(textwrap.indent(f.fix_diff.rstrip("\n"), "    ", lambda _: True))
        if fmt == "text" and with_summary:
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
            props = {"title": f"sqla-fix {f.code}", "file": f.path, "line": f.line, "col": f.col,
                     "endLine": f.end_line, "endColumn": f.end_col}
            out.append(_gh_command("warning", props, f"{f.code} {f.message}"))
        for r, line, col, message in errors(results):
            props = {"title": "sqla-fix", "file": r.path}
            if line is not None:
                props.update(line=line, col=col or 1)
            out.append(_gh_command("error", props, message))
        return "\n".join(out) + ("\n" if out else "")
    if fmt == "sarif":
        return json.dumps(sarif.document(results, errors(results)), indent=2, ensure_ascii=False) + "\n"
    raise ValueError(fmt)


_POSITION = re.compile(r"(\d+):(\d+): (.*)\Z", re.DOTALL)


def errors(results: Sequence[FileResult]) -> list[tuple[FileResult, int | None, int | None, str]]:
    """The files that could not be checked, each with its error's line and column (None when
    the error has no position) and message. ``FileResult.error`` is `path:line:col: message`
    or `path: message`."""
    out: list[tuple[FileResult, int | None, int | None, str]] = []
    for r in results:
        if not r.error:
            continue
        rest = r.error[len(r.path) + 1:] if r.error.startswith(r.path + ":") else r.error
        m = _POSITION.match(rest)
        if m:
            out.append((r, int(m.group(1)), int(m.group(2)), m.group(3)))
        else:
            out.append((r, None, None, rest.strip()))
    return out


def statistics(results: Sequence[FileResult], fmt: str) -> str:
    """Findings counted per rule, most frequent first (ruff's --statistics): `count  code
    [*] name`, where [*] marks a rule whose findings `apply` fixes. JSON with --format json."""
    counts = Counter(f.code for r in results for f in r.findings)
    fixable = {f.code for r in results for f in r.findings if f.fix_applies}
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    names = {code: passes.BY_CODE[code].name if code in passes.BY_CODE else "" for code in counts}
    if fmt == "json":
        data = [{"code": code, "name": names[code], "count": n, "fixable": code in fixable} for code, n in rows]
        return json.dumps(data, indent=2) + "\n"
    width = max((len(str(n)) for _, n in rows), default=1)
    return "".join(f"{n:>{width}}\t{code}\t{'[*]' if code in fixable else '[ ]'} {names[code]}\n"
                   for code, n in rows)


def fixed_summary(results: Sequence[FileResult]) -> str:
    """What `apply` fixed, per file and rule (ruff's --show-fixes)."""
    per_file = [(r.path, Counter(f.code for f in r.findings if f.fix_applies)) for r in results]
    per_file = [(path, counts) for path, counts in per_file if counts]
    total = sum(sum(counts.values()) for _, counts in per_file)
    lines = [f"Fixed {total} finding{'s' if total != 1 else ''}:"]
    for path, counts in per_file:
        lines.append(f"- {path}:")
        for code, n in sorted(counts.items()):
            name = passes.BY_CODE[code].name if code in passes.BY_CODE else ""
            lines.append(f"    {n} × {code} ({name})")
    return "\n".join(lines) + "\n"


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


def _gh_data(text: str) -> str:
    """Escaped as the Actions toolkit escapes a command's message."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(value: object) -> str:
    """Escaped as the Actions toolkit escapes a command's property values."""
    return _gh_data(str(value)).replace(":", "%3A").replace(",", "%2C")


def _gh_command(kind: str, props: dict, message: str) -> str:
    return f"::{kind} " + ",".join(f"{k}={_gh_property(v)}" for k, v in props.items()) + f"::{_gh_data(message)}"
