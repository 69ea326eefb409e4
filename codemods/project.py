"""The project index of one run, built from the files' bytes or taken from the last run.

Which files the index reads is decided in rounds: first the files that mention SQLAlchemy (or
FastAPI's ``Depends``, or a configured name), then the files that mention a session-related
name found so far (a module that only imports the project's factory), until none is new.

With the cache, every file of the project has an entry in ``.sqla-fix-cache/index.json``
while it is unchanged: the digest of its facts, or "read, and not part of the index" (the
tokens it was checked against are kept once for all of them); the facts themselves are in
``facts.json``, by digest. A re-run reads only new and changed files (and the unchanged ones
not in the index only when a new session-related name appears), and loads and decodes the
facts of the others only when a file has to be analysed: :attr:`Project.fingerprint`, a
digest of every indexed file's facts, is known without them, and is what the results cache
(:mod:`.results`) keys on.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import cache, codec, guard
from .config import Config
from .lazy import lazy
from .prefilter import DATABASE_TRIGGERS, INDEX_TRIGGERS, minimal_tokens, relevance_of

if TYPE_CHECKING:
    from . import index as index_mod
    from . import pool
else:  # a run with nothing to read (a re-run, an editor's file without session code) needs neither
    index_mod = lazy("codemods.index", snapshot=False)
    pool = lazy("codemods.pool", snapshot=False)


@dataclass
class IndexEntry:
    """One file as the index last saw it: the digest of its facts' plain form (path left out;
    the facts themselves are in ``facts.json`` under that digest), or None: read, and it
    mentions none of the checked tokens."""

    digest: str | None


@dataclass
class Meta:
    """What the cache knows about the index of the last run as a whole."""

    fingerprint: str  # of the indexed files' facts
    names: list[str]  # that index's session-related names
    checked: list[str]  # the tokens every file left out of it was checked against
    ambiguous: list[tuple[str, list[str]]] = field(default_factory=list)  # its ambiguous imports


@dataclass(frozen=True)
class IndexFailure:
    """A file the index could not read: it is left out of the index, and reported."""

    path: str
    reason: str
    internal: bool = False  # a bug of sqla-fix (the extraction raised), not a property of the file


def index_triggers(config: Config) -> tuple[bytes, ...]:
    extra = tuple(n.rsplit(".", 1)[-1].encode() for n in list(config.session_factories) + list(config.session_scopes))
    return INDEX_TRIGGERS + DATABASE_TRIGGERS + extra


def new_index(facts, config: Config) -> index_mod.ProjectIndex:
    from .index.library import library_modules  # with the index: a run that needs none skips both

    facts = list(facts)
    facts += library_modules(facts)
    return index_mod.ProjectIndex(facts, config_factories=config.session_factories,
                                  config_scopes=config.session_scopes,
                                  assume_expire_on_commit=config.assume_expire_on_commit)


def _index_key(config: Config) -> str:
    """What the index depends on besides the files' bytes: the import roots (module names),
    the configured factories and scopes (its names), and the code that extracts it."""
    settings = (os.path.abspath(config.root), config.src, config.session_factories, config.session_scopes,
                config.assume_expire_on_commit)
    return f"{cache.SCHEMA}/{_digest_of(repr(settings))}"


def _digest_of(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def facts_digest(plain: Any) -> str:
    """The digest of a file's facts in their plain form, wherever the file was read from."""
    if isinstance(plain, dict):
        plain = {k: v for k, v in plain.items() if k != "path"}
    return _digest_of(json.dumps(plain, sort_keys=True, separators=(",", ":")))


class _Known:
    """An indexed file: its facts as extracted, or as stored (decoded when first needed).
    The plain form and digest of extracted facts are made when first asked for (a run
    without the cache never asks)."""

    __slots__ = ("path", "_digest", "_plain", "_facts")

    def __init__(self, path: str, digest: str | None, plain: Any = None,
                 facts: index_mod.ModuleFacts | None = None) -> None:
        self.path, self._digest, self._plain, self._facts = path, digest, plain, facts

    @property
    def plain(self) -> Any:
        if self._plain is None and self._facts is not None:
            self._plain = codec.encode(self._facts, defaults=False)  # half the size: most fields keep their defaults
        return self._plain

    @plain.setter
    def plain(self, value: Any) -> None:
        self._plain = value

    @property
    def digest(self) -> str:
        if self._digest is None:
            self._digest = facts_digest(self.plain)
        return self._digest

    def facts(self, stored: cache.Blobs | None) -> index_mod.ModuleFacts:
        if self._facts is None:
            if self.plain is None and stored is not None:
                self.plain = stored.get(self.digest)
            self._facts = codec.decode(index_mod.ModuleFacts, self.plain)
        facts = copy.copy(self._facts)  # the index renames a module whose name another file claims
        facts.path = self.path  # the spelling of this run
        return facts


