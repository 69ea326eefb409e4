"""The ``sqla-fix`` command. Thin: options in, engine run, report out."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from . import __version__, report
from .config import Config, ConfigError, load
from .discovery import discover
from .lazy import lazy
from .passes import ALL_PASSES, BY_CODE
from .review import Quit, Reviewer, apply_hunks, colorize, hunks, unified_diff
from .source import SourceFile
from .writer import ChangedOnDisk, WriteError, dirty_files, write_atomic

if TYPE_CHECKING:
    from . import engine
else:
    engine = lazy("codemods.engine")  # `--version`, `rules` and `explain` never load it

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _color(stream) -> bool:
    return "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


def _codes(values: Sequence[str]) -> tuple[str, ...]:
    out = []
    for value in values:
        for code in value.split(","):
            code = code.strip().upper()
            if not code:
                continue
            if not any(known.startswith(code) for known in BY_CODE) and code != "ALL":
                raise click.BadParameter(f"unknown rule code {code!r} (see `sqla-fix rules`)")
            out.append("" if code == "ALL" else code)
    return tuple(out)


@dataclass
class Options:
    paths: tuple[str, ...]
    select: tuple[str, ...]
    ignore: tuple[str, ...]
    exclude: tuple[str, ...]
    fmt: str
    jobs: int
    stdin_filename: str | None
    unsafe_fixes: bool
    progress: bool
    cache: bool = True


def common_options(fn):
    decorators = [
        click.argument("paths", nargs=-1, type=click.Path()),
        click.option("--select", multiple=True, metavar="CODES", help="Only these rule codes (comma-separated, prefixes allowed)."),
        click.option("--ignore", multiple=True, metavar="CODES", help="Skip these rule codes."),
        click.option("--exclude", multiple=True, metavar="GLOB", help="Skip files matching GLOB (repeatable), on top of the configured excludes."),
        click.option("--format", "fmt", type=click.Choice(report.FORMATS), default="text", show_default=True, help="Output format for findings."),
        click.option("-j", "--jobs", type=click.IntRange(min=1), default=None, help="Worker processes [default: all cores]."),
        click.option("--stdin-filename", metavar="PATH", help="With `-`: the file name the source on stdin stands for."),
        click.option("--unsafe-fixes", is_flag=True, default=None, help="Also apply fixes marked unsafe."),
        click.option("--no-progress", is_flag=True, help="Never show a progress bar."),
        click.option("--no-cache", is_flag=True, help="Do not read or write .sqla-fix-cache/."),
    ]
    for d in reversed(decorators):
        fn = d(fn)
    return fn


def _options(paths, select, ignore, exclude, fmt, jobs, stdin_filename, unsafe_fixes, no_progress, no_cache) -> Options:
    paths = tuple(paths) or (".",)
    if "-" in paths and len(paths) > 1:
        raise click.UsageError("`-` (read stdin) cannot be combined with other paths")
    if stdin_filename and "-" not in paths:
        raise click.UsageError("--stdin-filename goes with `-` (source on stdin)")
    return Options(paths, _codes(select), _codes(ignore), tuple(exclude), fmt,
                   jobs or engine.default_jobs(), stdin_filename, bool(unsafe_fixes), not no_progress,
                   not no_cache)


def _config(opts: Options, unsafe: bool | None) -> Config:
    start = opts.stdin_filename if opts.paths == ("-",) and opts.stdin_filename else opts.paths[0]
    if start == "-":
        start = "."
    try:
        config = load(start if os.path.exists(start) else os.path.dirname(os.path.abspath(start)))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    # The command line wins: its --select replaces the configured select *and* ignore (as in
    # ruff, a selection made on the command line is not undone by the configuration).
    ignore = config.ignore
    if opts.select:
        ignore = opts.ignore
    elif opts.ignore:
        ignore = config.ignore + opts.ignore
    return config.with_overrides(
        select=opts.select or None,
        ignore=ignore,
        exclude=config.exclude + opts.exclude,
        unsafe_fixes=True if unsafe else None,
    )


def _progress(total: int, opts: Options, label: str):
    if not opts.progress or total < 200 or not sys.stderr.isatty():
        return None
    bar = click.progressbar(length=total, label=label, file=sys.stderr, show_eta=True)
    bar.__enter__()
    return bar


def _run(opts: Options, config: Config, want_fix_diffs: bool) -> tuple[list[engine.FileResult], bytes | None]:
    """Run the engine; returns results and, in stdin mode, the stdin bytes."""
    if opts.paths == ("-",):
        raw = sys.stdin.buffer.read()
        name = opts.stdin_filename or "-"
        project = discover([config.root], config.root, config.exclude) if opts.stdin_filename else []
        idx = engine.build_index(project, config, opts.jobs, overrides={name: raw}, use_cache=opts.cache)
        return [engine.run_source(name, raw, idx, config, want_fix_diffs)], raw
    try:
        files = discover(opts.paths, config.root, config.exclude)
    except FileNotFoundError as exc:
        raise click.UsageError(f"no such file or directory: {exc}") from None
    project = sorted(set(discover([config.root], config.root, config.exclude)) | set(files))
    idx = engine.build_index(project, config, opts.jobs, use_cache=opts.cache)
    _warn_duplicates(idx)
    bar = _progress(len(files), opts, "sqla-fix")
    try:
        results = engine.run_files(files, idx, config, opts.jobs, want_fix_diffs,
                                   progress=bar.update if bar else None)
    finally:
        if bar:
            bar.__exit__(None, None, None)
    return results, None


def _warn_duplicates(idx) -> None:
    """Several projects in one tree with the same package names: imports between modules
    cannot be told apart. Say so rather than resolve them silently wrong."""
    ambiguous = idx.ambiguous_imports()
    if ambiguous:
        module, paths = ambiguous[0]
        more = f" (and {len(ambiguous) - 1} more)" if len(ambiguous) > 1 else ""
        click.echo(f"sqla-fix: warning: `{module}` is imported but matches several modules "
                   f"({', '.join(paths[:3])}){more}; checks across those modules are skipped. "
                   "Run sqla-fix on each project separately.", err=True)


def _emit_errors(results: Sequence[engine.FileResult], fmt: str) -> None:
    if fmt in ("text", "concise"):
        for r in results:
            if r.error:
                click.echo(r.error, err=True)


def _exit_code(results: Sequence[engine.FileResult], findings_count: int) -> int:
    if any(r.error and ": internal error" in r.error for r in results):
        return EXIT_ERROR
    if findings_count or any(r.error for r in results):
        return EXIT_FINDINGS
    return EXIT_CLEAN


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sqla-fix")
def cli() -> None:
    """Find and fix SQLAlchemy session-lifecycle bugs.

    \b
    sqla-fix check [PATH]...            report findings
    sqla-fix apply --dry-run [PATH]...  show the fixes as a unified diff
    sqla-fix apply [PATH]...            review the fixes hunk by hunk, then write
    sqla-fix apply --yes [PATH]...      write every fix
    sqla-fix explain CODE               what a rule finds, why, and its fix
    """


@cli.command()
@common_options
def check(**kw) -> None:
    """Report session-lifecycle bugs as `path:line:col: CODE message`.

    Exit status: 0 clean, 1 findings or unreadable files, 2 usage or internal error.
    """
    unsafe = kw.get("unsafe_fixes")
    opts = _options(**kw)
    config = _config(opts, unsafe)
    results, _ = _run(opts, config, want_fix_diffs=opts.fmt in ("json",))
    click.echo(report.render(results, opts.fmt), nl=False)
    _emit_errors(results, opts.fmt)
    sys.exit(_exit_code(results, sum(len(r.findings) for r in results)))


@cli.command()
@common_options
@click.option("--dry-run", "--diff", "dry_run", is_flag=True, help="Print the unified diff of every fix; write nothing.")
@click.option("-y", "--yes", is_flag=True, help="Write every fix without asking.")
@click.option("--allow-dirty", is_flag=True, help="Write files that have uncommitted changes in git.")
def apply(dry_run: bool, yes: bool, allow_dirty: bool, **kw) -> None:
    """Fix session-lifecycle bugs.

    Shows each change hunk by hunk and asks [y,n,a,d,q,?] before writing, unless --yes
    (write all) or --dry-run (write nothing). With `-` the source is read from stdin and
    the fixed source is written to stdout.
    """
    unsafe = kw.get("unsafe_fixes")
    opts = _options(**kw)
    stdin_mode = opts.paths == ("-",)
    interactive = not (dry_run or yes or stdin_mode)
    if interactive and not sys.stdin.isatty():
        raise click.UsageError(
            "stdin is not a terminal, so fixes cannot be reviewed: use --yes to write every fix "
            "or --dry-run to see them", ctx=click.get_current_context())
    config = _config(opts, unsafe)
    results, raw = _run(opts, config, want_fix_diffs=opts.fmt == "json")

    if stdin_mode:
        result = results[0]
        out = raw if raw is not None else b""
        if result.changed and result.source is not None:
            out = result.source.encode(result.new_text)  # type: ignore[arg-type]
        sys.stdout.buffer.write(out)
        sys.stdout.flush()
        remaining = [f for f in result.findings if not f.fix_applies]
        for f in remaining:
            click.echo(report.finding_line(f), err=True)
        _emit_errors(results, "text")
        sys.exit(_exit_code(results, len(remaining)))

    changed = [r for r in results if r.changed]
    if dry_run:
        if opts.fmt == "text":
            color = _color(sys.stdout)
            for r in changed:
                click.echo(colorize(unified_diff(r.source.text, r.new_text, r.path), color), nl=False)
            for r in results:
                for f in r.findings:
                    if not f.fix_applies:
                        click.echo(report.finding_line(f), err=True)
            click.echo(report.summary(results, fixed_verb="fixable"), err=True)
        else:
            click.echo(report.render(results, opts.fmt), nl=False)
        _emit_errors(results, opts.fmt)
        sys.exit(_exit_code(results, sum(len(r.findings) for r in results)))

    if changed and not allow_dirty:
        dirty = dirty_files([r.path for r in changed])
        if dirty:
            click.echo("sqla-fix: refusing to write files with uncommitted changes "
                       "(commit or stash them, or pass --allow-dirty):", err=True)
            for path in dirty:
                click.echo(f"  {path}", err=True)
            sys.exit(EXIT_ERROR)

    written, skipped_hunks, total_hunks = _write(changed, interactive)
    remaining = sum(1 for r in results for f in r.findings if not f.fix_applies)
    for r in results:
        for f in r.findings:
            if not f.fix_applies:
                click.echo(report.finding_line(f))
    _emit_errors(results, "text")
    applied = total_hunks - skipped_hunks
    click.echo(f"Applied {applied} of {total_hunks} hunk{'s' if total_hunks != 1 else ''}; "
               f"wrote {written} file{'s' if written != 1 else ''}."
               + (f" {remaining} finding{'s' if remaining != 1 else ''} left to fix by hand." if remaining else ""),
               err=True)
    sys.exit(_exit_code(results, remaining + skipped_hunks))


def _write(changed: Sequence[engine.FileResult], interactive: bool) -> tuple[int, int, int]:
    """Review (if asked) and write. Returns (files written, hunks skipped, hunks in all)."""
    color = _color(sys.stdout)
    reviewer = Reviewer(ask=_ask, echo=lambda s: click.echo(s, nl=False), color=color) if interactive else None
    written = skipped = total = 0
    quitting = False
    for r in changed:
        src: SourceFile = r.source  # type: ignore[assignment]
        count = len(hunks(src.text, r.new_text))  # type: ignore[arg-type]
        total += count
        if quitting:
            skipped += count
            continue
        text = r.new_text
        if reviewer is not None:
            try:
                decisions = reviewer.review(r.path, src.text, r.new_text)  # type: ignore[arg-type]
            except Quit as q:
                decisions = q.decisions  # type: ignore[attr-defined]
                quitting = True
            skipped += decisions.count(False)
            if not any(decisions):
                continue
            if not all(decisions):
                text = apply_hunks(src.text, r.new_text, decisions)  # type: ignore[arg-type]
                if not engine.parses_like(src.text, text):
                    click.echo(f"{r.path}: the accepted hunks do not form valid Python on their own; "
                               "file left unchanged", err=True)
                    skipped += decisions.count(True)
                    continue
        try:
            write_atomic(src, text)  # type: ignore[arg-type]
            written += 1
        except ChangedOnDisk as exc:
            click.echo(f"{r.path}: {exc}", err=True)
            skipped += count
        except (WriteError, OSError) as exc:
            click.echo(f"{r.path}: cannot write: {exc}", err=True)
            skipped += count
    return written, skipped, total


def _ask(prompt: str) -> str:
    click.echo(prompt, nl=False)
    sys.stdout.flush()
    return sys.stdin.readline()


@cli.command("index")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None, help="Worker processes [default: all cores].")
def index_command(paths: tuple[str, ...], fmt: str, jobs: int | None) -> None:
    """Show what the project index knows: session factories and their settings, session
    scopes, session decorators, FastAPI providers, Annotated aliases, and models with their
    relationships' loader strategies. This is what decides whether a finding is made."""
    from . import index as index_mod

    paths = tuple(paths) or (".",)
    try:
        config = load(paths[0])
        files = discover(paths, config.root, config.exclude)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except FileNotFoundError as exc:
        raise click.UsageError(f"no such file or directory: {exc}") from None
    idx = engine.build_index(files, config, jobs or engine.default_jobs())
    data = index_mod.describe(idx)
    if fmt == "json":
        import json

        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(index_mod.render_description(data), nl=False)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def rules(fmt: str) -> None:
    """List the passes."""
    if fmt == "json":
        import json

        click.echo(json.dumps([{"code": p.code, "name": p.name, "summary": p.summary,
                                "fix": p.fix_safety} for p in ALL_PASSES], indent=2))
        return
    for p in ALL_PASSES:
        click.echo(f"{p.code}  {p.name:<28} fix: {p.fix_safety:<6} {p.summary}")


