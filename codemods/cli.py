"""The ``sqla-fix`` command. Thin: options in, engine run, report out."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

from . import VERSION_LINE, __version__, collect, prefilter, report
from .lazy import lazy

if TYPE_CHECKING:
    from . import cache, discovery, engine, filelist, passes, pool, replay, results, review, writer
    from . import config as config_mod
    from . import project as project_mod
    from .config import Config, Resolver
    from .source import SourceFile
else:  # `rules` and `explain` never load them (and `--version` not even this module)
    cache = lazy("codemods.cache", snapshot=False)
    config_mod = lazy("codemods.config", snapshot=False)
    discovery = lazy("codemods.discovery", snapshot=False)
    engine = lazy("codemods.engine", snapshot=False)
    filelist = lazy("codemods.filelist", snapshot=False)
    pool = lazy("codemods.pool", snapshot=False)
    passes = lazy("codemods.passes")
    project_mod = lazy("codemods.project", snapshot=False)
    replay = lazy("codemods.replay", snapshot=False)
    results = lazy("codemods.results", snapshot=False)
    review = lazy("codemods.review", snapshot=False)
    writer = lazy("codemods.writer", snapshot=False)

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class UsageProblem(click.ClickException):
    """A configuration or usage error: exit status 2."""

    exit_code = EXIT_ERROR


def _color(stream) -> bool:
    """NO_COLOR (set and not empty) wins; then FORCE_COLOR; else colour on a terminal."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return hasattr(stream, "isatty") and stream.isatty()


def _codes(values: Sequence[str], option: str) -> tuple[str, ...]:
    try:
        return config_mod.known_codes([code for value in values for code in value.split(",")], option)
    except config_mod.ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


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
    extend_select: tuple[str, ...] = ()
    config_file: str | None = None
    force_exclude: bool = False
    quiet: bool = False
    show_fixes: bool = False
    file_timeout: float | None = None


def common_options(fn):
    decorators = [
        click.argument("paths", nargs=-1, type=click.Path()),
        click.option("--select", multiple=True, metavar="CODES", help="Only these rule codes (comma-separated, prefixes allowed)."),
        click.option("--extend-select", multiple=True, metavar="CODES", help="These rule codes on top of the selected ones."),
        click.option("--ignore", multiple=True, metavar="CODES", help="Skip these rule codes."),
        click.option("--exclude", multiple=True, metavar="GLOB", help="Skip files matching GLOB (gitignore-style, repeatable), on top of the configured excludes."),
        click.option("--force-exclude", is_flag=True, help="Apply the excludes to files named on the command line too."),
        click.option("--config", "config_file", metavar="PATH", type=click.Path(dir_okay=False),
                     help="Use this configuration file for every file (pyproject.toml or sqla-fix.toml)."),
        click.option("--format", "fmt", type=click.Choice(report.FORMATS), default="text", show_default=True, help="Output format for findings."),
        click.option("-j", "--jobs", type=click.IntRange(min=1), default=None, help="Worker processes [default: all cores]."),
        click.option("--stdin-filename", metavar="PATH", help="With `-`: the file name the source on stdin stands for."),
        click.option("--unsafe-fixes", is_flag=True, default=None, help="Also apply fixes marked unsafe."),
        click.option("--show-fixes", is_flag=True, help="Show each fix (check: its diff under the finding; apply: what was fixed)."),
        click.option("-q", "--quiet", is_flag=True, help="Print findings and errors, nothing else (no summary)."),
        click.option("--no-progress", is_flag=True, help="Never show a progress bar."),
        click.option("--no-cache", is_flag=True, help="Do not read or write .sqla-fix-cache/."),
        click.option("--file-timeout", type=float, metavar="SECONDS", default=None,
                     help="Give up on a file that takes longer (reported, the run goes on) [default: 60]."),
    ]
    for d in reversed(decorators):
        fn = d(fn)
    return fn