class Project:
    """The index of one run: its fingerprint at once, the index itself when asked for."""

    def __init__(self, config: Config, known: dict[str, _Known], meta: Meta | None = None,
                 store: cache.FileCache[IndexEntry] | None = None, stored: cache.Blobs | None = None) -> None:
        self.config = config
        self._known = known
        self._store, self._stored = store, stored
        # With the cache, made at once: the facts' digests are taken as extracted, before any
        # index holds them.
        self._fingerprint: str | None = fingerprint(known) if store is not None else None
        self._index: index_mod.ProjectIndex | None = None
        self._reread = False  # facts the cache could not give were read from their files
        self._meta = meta if meta is not None and meta.fingerprint == self.fingerprint else None
        self.failures: list[IndexFailure] = []
        self.scanned = 0  # files read to build it (not those served by the cache)

    @property
    def fingerprint(self) -> str:
        """A digest of every indexed file's facts (see :func:`fingerprint`), made when first
        asked for: the caches key on it, a run without them never asks."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint(self._known)
        return self._fingerprint

    @property
    def index(self) -> index_mod.ProjectIndex:
        if self._index is None:
            self._reread = False
            facts = [self._facts(absolute) for absolute in list(self._known)]
            self._index = new_index([f for f in facts if f is not None], self.config)
            if self._meta is not None and self._meta.fingerprint == self.fingerprint:
                # The session-related names of these very facts, as the last run derived them
                # (a walk of every function of every module), kept with the index's entries.
                self._index._names = set(self._meta.names)
            if self._reread:  # keep what was read again
                self.save_facts()
            self._index.failures = self.failures
            self._index.scanned = self.scanned
        return self._index

    def _facts(self, absolute: str) -> index_mod.ModuleFacts | None:
        """A file's facts; stored facts that do not decode (a damaged cache) are read again
        from the file, and the fingerprint follows."""
        known = self._known[absolute]
        try:
            return known.facts(self._stored)
        except (codec.DecodeError, TypeError):
            pass
        self._reread = True
        read = cache.read_seen(known.path)
        facts = None
        if read is not None:
            try:
                facts = index_mod.extract(known.path, read[0], index_mod.module_names(known.path, self.config.root,
                                                                                       self.config.src))
            except index_mod.UNPARSABLE:
                facts = None
        if self._store is not None:
            self._store.forget(known.path)
        if facts is None:  # gone, or not a module the index can read after all
            del self._known[absolute]
        else:
            fresh = _extracted(known.path, facts)
            self._known[absolute] = fresh
            if self._store is not None and read is not None:
                self._store.put(known.path, IndexEntry(fresh.digest), seen=read[1])
        if self._store is not None:
            self._store.save()
        self._fingerprint = None  # to be made again, from the facts as they are now
        return self._known[absolute].facts(None) if facts is not None else None

    def save_facts(self) -> None:
        """Store the facts of every indexed file (by digest) for the next run."""
        if self._stored is None:
            return
        values = {}
        for known in self._known.values():
            plain = known.plain if known.plain is not None else self._stored.get(known.digest)
            if plain is not None:
                values[known.digest] = plain
        self._stored.replace(values)

    def names(self) -> set[str]:
        return set(self._meta.names) if self._meta is not None else self.index.names()

    def relevance(self) -> tuple[bytes, ...]:
        """What ``engine.wants_parse`` looks for: the index's, without building the index."""
        return self._index.relevance() if self._index is not None else relevance_of(self.names())

    def ambiguous_imports(self) -> list[tuple[str, list[str]]]:
        return list(self._meta.ambiguous) if self._meta is not None else self.index.ambiguous_imports()

    def meta(self, checked: set[bytes]) -> Meta:
        return Meta(self.fingerprint, sorted(self.names()), sorted(t.decode("utf-8", "surrogateescape") for t in checked),
                    self.ambiguous_imports())


