"""SQF010 across a call: a project caller that hands a function an instance its session
expired (a rollback, a commit of a session that expires on commit), together with that
session, makes the function's first reads of the instance's columns implicit reloads. The
caller's own walk (SQF010's) says what is expired at the call; the function starts with it."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .. import trees
from ..kept import Kept
from ..lazy import lazy
from .expiry_callers import call_sites_of
from .expiry_paths import may_follow
from .expiry_state import Expiry, Handed, RoundOf, Tracked, cause_of
from .flow import (
    Event,
    EventKind,
    call_argument,
    events,
    function_named,
    hands_session_to_enders,
    reachable_only_through,
)
from .helpers import dotted

if TYPE_CHECKING:
    import libcst as cst

    from ..cache import Stamp
    from ..index import lookup
    from ..index.facts import Model
    from .base import FileContext
    from .expiry_carry import Round, RoundStart
else:
    cst = lazy("libcst")
    lookup = lazy("codemods.index.lookup")


_CATCH_ALL = {"Exception", "BaseException", "MissingGreenlet", "StatementError", "SQLAlchemyError"}
_DEPTH = 2  # callers of callers followed (a caller's own parameters may come expired too)


@dataclass
class Handoff:
    """A call, in a caller's walk, that hands ``X`` (expired by ``cause``) with the session
    ``S``. It holds no node of the caller's tree: kept for the worker's run, it would keep the
    caller's function in memory."""

    line: int
    X: str
    passed: int | str  # where the call passes X
    S: str
    model: Model  # X's
    loaded: frozenset[str]  # attributes of X set since the expiry: not expired
    eager: frozenset[str]  # relationships X's load loaded with it
    cause: Handed | str  # `db.rollback()`, `helper(...)`: what expired it (in a caller's caller: how it came)


def handoff(ctx: FileContext, e: Event, X: str, S: str, obj: Tracked) -> Handoff | None:
    """``X`` passed at ``e`` while an expiry of every attribute leaves it expired."""
    where = call_argument(e)
    if where is None:
        return None
    states = [(obj.expiry, obj.loaded, obj.only), *([obj.shadowed] if obj.shadowed else [])]
    expiry, loaded = next(((x, got) for x, got, only in states if x is not None and x.expires_all and only is None
                           and may_follow(x.event, e)), (None, set()))
    if expiry is None:
        return None  # fresh, or expired only on a path that cannot reach the call
    call, passed = where
    if not _passes(call, S):
        return None  # the session goes with it: the callee's reload would go through it
    first = expiry.reads[X][0] if X in expiry.reads else None
    if first is not None and first.index < e.index and _always_before(e, first):
        return None  # read on every way to the call: that read is the one that fails
    if expiry.caller is not None:
        cause: Handed | str = expiry.caller
    elif expiry.via is not None:
        cause = f"`{expiry.via}(...)`"
    elif expiry.kind == "begin":
        cause = f"the end of `async with {S}.begin():`"
    else:
        cause = f"`{S}.{expiry.kind}()`"
    return Handoff(ctx.position(call).start.line, X, passed, S, obj.model, frozenset(loaded), obj.eager, cause)


def round_handoff(ctx: FileContext, e: Event, watch: Round, start: RoundStart, S: str,
                  loaded: frozenset[str]) -> Handoff | None:
    """``watch.X``, the element of a loop's round, handed at ``e`` with ``S`` before anything
    reloads it, while an expiry later in the round before leaves it expired from the second
    round on (see :class:`RoundStart`; ``loaded``: what the round set on it before)."""
    where = call_argument(e)
    if where is None or not _passes(where[0], S):
        return None
    call, passed = where
    first = start.reads[0] if start.reads else None
    if first is not None and first.index < e.index and _always_before(e, first):
        return None  # the round reads it first on every way to the call: that read is the one that fails
    cause = start.cause(e)
    loop = watch.loop
    code = cst.Module([]).code_for_node
    header = f"`{'async ' if loop.asynchronous else ''}for {code(loop.target)} in {code(loop.iter)}` " \
             f"(line {ctx.position(loop).start.line})"
    handed = Handed((), cause_of(cause, S, ctx.position(cause.event.node).start.line), RoundOf(header, S))
    return Handoff(ctx.position(call).start.line, watch.X, passed, S, watch.obj.model, loaded, watch.obj.eager, handed)


def _passes(call: cst.Call, S: str) -> bool:
    return any(isinstance(a.value, cst.Name) and a.value.value == S for a in call.args)