def _options(paths, select, extend_select, ignore, exclude, force_exclude, config_file, fmt, jobs, stdin_filename,
             unsafe_fixes, show_fixes, quiet, no_progress, no_cache, file_timeout) -> Options:
    paths = tuple(paths) or (".",)
    if "-" in paths and len(paths) > 1:
        raise click.UsageError("`-` (read stdin) cannot be combined with other paths")
    if stdin_filename and "-" not in paths:
        raise click.UsageError("--stdin-filename goes with `-` (source on stdin)")
    if file_timeout is not None:
        try:
            file_timeout = config_mod.timeout(file_timeout, "--file-timeout")
        except config_mod.ConfigError as exc:
            raise click.BadParameter(str(exc)) from None
    return Options(paths, _codes(select, "--select"), _codes(ignore, "--ignore"), tuple(exclude), fmt,
                   jobs or pool.default_jobs(), stdin_filename, bool(unsafe_fixes), not no_progress,
                   not no_cache, _codes(extend_select, "--extend-select"), config_file, force_exclude,
                   quiet, show_fixes, file_timeout)


def _resolver(opts: Options) -> Resolver:
    """Each file's Config: its own configuration file (or --config), then the command line.
    The command line wins: its --select replaces the configured select, extend-select *and*
    ignore (as in ruff, a selection made on the command line is not undone by the
    configuration); per-file-ignores still apply."""
    cli_excludes = (config_mod.Globs(os.getcwd(), opts.exclude),) if opts.exclude else ()

    def adjust(config: Config) -> Config:
        ignore, extend_select = config.ignore + opts.ignore, config.extend_select + opts.extend_select
        if opts.select:
            ignore, extend_select = opts.ignore, opts.extend_select
        return config.with_overrides(
            select=opts.select or None,
            extend_select=extend_select,
            ignore=ignore,
            exclude=config.exclude + cli_excludes,
            unsafe_fixes=True if opts.unsafe_fixes else None,
            file_timeout=opts.file_timeout,
        )

    try:
        return config_mod.Resolver(opts.config_file, adjust)
    except config_mod.ConfigError as exc:
        raise UsageProblem(str(exc)) from None


def _progress(total: int, opts: Options, label: str):
    if not opts.progress or total < 200 or not sys.stderr.isatty():
        return None
    # Shown, not output: a replay of the run (see replay.py) shows no bar.
    bar = click.progressbar(length=total, label=label, file=replay.real_stderr(), show_eta=True)
    bar.__enter__()
    return bar


def _run(opts: Options, want_fix_diffs: bool) -> tuple[list[engine.FileResult], bytes | None]:
    """Run the engine; returns results and, in stdin mode, the stdin bytes. Files are run in
    groups that share a Config (one project, one configuration file), each group with the
    index of its own project."""
    resolver = _resolver(opts)
    try:
        if opts.paths == ("-",):
            return _run_stdin(opts, resolver, want_fix_diffs)
        return _run_files(opts, resolver, want_fix_diffs), None
    except config_mod.ConfigError as exc:
        raise UsageProblem(str(exc)) from None


def _is_excluded(resolver: Resolver) -> Callable[[str, bool], bool]:
    """Each file or directory is excluded by the configuration that applies to it."""
    return lambda path, is_dir: resolver.for_path(path, is_dir).excludes(path, is_dir)


def _listings(opts: Options, resolver: Resolver) -> Callable[[str], filelist.Listings | None] | None:
    """Where each directory's listing is kept between runs: under its project's root, as the
    other caches are (none with --no-cache, nor for a root no project marker gave). The
    listing depends on the command line's excludes and on the ``--config`` file too."""
    if not opts.cache:
        return None
    config_stamp = cache.stamp(opts.config_file) if opts.config_file else None
    key = repr((opts.exclude, os.getcwd() if opts.exclude else None, opts.config_file, config_stamp))
    kept: dict[str, filelist.Listings] = {}

    def listings(top: str) -> filelist.Listings | None:
        config = resolver.for_path(top, is_dir=True)
        if not config.marked:
            replay.doubt()  # listed without the stamps of a tree
            return None
        if config.root not in kept:
            kept[config.root] = filelist.Listings(config.root, key)
        return kept[config.root]

    return listings


def _project_files(config: Config, resolver: Resolver, paths: Sequence[str],
                   walked: tuple[Sequence[str], list[str]] | None = None,
                   listings: Callable[[str], filelist.Listings | None] | None = None) -> list[str]:
    """The files the index of ``config``'s project reads: those under its root that are not
    excluded and that no nested project claims. A root no project marker gave is not read
    whole: only the paths given, each widened to its package (see config.project_scope).
    ``walked``: directories already discovered in this run, and the files found there."""
    scope = [p for p in config_mod.project_scope(paths, config) if os.path.exists(p)]
    if walked is not None and _same_directories(scope, walked[0]):
        found = walked[1]
    else:
        found = discovery.discover(scope, is_excluded=_is_excluded(resolver), listings=listings)
    roots: dict[str, str] = {}  # by directory as spelled (a project has fewer than files)
    for p in found:
        directory = os.path.dirname(p) or "."
        if directory not in roots:
            roots[directory] = resolver.root(directory, is_dir=True)
    return [p for p in found if roots[os.path.dirname(p) or "."] == config.root]


