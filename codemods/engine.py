"""The engine: discover, prefilter, index, parse once, run the passes to a fixed point.

Per file: read bytes; skip files whose bytes contain none of the selected passes' triggers (a
byte scan, no parse); decode (BOM, coding cookie); parse with libcst; run the selected passes
whose ast facts show something they could match (``Pass.wants``); apply the fixes that do not
overlap; re-parse the result and run every selected pass again until no fix applies (bounded).
Findings are reported against the original source. Files run in worker processes.
"""

from __future__ import annotations

import ast
import difflib
import os
import sys
import traceback
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from . import collect, guard, trees
from .cache import Seen, content_digest, stamp
from .config import Config
from .lazy import lazy
from .passes import BY_CODE, Pass, match
from .passes.base import FileContext, Finding, Fix
from .prefilter import selected_passes, wants_parse
from .records import FileResult, FindingRecord
from .source import SourceError, SourceFile, from_bytes, read_source
from .suppress import SKIP_FILE, suppressed

if TYPE_CHECKING:
    import libcst as cst

    from . import index as index_mod
    from . import pool
    from . import project as project_mod
else:
    cst = lazy("libcst")  # imported when a file is parsed: a run that parses nothing never loads it
    # Loaded when a file is indexed or files are run in workers: one file that needs neither
    # (an editor's file without session code) never loads them.
    index_mod = lazy("codemods.index", snapshot=False)
    pool = lazy("codemods.pool", snapshot=False)
    project_mod = lazy("codemods.project", snapshot=False)

MAX_ROUNDS = 8


# --------------------------------------------------------------------------- one file


def _unified(a: str, b: str, path: str) -> str:
    return "".join(
        difflib.unified_diff(
            a.splitlines(keepends=True), b.splitlines(keepends=True), f"a/{path}", f"b/{path}"
        )
    )


def _overlaps(ranges_a, ranges_b) -> bool:
    for a0, a1 in ranges_a:
        for b0, b1 in ranges_b:
            if a0 < b1 and b0 < a1 or a0 == b0:
                return True
    return False


def _fix_ranges(ctx: FileContext, fix: Fix):
    out = []
    for edit in fix.edits:
        r = ctx.position(edit.target)
        out.append(((r.start.line, r.start.column), (r.end.line, r.end.column)))
    return out


def _run_passes(ctx: FileContext, passes: Sequence[Pass], lines: list[str]) -> list[Finding]:
    findings: list[Finding] = []
    try:
        for p in passes:
            for finding in p.run(ctx):
                where = ctx.position(finding.node)
                finding.range = where
                if suppressed(lines, where.start.line, where.end.line, finding.code):
                    continue
                findings.append(finding)
    finally:
        match.forget()  # the walks the passes' searches kept are of this file's trees
    findings = one_per_subject(ctx, findings)
    findings.sort(key=_reading_order)
    return findings


def _reading_order(f: Finding) -> tuple[int, int, str]:
    assert f.range is not None  # placed by _run_passes
    return (f.range.start.line, f.range.start.column, f.code)


def one_per_subject(ctx: FileContext, findings: list[Finding]) -> list[Finding]:
    """One bug, one finding: when two rules describe the same object in the same function,
    or the same session call (``Finding.at``), the more specific rule's finding stays
    (``Pass.supersedes``), unless it has no fix and the other has a safe one: then the
    fixable one stays (an unsafe fix is no reason to hide the more specific diagnosis). Each pair is declared where it is decided (not transitive). No rule
    has to know whether another is enabled."""
    about = [f for f in findings if f.subject is not None or f.at is not None]
    if len(about) < 2:
        return findings
    def function_of(f: Finding) -> int:
        return id(next((a for a in ctx.ancestors(f.node) if isinstance(a, cst.FunctionDef)), None))

    groups: dict = {}
    for f in about:
        if f.subject is not None:
            groups.setdefault(("subject", function_of(f), f.subject), []).append(f)
        if f.at is not None:
            groups.setdefault(("at", id(f.at)), []).append(f)
    dropped: set[int] = set()
    for group in groups.values():
        for a in group:
            for b in group:
                if b.code in BY_CODE[a.code].supersedes:
                    dropped.add(id(b) if a.fix is not None or not _safely_fixed(b) else id(a))
    return [f for f in findings if id(f) not in dropped]


def _safely_fixed(f: Finding) -> bool:
    return f.fix is not None and f.fix.safe