def guarded(read: Event) -> bool:
    """Is ``read`` in the body of a `try` whose handler catches what the reload raises
    (`except Exception:`, `except MissingGreenlet:`, a bare `except:`)? Code that expects
    the instance may be expired and falls back."""
    for at, node in enumerate(read.path[:-1]):
        if isinstance(node, cst.Try) and read.path[at + 1] is node.body:
            for handler in node.handlers:
                caught = dotted(handler.type) if handler.type is not None else None
                if handler.type is None or (caught or "").rsplit(".", 1)[-1] in _CATCH_ALL:
                    return True
    return False


def _always_before(call: Event, read: Event) -> bool:
    """Does every way to ``call`` pass ``read``? A read in the test of an `if`/`while` runs
    when its statement does, unless the test may stop short of it (`if a and user.id == b:`)."""
    try:
        stmt = read.statement
    except LookupError:
        return False
    if isinstance(stmt, (cst.If, cst.While)):
        if isinstance(stmt.test, cst.BooleanOperation):
            return False
        at = next(i for i, node in enumerate(read.path) if node is stmt)
        read = Event(EventKind.USE, stmt, read.path[: at + 1])
    return reachable_only_through(call, read)


def context_of(ctx: FileContext, path: str, module_name: str) -> FileContext | None:
    """A context for another file of the project (its callers' walks need one), kept for the
    worker's run among the last few used (see :func:`..trees.by_size`). Not for the whole
    check of this file: a function with callers in many large files would keep them all."""
    if path == ctx.path:
        return ctx
    key = _file_key(ctx, path)
    return None if key is None else _context_by_key(ctx, key, module_name)


def _context_by_key(ctx: FileContext, key: tuple[int, str, Stamp], module_name: str) -> FileContext | None:
    return _OTHER_FILES.get(key, lambda: _context(ctx, key, module_name))


@dataclass
class _Tree:
    """A file as parsed, with what depends on its text alone (its digest, the positions and
    parents of its nodes): kept across states of the index."""

    module: cst.Module
    wrapper: cst.MetadataWrapper
    digest: str
    of_tree: dict


def _context(ctx: FileContext, key: tuple[int, str, Stamp], module_name: str) -> FileContext | None:
    """The file's context for this state of the index, around its tree: an edit in an editor
    starts a new state of the index, and the callers' files it did not change are not parsed
    again."""
    from .base import FileContext as Ctx

    tree = _TREES.get(key[1:], lambda: _parse(key[1]))
    if tree is None:
        return None
    _DIGESTS[key[1:]] = tree.digest
    return Ctx(path=key[1], module=tree.module, wrapper=tree.wrapper, index=ctx.index, config=ctx.config,
               module_name=module_name, of_tree=tree.of_tree)