@cli.command()
@click.argument("code")
def explain(code: str) -> None:
    """Explain one rule: what it finds, why, the fix, and whether the fix is safe."""
    wanted = code.strip().upper()
    for p in ALL_PASSES:
        if p.code == wanted or p.name == code.strip().lower():
            click.echo(p.explain(), nl=False)
            return
    raise click.BadParameter(f"unknown rule {code!r} (see `sqla-fix rules`)", param_hint="CODE")


@cli.command()
def server() -> None:
    """Run the language server (LSP over stdin/stdout) for editors: diagnostics on open,
    change and save; each fix as a code action; "fix all safe" as source.fixAll.sqla-fix.

    Needs the optional dependency: pip install 'sqla-fix[server]'.
    """
    try:
        import pygls  # noqa: F401
    except ImportError:
        raise click.ClickException("the server needs pygls: pip install 'sqla-fix[server]'") from None
    from .server import serve

    serve()


def main() -> None:
    try:
        cli(prog_name="sqla-fix")
    except KeyboardInterrupt:
        click.echo("sqla-fix: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # never a traceback for users; SQLA_FIX_DEBUG=1 shows it
        if os.environ.get("SQLA_FIX_DEBUG"):
            raise
        click.echo(f"sqla-fix: internal error: {exc.__class__.__name__}: {exc}", err=True)
        sys.exit(EXIT_ERROR)


if __name__ == "__main__":  # pragma: no cover
    main()