def _applicable(ctx: FileContext, findings: Iterable[Finding], config: Config) -> list[Fix]:
    chosen: list[Fix] = []
    taken: list = []
    for f in findings:
        if f.fix is None or (not f.fix.safe and not config.unsafe_fixes):
            continue
        ranges = _fix_ranges(ctx, f.fix)
        if _overlaps(ranges, taken):
            continue  # next round
        chosen.append(f.fix)
        taken.extend(ranges)
    return chosen


def _context(path: str, module: cst.Module, index, config: Config, module_name: str, round_no: int) -> FileContext:
    wrapper = cst.MetadataWrapper(module, unsafe_skip_copy=True)
    return FileContext(path=path, module=wrapper.module, wrapper=wrapper, index=index,
                       config=config, module_name=module_name, round=round_no)


def _parse_error(path: str, exc: Exception, text: str) -> str:
    """One line naming the file and the position Python itself gives for the error."""
    try:
        compile(text, path, "exec", dont_inherit=True, flags=0x400)  # ast.PyCF_ONLY_AST
    except SyntaxError as py_exc:
        return f"{path}:{py_exc.lineno or 1}:{py_exc.offset or 1}: syntax error: {py_exc.msg}"
    except (ValueError, RecursionError) as py_exc:
        return f"{path}:1:1: syntax error: {py_exc}"
    # Python accepts it but libcst does not (rare: newer syntax than this libcst knows).
    if isinstance(exc, cst.ParserSyntaxError):
        first = str(exc.message).splitlines()[0] if exc.message else "invalid syntax"
        return f"{path}:{exc.raw_line}:{exc.raw_column + 1}: syntax error: {first} (libcst cannot parse this)"
    return f"{path}:1:1: syntax error: {exc}"


def not_analysed(path: str, reason: str, line: int | None = None) -> str:
    """The one line reported for a file that could not be analysed."""
    where = f"{path}:{line}:1" if line is not None else path
    return f"{where}: not analysed: {reason}"


TOO_DEEP = f"too deeply nested (more than {guard.MAX_DEPTH} levels)"


def process_source(
    path: str,
    source: SourceFile,
    index,
    config: Config,
    passes: Sequence[Pass],
    want_fix_diffs: bool = False,
    explicit: bool = False,
) -> FileResult:
    """Analyse one file. ``explicit``: the file was named on the command line, so it is
    parsed (and a syntax error reported) even when the prefilter sees nothing in it."""
    with guard.quiet():
        try:
            return _process(path, source, index, config, passes, want_fix_diffs, explicit)
        except guard.TooDeep as exc:
            return FileResult(path=path, error=not_analysed(path, TOO_DEEP, exc.line))
        except (RecursionError, MemoryError):
            return FileResult(path=path, error=not_analysed(path, TOO_DEEP))
        except Exception as exc:  # a bug of sqla-fix outside the passes' own guard: this file only
            if os.environ.get("SQLA_FIX_DEBUG"):
                raise
            detail = str(exc) if isinstance(exc, index_mod.ExtractionBug) \
                else f"internal error: {exc.__class__.__name__}: {exc}"
            return FileResult(path=path, error=not_analysed(path, guard.one_line(detail)))