def _same_directories(a: Sequence[str], b: Sequence[str]) -> bool:
    return all(os.path.isdir(p) for p in (*a, *b)) and {os.path.abspath(p) for p in a} == {os.path.abspath(p) for p in b}


def _run_stdin(opts: Options, resolver: Resolver, want_fix_diffs: bool) -> tuple[list[engine.FileResult], bytes]:
    collect.for_one_file()
    raw = sys.stdin.buffer.read()
    name = opts.stdin_filename or "-"
    config = resolver.for_path(opts.stdin_filename or os.getcwd())
    if opts.stdin_filename and opts.force_exclude and discovery.excluded_file(opts.stdin_filename, _is_excluded(resolver)):
        return [engine.FileResult(path=name)], raw
    passes = prefilter.selected_passes(config)
    if not prefilter.wants_parse(raw, passes):
        # A byte scan: no selected rule could find anything here, whatever the project says.
        return [engine.run_source(name, raw, None, config, want_fix_diffs)], raw
    files = (_project_files(config, resolver, [opts.stdin_filename], listings=_listings(opts, resolver))
             if opts.stdin_filename else [])
    use_cache = opts.cache and config.marked
    project = project_mod.load(files, config, opts.jobs, overrides={name: raw}, use_cache=use_cache)
    _warn_index(project, 1, config)
    if not prefilter.wants_parse(raw, passes, project):
        # Mentions nothing session-related the index knows of: only its syntax is checked, and
        # only the index's relevance() is consulted (which the project knows without building it).
        return [engine.run_source(name, raw, project, config, want_fix_diffs)], raw
    return [results.source_result(name, raw, project, config, want_fix_diffs,
                                  use_cache=use_cache and bool(opts.stdin_filename))], raw


def _run_files(opts: Options, resolver: Resolver, want_fix_diffs: bool) -> list[engine.FileResult]:
    is_excluded = _is_excluded(resolver)
    listings = _listings(opts, resolver)
    try:
        files = discovery.discover(opts.paths, is_excluded=is_excluded, force_exclude=opts.force_exclude,
                                   listings=listings)
    except FileNotFoundError as exc:
        raise click.UsageError(f"no such file or directory: {exc}") from None
    groups: dict[int, tuple[Config, list[str]]] = {}
    for path in files:
        config = resolver.for_path(path, is_dir=False)  # discover gives files
        groups.setdefault(id(config), (config, []))[1].append(path)
    bar = _progress(len(files), opts, "sqla-fix")
    by_path: dict[str, engine.FileResult] = {}
    checked = list(files)  # and every file of their projects: what the output depends on
    explicit = {discovery.display_name(p) for p in opts.paths if os.path.isfile(p)}
    try:
        for config, group in groups.values():
            project = sorted(set(_project_files(config, resolver, opts.paths, (opts.paths, files), listings)) | set(group))
            checked.extend(project)
            use_cache = opts.cache and config.marked
            loaded = project_mod.load(project, config, opts.jobs, use_cache=use_cache)
            _warn_duplicates(loaded)
            _warn_index(loaded, len(group), config, checked=set(group))
            for result in results.run_files(group, loaded, config, opts.jobs, want_fix_diffs,
                                            progress=bar.update if bar else None, explicit=explicit,
                                            use_cache=use_cache):
                by_path[result.path] = result
            _index_bugs_as_results(loaded, by_path)
    finally:
        if bar:
            bar.__exit__(None, None, None)
    replay.depend(checked)
    if opts.config_file:
        replay.depend([opts.config_file])
    return [by_path[path] for path in files]


# A run reads "far more" files than it was given beyond both of these.
FAR_MORE_RATIO, FAR_MORE_FILES = 10, 1000


def _index_bugs_as_results(idx: project_mod.Project, by_path: dict[str, engine.FileResult]) -> None:
    """A file of the run the index failed on with an internal error, which the engine did not
    read again (no rule looked at it): its result carries that error, so that it is reported
    (not hidden as "reported by the run", see :func:`_warn_index`) and sets the exit status."""
    for failure in idx.failures:
        result = by_path.get(failure.path)
        if result is not None and result.error is None and failure.internal:
            result.error = engine.not_analysed(failure.path, failure.reason)


