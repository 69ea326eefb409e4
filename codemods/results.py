"""The results cache: a file's findings and fixes, kept between runs.

An entry (``.sqla-fix-cache/results.json``) is used while its file is unchanged (see
:class:`.cache.FileCache`: a stat, and the content digest for a recently changed file) and
while its key is the key of this run: a digest of the project index's facts
(:attr:`.project.Project.fingerprint`, so a change in another module that changes what the
index knows invalidates every result), the whole configuration (rules selected, per-file
ignores, unsafe fixes...), whether the file was named on the command line and whether fix
diffs are wanted. The cache's schema carries a digest of sqla-fix's own code. Results with an
error (a syntax error, a time limit) are not cached: they are computed again.

A re-run with nothing changed costs a stat per file and the loading of two cache files; no
file is read, parsed or analysed, and the index's facts are not even decoded.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import cache, handoffs
from .config import Config
from .lazy import lazy
from .project import Project
from .records import FileResult, FindingRecord
from .source import SourceError, from_bytes, read_source

if TYPE_CHECKING:
    from . import engine
else:  # loaded with the passes, when a file has to be analysed
    engine = lazy("codemods.engine", snapshot=False)

SCHEMA = cache.code_schema()


@dataclass
class CachedResult:
    key: str  # see the module's docstring
    digest: str  # of the bytes that were analysed
    findings: list[FindingRecord] = field(default_factory=list)
    new_text: str | None = None  # the fixed text, when a fix changed it
    verified: bool = False  # also the result of the file named on the command line (FileResult.verified)


def results_cache(config: Config) -> cache.FileCache[CachedResult]:
    return cache.FileCache(config.root, "results", CachedResult, SCHEMA)


def key(project: Project, config: Config, want_fix_diffs: bool) -> str:
    """What a file's result depends on besides its own bytes and path."""
    settings = dataclasses.replace(config, file_timeout=0.0, source=None)
    text = f"{project.fingerprint}\0{settings!r}\0{want_fix_diffs}"
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def cached_result(entry: CachedResult, path: str) -> FileResult | None:
    """The FileResult an entry stands for. A result with a fix carries its source, read
    again (and compared with the digest) so that `apply` writes what was analysed."""
    result = FileResult(path=path, findings=entry.findings)
    if entry.new_text is None:
        return result
    try:
        source = read_source(path)
    except SourceError:
        return None
    if cache.content_digest(source.raw) != entry.digest:
        return None
    result.source, result.new_text = source, entry.new_text
    return result


def run_files(files: Sequence[str], project: Project, config: Config, jobs: int, want_fix_diffs: bool = False,
              progress: Callable[[int], object] | None = None, explicit: Iterable[str] = (),
              use_cache: bool = False) -> list[FileResult]:
    """``engine.run_files`` on ``project``'s index, with the results of unchanged files taken
    from the cache (``use_cache``). The index is built only when a file has to be analysed."""
    explicit = frozenset(explicit)
    if not use_cache:
        return engine.run_files(files, project.index, config, jobs, want_fix_diffs, progress, explicit)
    store = results_cache(config)
    wanted = key(project, config, want_fix_diffs)
    done: dict[str, FileResult] = {}
    for path in files:
        plain = store.raw(path)
        if not isinstance(plain, dict) or plain.get("key") != wanted:
            continue  # decoded only when it can serve
        entry = _decoded(store, path, plain)
        if entry is not None and usable(entry, wanted, path in explicit):
            result = cached_result(entry, path)
            if result is not None:
                done[path] = result
                if progress:
                    progress(1)
    missed = [p for p in files if p not in done]
    if missed:
        fresh = engine.run_files(missed, project.index, config, jobs, want_fix_diffs, progress, explicit)
        wanted = key(project, config, want_fix_diffs)  # the index is decoded now (a damaged entry is read again)
        for result in fresh:
            done[result.path] = result
            _store(store, result, wanted, result.path in explicit)
        store.save()
    return [done[p] for p in files]


def _decoded(store: cache.FileCache[CachedResult], path: str, plain: dict) -> CachedResult | None:
    if plain.get("findings") == [] and set(plain) == _EMPTY_KEYS and plain.get("new_text") is None \
            and type(plain.get("verified")) is bool and type(plain.get("digest")) is str:
        return CachedResult(plain["key"], plain["digest"], [], None, plain["verified"])  # most files: no finding
    return store.get(path)


_EMPTY_KEYS = {f.name for f in dataclasses.fields(CachedResult)}


def usable(entry: CachedResult, wanted: str, explicit: bool) -> bool:
    return entry.key == wanted and (entry.verified or not explicit)


def _store(store: cache.FileCache[CachedResult], result: FileResult, key: str, explicit: bool) -> None:
    if result.error is not None or result.source is None or result.seen is None:
        return
    new_text = result.new_text if result.changed else None
    # A file named explicitly had its syntax checked whenever its result has no error.
    entry = CachedResult(key, result.seen.digest, result.findings, new_text, result.verified or explicit)
    store.put(result.path, entry, seen=result.seen)


def source_result(path: str, raw: bytes, project: Project, config: Config,
                  want_fix_diffs: bool = False, use_cache: bool = False) -> FileResult:
    """``engine.run_source`` (the source of ``path`` given in memory, as an editor does),
    with the stored result of ``path`` when it was computed from these very bytes."""
    if use_cache:
        entry = results_cache(config).peek(path)
        if (entry is not None and entry.digest == cache.content_digest(raw)
                and usable(entry, key(project, config, want_fix_diffs), explicit=True)):
            result = FileResult(path=path, findings=entry.findings)
            if entry.new_text is not None:
                result.source, result.new_text = from_bytes(path, raw), entry.new_text
            return result
        # The callers' walks that handed nothing, kept by the last runs for this state of the
        # index: an editor checking the file again parses no caller's file for them.
        index = project.index
        with handoffs.kept(handoffs.Store(config.root, key(project, config, False)), index):
            return engine.run_source(path, raw, index, config, want_fix_diffs)
    return engine.run_source(path, raw, project.index, config, want_fix_diffs)