def _process(path: str, source: SourceFile, index, config: Config, passes: Sequence[Pass],
             want_fix_diffs: bool, explicit: bool) -> FileResult:
    result = FileResult(path=path, source=source)
    if config.per_file_ignores:
        passes = [p for p in passes if not config.ignored_in(path, p.code)]
    if SKIP_FILE.search(source.raw[:4096]):
        result.verified = True
        return result
    wanted = wants_parse(source.raw, passes, index)
    if not (explicit or wanted):
        return result
    guard.check_depth(source.raw)
    facts = _facts(path, source, index, config) if wanted else None
    # The passes whose ast facts show something they could match: only they run on the file
    # as it is (a fix makes new code, which every pass then reads):
    first = [p for p in passes if index is None or p.wants(index, facts)] if wanted else []
    run = bool(first)
    if not run and not explicit:
        return result
    if not run and _ast_parses(source.text):
        # Nothing to run. A file named explicitly is checked for syntax errors, by `ast` first
        # (libcst is not even imported); only code `ast` rejects is read by libcst, which
        # knows newer syntax than this Python may.
        result.verified = True
        return result
    from .edits import apply_fixes  # libcst, loaded with the first file that is parsed

    try:
        module = trees.parse(path, source.text)
    except (RecursionError, MemoryError):
        raise
    except Exception as exc:  # libcst raises ParserSyntaxError, sometimes others
        result.error = _parse_error(path, exc, source.text)
        return result
    result.verified = True
    if not run:
        return result  # named explicitly: parsed only to report a syntax error
    try:
        module_name = facts.module if facts is not None else ""
        lines = source.text.splitlines()
        current, code = module, source.text  # code: the text of current (codegen only after a fix)
        for round_no in range(MAX_ROUNDS):
            fresh = round_no == 0 or _refresh_facts(path, code, index, config)
            ctx = _context(path, current, index, config, module_name, 0 if fresh else round_no)
            findings = _run_passes(ctx, first, lines) if round_no == 0 else \
                _run_passes(ctx, passes, code.splitlines())
            if round_no == 0 and any(f.fix is not None for f in findings) and not trees.rebuildable(current):
                for f in findings:
                    f.fix = None
                result.error = (f"{path}: fixes not applied: libcst cannot rebuild a construct of this file "
                                f"(it parses spellings its own checks reject); the findings stand")
            if round_no == 0:
                for f in findings:
                    result.findings.append(_record(path, f, config, ctx, source.text, want_fix_diffs))
            fixes = _applicable(ctx, findings, config)
            if not fixes:
                break
            code = apply_fixes(ctx.module, fixes).code
            try:
                current = trees.parse_text(code)
            except Exception as exc:
                raise InternalError(f"a fix produced code that does not parse ({exc.__class__.__name__})") from exc
        if code != source.text:
            if not _compiles_like(source.text, code):
                raise InternalError("a fix produced code that Python cannot compile")
            result.new_text = code
    except (RecursionError, MemoryError):
        raise
    except Exception as exc:  # a bug in a pass must never abort the run or write the file
        where = _pass_frame(exc)
        detail = f"{exc.__class__.__name__}: {exc}" if not isinstance(exc, InternalError) else str(exc)
        detail = guard.one_line(detail)
        result.error = f"{path}: internal error{where}: {detail}; file left unchanged"
        result.new_text = None
        if os.environ.get("SQLA_FIX_DEBUG"):
            traceback.print_exc()
    return result


class InternalError(Exception):
    pass