def _warn_index(idx: project_mod.Project, given: int, config: Config, checked: set[str] | frozenset[str] = frozenset()) -> None:
    """Files the index could not read (unless the run reports them itself), and a note when
    indexing read far more files than the run was given."""
    if idx.failures:
        replay.doubt()  # as results with an error, not kept
    for failure in idx.failures:
        if failure.path not in checked:
            click.echo(engine.not_analysed(failure.path, f"{failure.reason} (while indexing)"), err=True)
    if idx.scanned > FAR_MORE_RATIO * given and idx.scanned > FAR_MORE_FILES:
        click.echo(f"sqla-fix: note: read {idx.scanned} files under {config.root} to index the project, "
                   f"for {given} file{'s' if given != 1 else ''} given; the nearest project marker "
                   "(pyproject.toml, setup.py, .git) decides the project root.", err=True)


def _warn_duplicates(idx: project_mod.Project) -> None:
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
@click.version_option(__version__, prog_name="sqla-fix", message=VERSION_LINE)
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
@click.option("--exit-zero", is_flag=True, help="Exit with status 0 even when there are findings.")
@click.option("-o", "--output-file", metavar="PATH", type=click.Path(dir_okay=False),
              help="Write the report to PATH instead of stdout.")
@click.option("--statistics", is_flag=True, help="Count the findings per rule instead of listing them.")
def check(exit_zero: bool, output_file: str | None, statistics: bool, **kw) -> None:
    """Report session-lifecycle bugs as `path:line:col: CODE message`.

    Exit status: 0 clean, 1 findings or unreadable files, 2 usage, configuration or internal
    error.
    """
    opts = _options(**kw)
    results, _ = _run(opts, want_fix_diffs=opts.fmt in ("json", "sarif") or opts.show_fixes)
    if any(r.error for r in results):
        replay.doubt()  # as in the results cache: a syntax error, a time limit are met again
    if statistics:
        text = report.statistics(results, opts.fmt)
    else:
        text = report.render(results, opts.fmt, with_summary=not opts.quiet, show_fixes=opts.show_fixes)
    _output(text, output_file)
    _emit_errors(results, opts.fmt)
    code = _exit_code(results, sum(len(r.findings) for r in results))
    sys.exit(EXIT_CLEAN if exit_zero and code == EXIT_FINDINGS else code)