def _parse(path: str) -> _Tree | None:
    from ..cache import content_digest

    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        # as open(path, encoding="utf-8") reads it: strict UTF-8, universal newlines
        module = trees.parse(path, io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8").read())
    except (OSError, UnicodeDecodeError, cst.ParserSyntaxError):
        return None
    wrapper = cst.MetadataWrapper(module, unsafe_skip_copy=True)
    return _Tree(wrapper.module, wrapper, content_digest(raw), {})


def _file_key(ctx: FileContext, path: str) -> tuple[int, str, Stamp] | None:
    """What a file's context and walks are kept by: the state of the index they were made
    with, the file's path and stamp (as the caches tell an unchanged file); its tree is kept by
    path and stamp. None when the file cannot be read. What was kept for another index is
    dropped first, and the contexts and walks of an older state of the same index. The walks
    being made note the file as one they read."""
    from ..cache import stamp

    global _OWNER, _GENERATION
    generation = getattr(ctx.index, "generation", 0)
    if ctx.index is not _OWNER:
        _TREES.clear()
        _DIGESTS.clear()
    if ctx.index is not _OWNER or generation != _GENERATION:
        _OTHER_FILES.clear()
        _WALKED.clear()
    _OWNER, _GENERATION = ctx.index, generation
    found = stamp(path)
    key = None if found is None else (generation, path, found)
    for read in _READING:
        read.keys.add(key)
    return key


def _callers_handoffs(ctx: FileContext, path: str, module_name: str, qualname: str, walk: Walk,
                      depth: int) -> list[Handoff] | None:
    """The hand-offs of the caller ``qualname`` in another file (its walk, see :data:`Walk`),
    kept for the worker's run: a caller many callees' files share is walked once. None when
    the file or the function cannot be read, when it hands nothing, or when a walk of an
    earlier run, kept with the files it read (see :mod:`..handoffs`), found nothing handed and
    those files are unchanged."""
    key = _file_key(ctx, path)
    if key is None:
        return None
    from .. import handoffs

    store = handoffs.active(ctx.index)

    def make() -> tuple[list[Handoff] | None, _Read]:
        kept = store.nothing_handed(path, qualname, depth) if store is not None else None
        if kept is not None:
            return None, _Read(set(), kept)
        read = _Read({key}, {})
        _READING.append(read)
        try:
            other = _context_by_key(ctx, key, module_name)
            node = function_named(other, qualname) if other else None
            walked = walk(other, qualname, node, depth) if other is not None and node is not None else None
        finally:
            _READING.pop()
        walked = walked or None  # nothing handed
        if store is not None and walked is None:
            files = read.digests()
            if files is not None:
                store.keep(path, qualname, depth, files)
        return walked, read

    walked, read = _WALKED.get((key, qualname, depth), make)
    for outer in _READING:  # a walk served from memory read those files too
        outer.add(read)
    return walked


@dataclass
class _Read:
    """The files a walk read: parsed in this run (by key), or as a kept walk read them (by
    content digest)."""

    keys: set[tuple[int, str, Stamp] | None]
    files: dict[str, str]

    def add(self, other: _Read) -> None:
        self.keys |= other.keys
        self.files.update(other.files)

    def digests(self) -> dict[str, str] | None:
        """Each file read and the digest of the bytes parsed; None if one was not parsed."""
        out = dict(self.files)
        for key in self.keys:
            digest = _DIGESTS.get(key[1:]) if key is not None else None
            if key is None or digest is None:
                return None
            out[key[1]] = digest
        return out


# Kept for one index at a time (the worker's or the server's), the contexts and walks for one
# state of it; parsed trees are a few MB each, so few of them are kept, and many of the walks'
# answers.
_OWNER: object = None
_GENERATION = 0
_TREES: Kept[tuple[str, Stamp], _Tree | None] = trees.by_size(lambda key: key[1].size)
_OTHER_FILES: Kept[tuple[int, str, Stamp], FileContext | None] = trees.by_size(lambda key: key[2].size)
_WALKED: Kept[tuple[tuple[int, str, Stamp], str, int],
               tuple[list[Handoff] | None, _Read]] = Kept(4096)  # and the files it read
_DIGESTS: dict[tuple[str, Stamp], str] = {}  # the content digest of each file parsed
_READING: list[_Read] = []  # the files each walk being made has read, innermost last


Walk = Callable[["FileContext", str, "cst.FunctionDef", int], list[Handoff]]


def may_be_handed_expired(index, facts, qualname: str, expiring: set[str]) -> bool:
    """A cheap question of the index before any caller's walk: does an async project caller
    of ``qualname`` (of the module with facts ``facts``) commit or roll back (or hand its
    session to a function that does)?"""
    fn = facts.functions.get(qualname) if facts is not None and index is not None else None
    if fn is None or not fn.is_async or len(fn.params) < 2:
        return False
    qualified = facts.own(qualname)
    return any(caller.is_async and (bool(expiring & mod.all_methods) or hands_session_to_enders(index, mod, caller.qualname))
               for mod, caller, _site in [*index.call_sites(qualified), *index.receiver_call_sites(qualified)])


def may_hand_expired(index, mod, qualname: str, expiring: set[str], depth: int) -> bool:
    """Can the walk of the caller ``qualname`` (of the module with facts ``mod``), made at
    ``depth``, find an instance it hands on expired? Only where something in it may expire
    one: a call of ``expiring`` methods (a commit, a rollback, a `begin()` block's end), a
    project function it hands its session to that may commit or roll it back however deep
    (``session_ends(deep=True)``), an object built around its session whose methods may, or,
    while callers are still followed, an async caller of its own of which all this holds. A
    cheap question of the index before the caller's file is parsed."""
    fn = mod.functions.get(qualname) if mod is not None else None
    if fn is None or index is None:
        return True  # unknown: walk it
    if expiring & fn.methods:
        return True
    receiver = f"{mod.module}.{qualname.rsplit('.', 1)[0]}" if "." in qualname else None
    for end in fn.session_ends:
        if end.callee is None or end.passed is None:
            continue
        if index.session_ends(end.callee, end.passed, receiver, deep=True, binds_self=end.binds_self) \
                or not end.callee.startswith("self.") and index.builds_ender(end.callee, end.passed):
            return True
    # a call that hands on a session the facts above do not name as one (`session:
    # Annotated[AsyncSession, ...]`): any call of a project function that may end a session
    # it is given, as the walk resolves the call itself
    enders, ender_names = index.remember(("session-enders",), lambda: _session_enders(index))
    if any((called := index.function(mod.qualify(name))) is not None and id(called) in enders for name in fn.called):
        return True
    if not ender_names.isdisjoint(fn.methods):  # `crud.save(session)`, `self.save(session)`: by name
        return True
    if depth > _DEPTH:
        return False  # (its walk follows no caller)
    qualified = mod.own(qualname)
    return any(caller.is_async and may_hand_expired(index, cmod, caller.qualname, expiring, depth + 1)
               for cmod, caller, _site in [*index.call_sites(qualified), *index.receiver_call_sites(qualified)])


def _session_enders(index) -> tuple[frozenset[int], frozenset[str]]:
    """The project functions that may commit or roll back (however deep) a session given as one
    of their parameters: the ids of their facts, and their last names."""
    out: set[int] = set()
    names: set[str] = set()
    for module in index.modules.values():
        for qualname, fn in module.functions.items():
            qualified = module.own(qualname)
            if any(index.session_ends(qualified, p.name, deep=True) for p in fn.params if p.name not in ("self", "cls")):
                out.add(id(fn))
                names.add(qualname.rsplit(".", 1)[-1])
    return frozenset(out), frozenset(names)


def caller_expired(ctx: FileContext, qualname: str, S: str, walk: Walk, depth: int = 0,
                   expiring: set[str] | None = None) -> dict[str, Tracked]:
    """Parameters of ``qualname`` that a project call site fills with an instance the caller's
    session expired, handing that session as ``S``: tracked as expired from the start, the
    expiry naming the caller and its line. With ``expiring`` (the session methods that may
    expire something), a caller that cannot hand one on (:func:`may_hand_expired`) is neither
    parsed nor walked."""
    fn = ctx.function_facts(qualname)
    if fn is None or not fn.is_async or depth > _DEPTH:
        return {}
    from ..index.callers import held_local  # the index loads only when a pass runs

    here = function_named(ctx, qualname)
    if here is None:
        return {}
    out: dict[str, Tracked] = {}
    qualified = ctx.facts.own(qualname)
    held = [(*row, True) for row in ctx.index.receiver_call_sites(qualified)]
    for mod, caller, site, through_local in [(*row, False) for row in call_sites_of(ctx, qualname)] + held:
        if not caller.is_async or expiring is not None \
                and not may_hand_expired(ctx.index, mod, caller.qualname, expiring, depth + 1):
            continue
        bound = ctx.index.binds_self(site)
        _, session_name = lookup.argument_for(fn, site, S, bound=bound)
        if session_name is None:
            continue
        if mod.path == ctx.path:  # a caller in this file: its walk is cached on this file's context
            found = function_named(ctx, caller.qualname)
            walked = None if found is None else walk(ctx, caller.qualname, found, depth + 1)
        else:
            walked = _callers_handoffs(ctx, mod.path, mod.module, caller.qualname, walk, depth + 1)
        if not walked:
            continue
        if through_local:
            other = context_of(ctx, mod.path, mod.module)
            mine = function_named(other, caller.qualname) if other else None
            if other is None or mine is None or not _holds(other, mine, held_local(mod, site) or "", qualified):
                continue
        handed = [h for h in walked if h.line == site.line and h.S == session_name]
        for p in fn.params:
            if p.name in out or p.name in (S, "self", "cls"):
                continue
            _, name = lookup.argument_for(fn, site, p.name, bound=bound)
            h = next((h for h in handed if h.X == name), None)
            if h is None:
                continue
            short = caller.qualname.rsplit(".", 1)[-1]
            where = f"{_relative(ctx, mod.path)}:{site.line}"
            hop = f"`{short}()` ({where})"
            handed_in = replace(h.cause, hops=(hop, *h.cause.hops)) if isinstance(h.cause, Handed) else Handed((hop,), h.cause)
            # the expiry is at the function's entry (the caller's own nodes are not kept)
            entry = Expiry(Event(EventKind.USE, here, ()), "rollback", expires_all=True, caller=handed_in)
            out[p.name] = Tracked(h.model, None, False, new_in_tx=False, expiry=entry,
                                  loaded=set(h.loaded), eager=h.eager)
    return out


def _relative(ctx: FileContext, path: str) -> str:
    root = getattr(ctx.config, "root", None)
    try:
        return os.path.relpath(path, root) if root else path
    except ValueError:
        return path


def _holds(ctx: FileContext, fn: cst.FunctionDef, local: str, method: str) -> bool:
    """Is every value ``fn`` assigns to ``local`` an instance built there (`service =
    Service()`) of a class whose method is ``method`` (qualified)?"""
    target = ctx.index.function(method)
    name = method.rsplit(".", 1)[-1]
    values = [e.value for e in events(fn, ctx) if e.kind == EventKind.ASSIGN and e.name == local]
    if not values or target is None:
        return False
    for value in values:
        value = value.expression if isinstance(value, cst.Await) else value
        cls = ctx.qualify(dotted(value.func)) if isinstance(value, cst.Call) else None
        if cls is None or ctx.index.function(f"{cls}.{name}") is not target:
            return False
    return True