def _pass_frame(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(tb):
        norm = frame.filename.replace(os.sep, "/")
        if "/codemods/passes/" in norm:
            return f" in {os.path.basename(frame.filename)}:{frame.lineno}"
    return ""


def _facts(path: str, source: SourceFile, index, config: Config):
    """The index's facts for this file. A file the index did not take (nothing in it looked
    session-related to its byte scan) is extracted now and made findable by path, in this
    worker only."""
    if index is None:
        return None
    facts = index.module_for_path(path)
    if facts is None:
        try:
            facts = index_mod.extract(path, source.text, index_mod.module_names(path, config.root, config.src))
            index.add_transient(facts)
        except index_mod.ExtractionBug:
            raise  # reported for the file by process_source
        except index_mod.UNPARSABLE:
            facts = None
    return facts


def _refresh_facts(path: str, code: str, index, config: Config) -> bool:
    """After a fix round the code changed: the passes' ast facts of this file are extracted
    again (much cheaper than walking it with libcst). False when that fails: the passes then
    fall back to libcst walks (``ctx.round`` > 0)."""
    if index is None:
        return False
    try:
        index.add_transient(index_mod.extract(path, code, index_mod.module_names(path, config.root, config.src)))
        return True
    except index_mod.UNPARSABLE:
        return False


def parses_like(old: str, new: str) -> bool:
    """``new`` parses with libcst, and with ``ast`` too when ``old`` did."""
    try:
        cst.parse_module(new)
    except Exception:
        return False
    return _compiles_like(old, new)


def _compiles_like(old: str, new: str) -> bool:
    """``new`` compiles with this Python wherever ``old`` did (newer syntax than this Python
    knows is judged by libcst alone)."""
    return _ast_parses(new) or not _ast_parses(old)


def _ast_parses(text: str) -> bool:
    try:
        ast.parse(text)
        return True
    except (SyntaxError, ValueError):
        return False


def _record(path: str, f: Finding, config: Config, ctx: FileContext, text: str, want_diff: bool) -> FindingRecord:
    r = f.range
    assert r is not None  # placed by _run_passes
    rec = FindingRecord(
        path=path, line=r.start.line, col=r.start.column + 1, end_line=r.end.line,
        end_col=r.end.column + 1, code=f.code, message=f.message,
    )
    if f.fix is not None:
        rec.fixable = True
        rec.fix_safe = f.fix.safe
        rec.fix_applies = f.fix.safe or config.unsafe_fixes
        if want_diff:
            from .edits import apply_fixes

            rec.fixed_text = apply_fixes(ctx.module, [f.fix]).code
            rec.fix_diff = _unified(text, rec.fixed_text, path)
    return rec


# --------------------------------------------------------------------------- many files

_WORKER: dict = {}


def _init_worker(index, config: Config, want_fix_diffs: bool, explicit: frozenset[str] = frozenset()) -> None:
    _WORKER["index"] = index
    _WORKER["config"] = config
    _WORKER["passes"] = selected_passes(config)
    _WORKER["diffs"] = want_fix_diffs
    _WORKER["explicit"] = explicit


def _process_path(path: str) -> FileResult:
    before = stamp(path)
    try:
        source = read_source(path)
    except SourceError as exc:
        kind = "syntax error: " if exc.message.startswith("cannot decode") else ""
        return FileResult(path=path, error=f"{path}:{exc.line}:{exc.col}: {kind}{exc.message}")
    config: Config = _WORKER["config"]
    try:
        with collect.one_file(), guard.time_limit(config.file_timeout):
            guard.run_test_hooks(path, in_worker=False)
            result = process_source(path, source, _WORKER["index"], config, _WORKER["passes"],
                                    _WORKER["diffs"], path in _WORKER["explicit"])
    except guard.FileTimeout:
        return FileResult(path=path, error=_timed_out(path, config))
    if before is not None:
        result.seen = Seen(before, content_digest(source.raw))
    return result


def _timed_out(path: str, config: Config) -> str:
    return not_analysed(path, f"took longer than {config.file_timeout:g} s (file-timeout)")


def _failed_file(path: str, reason: str) -> FileResult:
    """The result of a file whose worker process died or overran its time limit."""
    return FileResult(path=path, error=not_analysed(path, reason))


def build_index(files: Sequence[str], config: Config, jobs: int, overrides: dict[str, bytes] | None = None,
                use_cache: bool = False) -> index_mod.ProjectIndex:
    """The project index of ``files`` (see :mod:`.project`); with ``use_cache``, unchanged
    files are taken from ``.sqla-fix-cache/`` as the last run saw them."""
    return project_mod.load(files, config, jobs, overrides, use_cache).index


def run_files(files: Sequence[str], index, config: Config, jobs: int, want_fix_diffs: bool = False,
              progress=None, explicit: Iterable[str] = ()) -> list[FileResult]:
    """Analyse ``files``; those in ``explicit`` (named on the command line) are always
    parsed."""
    return pool.map_items(_process_path, list(files), jobs, _failed_file, config.file_timeout,
                initializer=_init_worker, initargs=(index, config, want_fix_diffs, frozenset(explicit)),
                progress=progress)


def run_source(path: str, raw: bytes, index, config: Config, want_fix_diffs: bool = False) -> FileResult:
    """One in-memory source (stdin mode, tests)."""
    try:
        source = from_bytes(path, raw)
    except SourceError as exc:
        return FileResult(path=path, error=f"{path}:{exc.line}:{exc.col}: syntax error: {exc.message}")
    try:
        with guard.time_limit(config.file_timeout):
            return process_source(path, source, index, config, selected_passes(config), want_fix_diffs,
                                  explicit=True)
    except guard.FileTimeout:
        return FileResult(path=path, error=_timed_out(path, config))


def index_for_sources(sources: dict[str, str | bytes], config: Config) -> index_mod.ProjectIndex:
    """An index of in-memory sources ({path: source}); paths are relative to config.root."""
    facts = []
    for path, text in sources.items():
        full = os.path.join(config.root, path)
        try:
            facts.append(index_mod.extract(full, text, index_mod.module_names(full, config.root, config.src)))
        except index_mod.UNPARSABLE:
            pass
    return project_mod.new_index(facts, config)


def fix_text(text: str, config: Config | None = None, project: dict[str, str] | None = None,
             path: str = "example.py") -> FileResult:
    """Run the passes on a string, as the file ``path`` of a project made of ``project``."""
    config = config or Config()
    sources: dict[str, str | bytes] = dict(project or {})
    sources[path] = text
    index = index_for_sources(sources, config)
    return run_source(os.path.join(config.root, path), text.encode("utf-8"), index, config)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use the sqla-fix command")