def _output(text: str, output_file: str | None) -> None:
    if output_file is None:
        click.echo(text, nl=False)
        return
    try:
        with open(output_file, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    except OSError as exc:
        raise UsageProblem(f"cannot write {output_file}: {exc.strerror or exc}") from None


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
    opts = _options(**kw)
    stdin_mode = opts.paths == ("-",)
    interactive = not (dry_run or yes or stdin_mode)
    if interactive and not sys.stdin.isatty():
        raise click.UsageError(
            "stdin is not a terminal, so fixes cannot be reviewed: use --yes to write every fix "
            "or --dry-run to see them", ctx=click.get_current_context())
    results, raw = _run(opts, want_fix_diffs=opts.fmt == "json")

    if stdin_mode:
        result = results[0]
        out = raw if raw is not None else b""
        if result.changed and result.source is not None:
            out = result.source.encode(result.new_text)  # type: ignore[arg-type]
        sys.stdout.buffer.write(out)
        sys.stdout.flush()
        unfixed = [f for f in result.findings if not f.fix_applies]
        for f in unfixed:
            click.echo(report.finding_line(f), err=True)
        _emit_errors(results, "text")
        sys.exit(_exit_code(results, len(unfixed)))

    changed = [r for r in results if r.changed]
    if dry_run:
        if opts.fmt == "text":
            color = _color(sys.stdout)
            for r in changed:
                assert r.source is not None and r.new_text is not None  # r.changed says so
                click.echo(review.colorize(review.unified_diff(r.source.text, r.new_text, r.path), color), nl=False, color=color)
            for r in results:
                for f in r.findings:
                    if not f.fix_applies:
                        click.echo(report.finding_line(f), err=True)
            if not opts.quiet:
                click.echo(report.summary(results, fixed_verb="fixable"), err=True)
        else:
            click.echo(report.render(results, opts.fmt), nl=False)
        _emit_errors(results, opts.fmt)
        sys.exit(_exit_code(results, sum(len(r.findings) for r in results)))

    if changed and not allow_dirty:
        dirty = writer.dirty_files([r.path for r in changed])
        if dirty:
            click.echo("sqla-fix: refusing to write files with uncommitted changes "
                       "(commit or stash them, or pass --allow-dirty):", err=True)
            for path in dirty:
                click.echo(f"  {path}", err=True)
            sys.exit(EXIT_ERROR)

    written = _write(changed, interactive)
    remaining = sum(1 for r in results for f in r.findings if not f.fix_applies)
    for r in results:
        for f in r.findings:
            if not f.fix_applies:
                click.echo(report.finding_line(f))
    _emit_errors(results, "text")
    if opts.show_fixes and written.complete:
        click.echo(report.fixed_summary([r for r in results if r.path in written.complete]), err=True, nl=False)
    if not opts.quiet:
        total, applied, files = written.total_hunks, written.total_hunks - written.skipped_hunks, len(written.files)
        click.echo(f"Applied {applied} of {total} hunk{'s' if total != 1 else ''}; "
                   f"wrote {files} file{'s' if files != 1 else ''}."
                   + (f" {remaining} finding{'s' if remaining != 1 else ''} left to fix by hand." if remaining else ""),
                   err=True)
    sys.exit(_exit_code(results, remaining + written.skipped_hunks))


@dataclass
class Written:
    files: list[str] = field(default_factory=list)  # every file written
    complete: set[str] = field(default_factory=set)  # those written with every fix
    skipped_hunks: int = 0
    total_hunks: int = 0


def _write(changed: Sequence[engine.FileResult], interactive: bool) -> Written:
    """Review (if asked) and write."""
    color = _color(sys.stdout)
    reviewer = (review.Reviewer(ask=_ask, echo=lambda s: click.echo(s, nl=False, color=color), color=color)
                if interactive else None)
    out = Written()
    skipped = total = 0
    quitting = False
    for r in changed:
        src: SourceFile = r.source  # type: ignore[assignment]
        count = len(review.hunks(src.text, r.new_text))  # type: ignore[arg-type]
        total += count
        if quitting:
            skipped += count
            continue
        text = r.new_text
        complete = True
        if reviewer is not None:
            try:
                decisions = reviewer.review(r.path, src.text, r.new_text)  # type: ignore[arg-type]
            except review.Quit as q:
                decisions = q.decisions  # type: ignore[attr-defined]
                quitting = True
            skipped += decisions.count(False)
            if not any(decisions):
                continue
            if not all(decisions):
                complete = False
                text = review.apply_hunks(src.text, r.new_text, decisions)  # type: ignore[arg-type]
                if not engine.parses_like(src.text, text):
                    click.echo(f"{r.path}: the accepted hunks do not form valid Python on their own; "
                               "file left unchanged", err=True)
                    skipped += decisions.count(True)
                    continue
        try:
            writer.write_atomic(src, text)  # type: ignore[arg-type]
            out.files.append(r.path)
            if complete:
                out.complete.add(r.path)
        except writer.ChangedOnDisk as exc:
            click.echo(f"{r.path}: {exc}", err=True)
            skipped += count
        except (writer.WriteError, OSError) as exc:
            click.echo(f"{r.path}: cannot write: {exc}", err=True)
            skipped += count
    out.skipped_hunks, out.total_hunks = skipped, total
    return out


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
        resolver = config_mod.Resolver()
        config = resolver.for_path(paths[0])
        files = discovery.discover(paths, is_excluded=_is_excluded(resolver))
    except config_mod.ConfigError as exc:
        raise UsageProblem(str(exc)) from None
    except FileNotFoundError as exc:
        raise click.UsageError(f"no such file or directory: {exc}") from None
    idx = engine.build_index(files, config, jobs or pool.default_jobs())
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
                                "fix": p.fix_safety} for p in passes.ALL_PASSES], indent=2))
        return
    for p in passes.ALL_PASSES:
        click.echo(f"{p.code}  {p.name:<28} fix: {p.fix_safety:<6} {p.summary}")


@cli.command()
@click.argument("code")
def explain(code: str) -> None:
    """Explain one rule: what it finds, why, the fix, and whether the fix is safe."""
    wanted = code.strip().upper()
    for p in passes.ALL_PASSES:
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
    collect.for_command()
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