def fingerprint(known: dict[str, _Known]) -> str:
    """A digest of every indexed file's facts: equal fingerprints, equal indexes."""
    h = hashlib.blake2b(digest_size=16)
    for path, entry in sorted(known.items()):
        h.update(f"{path}\0{entry.digest}\n".encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def index_store(config: Config) -> tuple[cache.FileCache[IndexEntry], cache.Blobs]:
    """The files as the index last saw them, and their facts by digest."""
    key = _index_key(config)
    return cache.FileCache(config.root, "index", IndexEntry, key), cache.Blobs(config.root, "facts", key)


def _extracted(path: str, facts: index_mod.ModuleFacts) -> _Known:
    return _Known(path, None, facts=facts)


def load(files: Sequence[str], config: Config, jobs: int, overrides: dict[str, bytes] | None = None,
         use_cache: bool = False) -> Project:
    """The index of ``files``, ``overrides`` ({path: bytes}) standing in for what is on disk.
    With ``use_cache``, what the last run saw of unchanged files is taken as it is."""
    overrides = overrides or {}
    store, stored = index_store(config) if use_cache else (None, None)
    cwd = os.getcwd()
    if store is not None and overrides:
        # An editor's buffer that is byte for byte the file on disk is that file: what the
        # cache knows of the file serves, and nothing is extracted (nor the index loaded).
        listed = {cache.absolute(p, cwd) for p in files}
        overrides = {p: raw for p, raw in overrides.items() if os.path.abspath(p) not in listed or (cache.read_seen(p) or (None,))[0] != raw}
    meta = _meta(store)
    triggers = set(index_triggers(config))
    known: dict[str, _Known] = {}  # absolute path -> indexed file
    pending: dict[str, frozenset[bytes]] = {}  # files not indexed -> the tokens they were checked against
    spelled: dict[str, str] = {}  # absolute path -> the spelling of this run
    taken = {os.path.abspath(p) for p in overrides}
    checked_before = frozenset(t.encode("utf-8", "surrogateescape") for t in meta.checked) if meta else frozenset()
    for path in files:
        absolute = cache.absolute(path, cwd)
        if absolute in taken:
            continue
        spelled[absolute] = path
        entry: Any = store.raw(path, absolute) if store is not None else None
        if not _well_formed(entry):
            pending[absolute] = frozenset()
        elif entry["digest"] is None:
            pending[absolute] = checked_before
        else:
            known[absolute] = _Known(path, entry["digest"])
    _take_overrides(overrides, triggers, known, config)
    changed = store is None or any(not checked for checked in pending.values())  # new or changed files
    project = Project(config, known, meta, store, stored)
    failures: list[IndexFailure] = []
    scanned = 0
    extracted = False
    for _round in range(4):
        names = project.names()
        wanted = triggers | set(minimal_tokens(names))
        added = _take_overrides(overrides, wanted, known, config)
        work, seen = [], {}
        for absolute, checked in list(pending.items()):
            tokens = tuple(wanted - checked)
            if not tokens:
                continue
            read = cache.read_seen(spelled[absolute])
            scanned += 1
            if read is None:
                del pending[absolute]
                continue
            raw, how = read
            if any(t in raw for t in tokens):
                path = spelled[absolute]
                work.append((path, raw, index_mod.module_names(path, config.root, config.src), config.file_timeout))
                seen[path] = how
            else:
                pending[absolute] = frozenset(wanted)
                if store is not None:
                    store.put(spelled[absolute], IndexEntry(None), seen=how)
        found = pool.map_items(_index_bytes, work, jobs, _failed_index, config.file_timeout) if work else []
        for item, result in zip(work, found):
            path = item[0]
            absolute = os.path.abspath(path)
            if isinstance(result, IndexFailure):
                failures.append(result)
                del pending[absolute]
            elif result is None:  # mentions a token, yet not Python the index can read
                pending[absolute] = frozenset(wanted)
                if store is not None:
                    store.put(path, IndexEntry(None), seen=seen[path])
            else:
                known[absolute] = _extracted(path, result)
                del pending[absolute]
                added = extracted = True
                if store is not None:
                    store.put(path, IndexEntry(known[absolute].digest), seen=seen[path])
        if added:
            project = Project(config, known, meta, store, stored)
        if not added:
            break
    if changed or extracted:
        for path, facts, how in _reexporting(project.index, [spelled[a] for a in pending], config, failures):
            absolute = os.path.abspath(path)
            known[absolute] = _extracted(path, facts)
            del pending[absolute]
            extracted = True
            scanned += 1
            if store is not None:
                store.put(path, IndexEntry(known[absolute].digest), seen=how)
        if extracted:
            project = Project(config, known, meta, store, stored)
    project.failures, project.scanned = failures, scanned
    if store is not None:
        everywhere: frozenset[bytes] = frozenset(wanted)
        for seen_tokens in pending.values():
            everywhere &= seen_tokens
        store.set_meta("index", project.meta(set(everywhere)))
        store.keep_only([*spelled.values(), *(p for p in store.entries if p in taken)])
        store.save()
        if extracted:
            project.save_facts()
    return project


def _reexporting(index: index_mod.ProjectIndex, remaining: list[str], config: Config, failures: list[IndexFailure],
                 depth: int = 3):
    """The files left out that indexed modules import from, as (path, facts, how it was read):
    a package ``__init__`` or a module that re-exports models or factories (``from .review
    import Review``) mentions nothing session-related itself, yet names lead through it. Only
    modules that define no function or class are taken, and those that define a class an
    indexed class names as a base (`class Item(BaseModelMixin)`, a link of its class chain);
    followed ``depth`` imports deep."""
    by_name: dict[str, str] = {}
    for path in remaining:
        for name in index_mod.module_names(path, config.root, config.src):
            by_name.setdefault(name.name, path)
    taken: set[str] = set()
    fresh = list(index.modules.values())
    for _ in range(depth):
        wanted: set[str] = set()
        bases: set[str] = set()
        for f in fresh:
            for target in f.imports.values():
                parts = target.split(".")
                wanted.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
            bases.update(base.rsplit(".", 1)[0] for c in f.classes.values() for base in c.bases if "." in base)
        paths = sorted({by_name[w] for w in wanted if w in by_name} - taken)
        if not paths:
            break
        taken.update(paths)
        fresh = []
        for path in paths:
            read = cache.read_seen(path)
            links = any(n.name in bases for n in index_mod.module_names(path, config.root, config.src))
            if read is None or _defines_code(read[0]) and not links:
                continue  # a module of its own, not a re-export: the byte scan saw all it holds
            try:
                facts = index_mod.extract(path, read[0], index_mod.module_names(path, config.root, config.src))
            except index_mod.ExtractionBug as exc:
                failures.append(IndexFailure(path, str(exc), internal=True))
                continue
            except index_mod.UNPARSABLE:
                continue
            fresh.append(facts)
            yield path, facts, read[1]


def _defines_code(raw: bytes) -> bool:
    """Does a module define a function or a class at its top level (so it is more than a list
    of re-exports)?"""
    return any(raw.startswith(k) or b"\n" + k in raw for k in (b"def ", b"class ", b"async def "))


def _well_formed(entry: Any) -> bool:
    """The stored form of an IndexEntry."""
    return isinstance(entry, dict) and set(entry) == {"digest"} and (entry["digest"] is None
                                                                      or isinstance(entry["digest"], str))


def _meta(store: cache.FileCache | None) -> Meta | None:
    if store is None or "index" not in store.meta:
        return None
    try:
        return codec.decode(Meta, store.meta["index"])
    except (codec.DecodeError, TypeError):
        return None


def _take_overrides(overrides: dict[str, bytes], wanted: set[bytes], known: dict[str, _Known], config: Config) -> bool:
    """Index the in-memory sources that mention a wanted token; True if one was added."""
    added = False
    for path, raw in overrides.items():
        absolute = os.path.abspath(path)
        if absolute in known or not any(t in raw for t in wanted):
            continue
        try:
            facts = index_mod.extract(path, raw, index_mod.module_names(path, config.root, config.src))
        except index_mod.UNPARSABLE:
            continue
        known[absolute] = _extracted(path, facts)
        added = True
    return added


def _index_bytes(args: tuple[str, bytes, Any, float | None]):
    path, raw, module, timeout = args
    try:
        with guard.time_limit(timeout):
            return index_mod.extract(path, raw, module)
    except index_mod.ExtractionBug as exc:
        return IndexFailure(path, str(exc), internal=True)
    except index_mod.UNPARSABLE:
        return None
    except guard.FileTimeout:
        return IndexFailure(path, f"took longer than {timeout:g} s (file-timeout)")


def _failed_index(args: tuple, reason: str) -> IndexFailure:
    return IndexFailure(args[0], reason)
