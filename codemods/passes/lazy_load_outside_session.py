"""SQF006 lazy-load-outside-session (report only)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..lazy import lazy
from .base import FileContext, Finding, Pass
from .closed_scope_reads import ClosedRead, closed_scope_reads
from .flow import (
    Event,
    EventKind,
    bound_through,
    events,
    functions,
    lazy_relationships_read,
    read_key,
    session_scoped,
    shape,
    with_end,
    with_scopes,
)
from .helpers import Callees, builds_a_model, callees, dotted, enters_a_session, holds_session
from .lazy_load_outside_session_examples import EXAMPLES, PROJECT, VALID
from .loaded_callers import caller_holdings
from .loaded_relationships import UnloadedRead, closes_its_sessions, unloaded_reads

if TYPE_CHECKING:
    import libcst as cst

    from .. import index as index_mod
else:
    cst = lazy("libcst")
    index_mod = lazy("codemods.index")


class LazyLoadOutsideSession(Pass):
    code = "SQF006"
    name = "lazy-load-outside-session"
    summary = "a lazy relationship read where it cannot load: async code, or after the session closed"
    fix_safety = "none"
    triggers = (b".",)
    explanation = """
    ## What it does
    Reports reads of a relationship attribute with the default lazy strategy (`lazy="select"`)
    where the load cannot happen:

    - in async code, on an instance attached to an `AsyncSession`, when the query that
      loaded it did not load the relationship eagerly: the implicit load raises
      `MissingGreenlet` (wrapped in `StatementError` on SQLAlchemy 2.1 with aiosqlite);
    - in async code, on an instance loaded by a query on an `AsyncSession` parameter, or
      returned by an async project function whose query loaded it (`sub = await
      get_subscription(db, id)`), or reached through one of its loaded relationships
      (`user = sub.user`), when that query's loader options did not name the relationship:
      `getattr(user, "subscriptions", None)` raises `MissingGreenlet` too, as the default only
      catches a missing attribute (and `hasattr()` catches only `AttributeError`); handing it
      to a project function that reads the relationship is reported at the call; an instance
      such a function returns under a constant key of a dict literal (`prep = await
      self._prepare(id)`, then `prep["chat"].agent`) is followed the same way;
    - in async code, along a path: a helper handed `job` that reads
      `job.project.upstreams[i].mirrors`, or a loop over `job.project.upstreams`, when the
      query's options stop at `upstreams` (reported at the option that stops short when the
      read is in a helper); a deferred column the query did not `undefer()` counts as well;
    - in async code, through the model's own code: a property, or a plain method called on
      the object (`agent.to_dict()`), reads the relationship on every call (before any branch,
      loop or `try` in its body);
    - in async code, a relationship the mapping loads eagerly (`lazy="selectin"`,
      `"subquery"`) where SQLAlchemy does not apply that strategy: on an object reached along
      a loading path that already holds the relationship's target model (a team's `agents`
      reached from an agent's `teams`; a self-referential `children`), unless the
      relationship sets `join_depth`. Instances a model's async method gets from
      `await self.awaitable_attrs.rel` (also kept and awaited later, or through
      `asyncio.gather`) are followed this way, and so are comprehension variables;
    - where the load state is known as above, a relationship declared `lazy="raise"` that
      the query did not load: reading it raises `InvalidRequestError`;
    - in async code, on an object built there, added and flushed: a collection it was not
      given has nothing loaded, and after a plain `await session.refresh(obj)` no lazy
      relationship of it is loaded;
    - on an instance returned by a project function whose session closed before it
      returned (`with Session(engine) as s: return s.get(Author, 1)`), when that function did
      not load the relationship eagerly: `DetachedInstanceError: Parent instance <Author> is
      not bound to a Session; lazy load operation of attribute 'books' cannot proceed`.

    - in sync code, on an object a project function built, committed (under a session that
      expires on commit) and returned inside a `with` block, read after that block closed the
      session: the commit expired what the object was built with, and a `refresh()` reloads
      columns only.

    A relationship read after a session scope closed in the same function, of an object the
    scope loaded, is reported by SQF003, which also captures the columns read there.

    ## Why is this bad?
    Lazy loading needs a session that is open and, for `AsyncSession`, an explicit await.
    Neither is there at these reads, so they fail at run time, often only on the code path a
    test did not take.

    ## The fix
    There is no single mechanical fix; the message names the concrete remedies:
    `selectinload(Model.rel)` (or `joinedload`) on the query that loads the object,
    `lazy="selectin"` on the relationship, or, in async code,
    `await obj.awaitable_attrs.rel` (with the `AsyncAttrs` mixin on the base class).

    ## Fix safety
    No automatic fix: choosing between eager loading on the query, on the relationship, or an
    awaited attribute is a design decision.
    """
    example_project = PROJECT
    examples = EXAMPLES
    valid = VALID

    @classmethod
    def wants(cls, index, facts) -> bool:
        if facts is None:
            return True
        if not _may_read_lazy(index, facts):
            return False  # every finding is a read of a relationship (or deferred column) named here or by a callee
        if enters_a_session(index, facts):
            return True  # a session scope, or a session entered as a value (`async with session:`)
        if facts.has_async and any(fn.is_async and holds_session(index, fn) for fn in facts.functions.values()):
            return True  # the objects an async function loads through its own session
        if facts.has_async and ("AsyncSession" in facts.all_attributes
                                or any(v.rsplit(".", 1)[-1] == "AsyncSession" for v in facts.imports.values())):
            return True  # queries on an AsyncSession parameter (as its annotation spells it)
        if facts.has_async and {"add", "add_all", "refresh"} & facts.all_methods and builds_a_model(index, facts):
            return True  # an object built here (`Model(...)`), added and flushed, or refreshed: by any session
        if facts.has_async and _loaders(index).called_in(index, facts):
            return True  # what an async project function (or a method of one's own class) loaded or built
        if facts.has_async and any(index.instance_model(f"{facts.module}.{cls}") is not None for cls in facts.classes):
            return True  # a model's own async methods (`await self.awaitable_attrs.rel`)
        for target in facts.qualified_calls:  # `get_user(...)`, `crud.get_user(...)`
            if _returns_detached(index, target) or (facts.has_async and index.returned(target) is not None):
                return True
        return False

    def run(self, ctx: FileContext) -> Iterator[Finding]:
        returning = self._session_returning_names(ctx)
        for qualname, fn in functions(ctx.module, ctx):
            found = shape(ctx, fn, qualname)
            attached = fn.asynchronous is not None and session_scoped(ctx, fn, qualname)
            detached = bool(found.calls & returning)
            closing = fn.asynchronous is None and session_scoped(ctx, fn, qualname)
            if fn.asynchronous is None and not detached and not closing:
                continue
            evs = events(fn, ctx)
            reported: set[int] = set()
            for closed in closed_scope_reads(ctx, evs) if closing else ():
                reported.add(id(closed.event.node))
                yield self._closed(closed)
            if attached:
                for f in self._async_attached(ctx, evs):
                    reported.add(id(f.node))
                    yield f
            if detached:
                for f in self._returned_detached(ctx, evs):
                    reported.add(id(f.node))
                    yield f
            given = caller_holdings(ctx, qualname, fn) \
                if fn.asynchronous is not None and _reads_lazily_of_params(ctx, qualname) else None
            for read in unloaded_reads(ctx, fn, evs, given):
                finding = self._unloaded(read)
                if id(finding.node) not in reported:
                    reported.add(id(finding.node))
                    yield finding

    def _closed(self, read: ClosedRead) -> Finding:
        X, rel = read.name, read.relationship
        return self.finding(read.event.node, (
            f"{_what(X, read.event.name, rel)}, read after the `with` block of line {read.block_line} closed the "
            f"session `{X}` came from, and `{read.built}(...)` committed it (expiring what it was built with): "
            f"the read raises DetachedInstanceError; read it inside the block, or load it there with "
            f"`{read.session}.refresh({X}, [\"{rel}\"])`"))

    def _unloaded(self, read: UnloadedRead) -> Finding:
        X, rel, h = read.name, read.relationship, read.holding
        if h.built:
            where = f"built by `{h.maker}`" if h.maker else "built here"
            when = (f"`refresh()` without attribute names left every lazy relationship of this object, {where}, "
                    "unloaded" if h.source == "refresh" else f"it was built here without `{rel}` and then flushed")
            what = f"`{read.callee}(...)` reads `{X}.{rel}`" if read.callee else f"`{X}.{rel}`"
            given = "" if h.source == "refresh" else f"give it a value when building the object (`{h.model.name}({rel}=[...])`) or "
            return self.finding(read.event.node, (
                f"{what}, a lazy collection that was never loaded ({when}): reading it in async code runs an "
                f"implicit load, which raises MissingGreenlet; {given}load it with "
                f"`await session.refresh({X}, [\"{rel}\"])`"))
        failure = "DetachedInstanceError (its session closed)" if h.detached else "MissingGreenlet"
        implicit = "reading it in async code runs an implicit load, which raises"
        if h.model.relationships.get(rel) == "raise":
            failure = f"InvalidRequestError ('{h.model.name}.{rel}' is not available due to lazy='raise')"
            implicit = "reading it raises"
        column = rel in h.model.deferred
        loader = "undefer" if column else "selectinload"
        if read.option is not None:  # a deep read of what the query's own options loaded
            return self.finding(read.option, (
                f"this loader option stops at `{X}`: it does not load `.{rel}`, which `{read.callee}(...)` reads "
                f"(line {read.line}): {implicit} {failure}; extend the option with "
                f"`.{loader}({h.model.name}.{rel})`"))
        raising = h.model.relationships.get(rel) == "raise"
        kind = "a deferred column" if column else "a relationship declared lazy=\"raise\"" if raising \
            else "a lazy relationship"
        if read.callee:
            what = f"`{read.callee}(...)` reads `{X}.{rel}`, {kind}"
        elif raising and read.event.name == rel:
            what = f"`{X}.{rel}` is {kind}"
        else:
            what = f"`{X}.{rel}` is {kind}" if column else _what(X, read.event.name, rel)
        awaited = "" if "." in X or raising else f", or use `await {X}.awaitable_attrs.{rel}`"
        cycle = ""
        if rel in h.stopped:  # the mapping's eager strategy, stopped by the loading path
            cycle = (f"; its lazy=\"{h.model.relationships[rel]}\" does not apply here: SQLAlchemy stops eager "
                     f"loading where the path already holds the model it loads (set `join_depth` on the "
                     f"relationship, or name it in a loader option)")
        return self.finding(read.event.node, (
            f"{what} that {h.source} did not load"
            f"{f' (reached through `{h.via}`)' if h.via else ''}{cycle}: {implicit} {failure}; load it with "
            f"{h.path}{loader}({h.model.name}.{rel}) in that query{awaited}"))

    @staticmethod
    def _session_returning_names(ctx: FileContext) -> set[str]:
        """Local names of project functions that return a model from a session they close."""
        index = ctx.index
        mod = ctx.facts
        if mod is None:
            return set()
        out = set()
        for local, target in list(mod.imports.items()) + [(q, f"{mod.module}.{q}") for q in mod.functions]:
            if _returns_detached(index, target):
                out.add(local)
        return out

    def _async_attached(self, ctx: FileContext, evs: list[Event]) -> Iterator[Finding]:
        for w in evs:
            if w.kind != EventKind.WITH or not w.node.asynchronous:  # type: ignore[attr-defined]
                continue
            end = with_end(evs, w.node)
            region = evs[w.index + 1: end]
            for name, scope in with_scopes(ctx, w.node):  # type: ignore[arg-type]
                for ev in region:
                    if ev.kind != EventKind.ASSIGN:
                        continue
                    bound = bound_through(ctx, ev, name, scope)
                    X = ev.name
                    if bound is None or X is None:
                        continue
                    for r in region:
                        if r.index <= ev.index:
                            continue
                        if r.kind == EventKind.ASSIGN and r.name == X:
                            break
                        if r.kind == EventKind.CALL and r.name == "refresh" and r.args[:1] == (X,):
                            break  # refresh(X, ["rel"]) and friends: assume it loads what is read
                        key = read_key(r) if r.owner == X else None
                        rels = lazy_relationships_read(bound.model, key, bound.eager) if key else []
                        if rels:
                            rel = rels[0]
                            yield self.finding(r.node, (
                                f"{_what(X, key, rel)}{' read' if r.name == rel else ''} in async code: the implicit "
                                f"load raises MissingGreenlet; load it with selectinload({bound.model.name}."
                                f"{rel}) on the query, set lazy=\"selectin\" on the relationship, or use "
                                f"`await {X}.awaitable_attrs.{rel}`"))

    def _returned_detached(self, ctx: FileContext, evs: list[Event]) -> Iterator[Finding]:
        index = ctx.index
        for ev in evs:
            if ev.kind != EventKind.ASSIGN or not isinstance(ev.value, (cst.Call, cst.Await)):
                continue
            value = ev.value.expression if isinstance(ev.value, cst.Await) else ev.value
            if not isinstance(value, cst.Call):
                continue
            callee = dotted(value.func)
            if callee is None or "." in callee and callee.split(".")[0] in ("self", "cls"):
                continue
            target = ctx.qualify(callee)
            returned = index.returned(target)
            if returned is None or returned.shape is index_mod.Stage.LIST \
                    or not closes_its_sessions(index, index.function(target)):
                continue
            model = returned.model
            X = ev.name
            if X is None:  # an assignment event always names its target
                continue
            for r in evs[ev.index + 1:]:
                if r.kind == EventKind.ASSIGN and r.name == X:
                    break
                key = read_key(r) if r.owner == X else None
                rels = lazy_relationships_read(model, key, frozenset(returned.function.eager)) if key else []
                if rels:
                    rel = rels[0]
                    yield self.finding(r.node, (
                        f"{_what(X, key, rel)} of an object whose session closed in "
                        f"`{callee}`: DetachedInstanceError; load it there with "
                        f"selectinload({model.name}.{rel}), or set lazy=\"selectin\" on the relationship"))
                    break


def _what(X: str, attr: str | None, rel: str) -> str:
    """`user.posts` is a lazy relationship / `episode.title` reads the lazy relationship `parent`."""
    if attr == rel:
        return f"`{X}.{rel}` is a lazy relationship"
    return f"`{X}.{attr}` reads the lazy relationship `{rel}`"


def _returns_detached(index, target: str) -> bool:
    """A project function that returns ORM instances from sessions it closed."""
    return index.returned(target) is not None and closes_its_sessions(index, index.function(target))


def _reads_lazily_of_params(ctx: FileContext, qualname: str) -> bool:
    """Can what the callers of ``qualname`` hand it matter here: does it read a lazy attribute
    (:func:`_lazy_keys`) of a parameter, directly (``param_reads``), along a path or in a function
    it hands the parameter to (``param_paths``), or call a method of that name (a model's method
    that reads a relationship: ``agent.to_dict()``)? Asking its callers costs a walk of each."""
    facts = ctx.function_facts(qualname)
    if facts is None:
        return True
    index = ctx.index
    keys = _lazy_keys(index)
    if not keys.isdisjoint(facts.methods):
        return True
    qualified = ctx.facts.own(qualname) if ctx.facts is not None else qualname
    return any(any(r.removesuffix("()") in keys for r in reads) or _reads_a_lazy_path(index, qualified, param, keys)
               for param, reads in facts.param_reads.items())


def _may_read_lazy(index: index_mod.ProjectIndex, facts: index_mod.ModuleFacts) -> bool:
    """Can the module read a lazy attribute of a model? Every finding of this pass is the read of
    a model's relationship or deferred column: by name (`user.posts`, `getattr(user, "posts")`),
    through a property or method of the model that reads one (`agent.to_dict()`), or in a
    project function the object is handed to (`describe(user)`, or on through the functions it
    hands it to). So the module names one of those attributes, or calls (under any name it is
    imported as) a function whose reads of a parameter, or hand-offs of it, may reach one."""
    keys = _lazy_keys(index)
    if not keys.isdisjoint(facts.all_attributes):
        return True
    return _lazy_readers(index, keys).called_in(index, facts)


def _lazy_keys(index: index_mod.ProjectIndex) -> frozenset[str]:
    """The names of every model's relationships, deferred columns, and the properties and
    methods that read its attributes (as read keys: `to_dict()` is `to_dict`)."""
    def compute() -> frozenset[str]:
        out: set[str] = set()
        for model in index.models().values():
            out.update(model.relationships, model.deferred, (k.removesuffix("()") for k in model.properties))
        return frozenset(out)
    return index.remember(("lazy-keys",), compute)


def _lazy_readers(index: index_mod.ProjectIndex, keys: frozenset[str]) -> Callees:
    """The project functions that read a path of a parameter with a step in ``keys``,
    themselves or in the functions they hand it on to (as the pass follows them:
    :func:`~codemods.index.paths.param_paths`)."""
    def reads_lazily(qualified: str, fn: index_mod.Function) -> bool:
        return bool(fn.param_paths or fn.param_paths_guarded or fn.param_handoffs) and any(
            _reads_a_lazy_path(index, qualified, p.name, keys) for p in fn.params)
    return callees(index, "lazy-readers", reads_lazily)


def _reads_a_lazy_path(index: index_mod.ProjectIndex, qualified: str, param: str, keys: frozenset[str]) -> bool:
    """Does the project function ``qualified`` read, of its parameter ``param``, a path with a
    step in ``keys`` (itself, or in the functions it hands the parameter to: the paths
    :func:`~codemods.index.paths.param_paths` follows)?"""
    from ..index.paths import param_paths  # the index loads only where a pass runs

    return any(step.removesuffix("()") in keys for path in param_paths(index, qualified, param) for step in path.split("."))


def _loaders(index: index_mod.ProjectIndex) -> Callees:
    """The async project functions whose result the pass follows (:func:`~.loaded_relationships._load`,
    ``_keyed``): what their query loaded, an object they built, or a dict of loaded instances."""
    return callees(index, "loaders", lambda qualified, fn: fn.is_async and (
        fn.returns_built is not None or bool(fn.returns_keys) or index.returned(qualified) is not None))
