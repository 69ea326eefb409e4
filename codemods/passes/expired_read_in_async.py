"""SQF010 expired-read-in-async."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .. import names
from ..lazy import lazy
from .base import Edit, FileContext, Finding, Fix, Pass
from .expired_read_in_async_examples import EXAMPLES, PROJECT, VALID
from .expiry_callers import caller_collections, caller_sessions
from .expiry_carry import Collections, Round, bind_collection, carried_reads, iterated, taken
from .expiry_handoff import Handoff, caller_expired, guarded, handoff, may_be_handed_expired, round_handoff
from .expiry_paths import (
    aug_assigned,
    begins_block,
    failed_in,
    goes_on_after,
    known_present,
    listed_names,
    may_follow,
    node_ids,
    sole_call,
)
from .expiry_state import Expiry, Tracked, cause_of
from .flow import (
    BindingKind,
    Event,
    EventKind,
    SessionRef,
    binding_of,
    bound_through,
    call_argument,
    constructed_with,
    events,
    function_named,
    functions,
    handler_block,
    hands_session_to_enders,
    hands_session_to_services,
    inside,
    model_for,
    reachable_only_through,
    scoped_sessions,
    service_ended_by,
    session_call,
    session_ended_by,
    sessions,
    shape,
    unique_name,
)
from .helpers import awaited_calls, calls_on, dotted, to_name

if TYPE_CHECKING:
    import libcst as cst

    from .. import index as index_mod
    from ..index import Model
else:
    cst = lazy("libcst")
    index_mod = lazy("codemods.index")


_EXPIRING = {"commit", "rollback", "begin"}
# Session calls that end what the session holds: objects are detached from here on.
_DETACH_ALL = {"close", "expunge_all", "invalidate", "reset"}


class ExpiredReadInAsync(Pass):
    code = "SQF010"
    name = "expired-read-in-async"
    summary = "a column read, in async code, on an instance a commit or rollback of its open session expired"
    fix_safety = "safe"
    triggers = (b"commit(", b"rollback(", b".begin(", b"await ", b"async def ")
    # A read after an error-path rollback: an `expunge_all()` there (SQF004's fix) would turn
    # the MissingGreenlet into a DetachedInstanceError; the read is the bug to show.
    supersedes = ("SQF004",)
    explanation = """
    ## What it does
    In `async def` code, finds column reads (`user.name`, `user.id`, `user.visits += 1`) on an
    instance attached to an `AsyncSession` that is still open, after a `commit()` of that
    session expired it (under a factory that expires on commit, SQLAlchemy's default), after
    the end of an `async with session.begin():` block (a commit), or after a `rollback()`
    (which expires every instance that was persistent before the transaction, whatever the
    factory says). The instance is one the function loaded through the session (`get`,
    `execute`, `scalars`, a project function that takes the session and returns a model),
    reached through a relationship of one (`user = subscription.user`), created and added to
    it, or, in a FastAPI endpoint, handed in by a dependency whose every session is the
    endpoint's own cached `Depends(get_db)` session (`admin: User =
    Depends(require_permission("x"))`). `self`, in a method of a mapped class (an abstract one
    too) that deletes it through the session, is such an instance: only a persistent instance
    can be deleted, and a rollback of the transaction that deleted it restores it, expired (a
    delete that was committed before leaves it detached instead, and unexpired).

    A call that hands the session to a project function which commits or rolls it back, itself
    or through the project functions it hands the session on to (`await _process(db, item)`),
    is that commit or rollback at the call site, once the call's arguments are read. A rollback
    the callee follows with `raise` does not count: the caller does not go on after it; nor
    does a rollback further down the calls (the callee may check or catch what failed). Nor
    does a callee's rollback when the caller keeps the call's result outside a loop: it
    happens when the callee failed, and such a caller usually checks the result and stops; in
    a loop (the next item after a failed one) or with the result dropped, the caller goes on.

    A flush that updates a row (a commit flushes) expires the columns the database sets on
    update (`onupdate=func.now()`, `server_onupdate=`) of that instance whatever the factory
    says, unless the mapper fetches them back (`eager_defaults`): a read of such a column after
    it is reported too. A read can be one call away: a project function the instance is handed
    to (`return _out(template)`) reads the attributes its body reads of that parameter.

    Collections: a list loaded through the session, or a dict or list built from one
    (`{u.email: u for u in users}`), holds instances an expiry expires with the others; one
    taken out of it afterwards (`by_email.get(email)`) is expired. In a loop over such a
    collection, an expiry late in a round (a rollback further down a call included) leaves the
    next round's element expired: a read of it early in the round, before anything reloads it,
    is reported. A relationship the collection's query loaded eagerly is expired too.

    A method of an object built with the session (`await ItemService(db).delete(item)`) whose
    class keeps the session as `self.<attr>` and commits or rolls it back is that commit or
    rollback; what the method is given is spared (it may refresh or delete it). An untyped
    parameter every project call site fills with an async session it opened is that session; a
    parameter every call site fills with a list loaded through it is such a collection.

    Across a call: a project caller that hands the function an instance its session expired,
    together with that session, makes the function's first reads of that parameter's columns
    (before a refresh or a load of its model) expired reads; they are reported in the function,
    naming the caller and its line, without an automatic fix (the refresh belongs in the caller
    or at the top of the function). A parameter handed in expired and handed on counts for the
    next function too (two callers up), as does a method called on an object the caller built.
    A loop's element handed in with the session counts the same way when something later in
    the round (the call itself included) commits or rolls back the session as the loop reads
    above say: from the second round on it comes in expired, and the finding names the
    caller's loop and what expired it in the round before.

    A session parameter (`db: AsyncSession` with no provider) comes from the project's async
    session factories: it expires on commit unless every one of them is built with
    `expire_on_commit=False`. A rollback expires it either way.

    ## Why is this bad?
    Reading an expired attribute reloads it from the database. An `AsyncSession` cannot do
    that implicitly: the read raises `MissingGreenlet: greenlet_spawn has not been called;
    can't call await_() here` (on SQLAlchemy 2.1 with aiosqlite, wrapped in
    `StatementError`). The same code works in a sync session, so it survives a port to async
    and fails only at run time.

    ## The fix
    `await session.refresh(obj)` right after the commit, the rollback or the `begin()` block,
    before the read: the refresh is awaited, so the load happens where it can. A load that may
    give None (`get`, `first`...) gets `if obj is not None:` around the refresh.

    A read of an instance taken out of a collection after the expiry, a read in a loop's next
    round, and a read of a relationship get no automatic fix: load the objects again (by id,
    with their relationships), or take the values before the expiry.

    When the read is in the error handler that rolled back (`except IntegrityError: await
    session.rollback(); log(user.id)`), the value is captured before the `try` instead
    (`user_id = user.id`) and the handler uses it: a handler should not need the database
    that just failed. That needs the object loaded and not expired before the `try`, and the
    attribute unchanged in the `try`; otherwise the finding has no automatic fix.

    Left alone: factories built with `expire_on_commit=False` when nothing rolls back; a
    refresh already there; `await obj.awaitable_attrs.name`; objects not attached to that
    session; attributes set after the commit (they are not reloaded); a later load of the same
    model through the session (it may refresh the instance); sync code (the implicit reload
    works there). Reads of relationships no query loaded are SQF006's; reads after `expunge()` are SQF001's; an
    object returned out of its scope is SQF005's. A read after a rollback is reported instead
    of SQF004's `expunge_all()` for the same rollback: the expunge would turn the
    MissingGreenlet into a DetachedInstanceError.

    ## Fix safety
    Safe: the refresh loads exactly what the implicit reload would have loaded, at the point
    where the commit or rollback left the instance, before any change the code makes to it.
    The captured value in an error handler is the value the object held before the failed
    transaction, which is what a reload after the rollback reads back.
    """
    example_project = PROJECT
    examples = EXAMPLES
    valid = VALID

    @classmethod
    def wants(cls, index, facts) -> bool:
        return facts is None or facts.has_async and (bool(_expiring(index) & facts.all_methods) or any(
            hands_session_to_enders(index, facts, q) or hands_session_to_services(index, facts, q)
            or may_be_handed_expired(index, facts, q, _expiring(index))
            for q, fn in facts.functions.items() if fn.is_async))

    def run(self, ctx: FileContext) -> Iterator[Finding]:
        for qualname, fn in functions(ctx.module, ctx):
            if fn.asynchronous is None or not (_expiring(ctx.index) & shape(ctx, fn, qualname).methods
                                               or hands_session_to_enders(ctx.index, ctx.facts, qualname)
                                               or hands_session_to_services(ctx.index, ctx.facts, qualname)
                                               or may_be_handed_expired(ctx.index, ctx.facts, qualname,
                                                                        _expiring(ctx.index))):
                continue
            evs = events(fn, ctx)
            for ref in self.async_sessions(ctx, fn, qualname, evs):
                for expiry in self._walk(ctx, qualname, evs, ref):
                    if expiry.caller is not None and all(guarded(r[0]) for r in expiry.reads.values()):
                        continue  # the function catches what the reload raises and falls back
                    finding = self._finding(ctx, fn, evs, ref, expiry)
                    if len(expiry.reads) == 1:
                        finding.subject = next(iter(expiry.reads))
                    if expiry.kind == "rollback" and expiry.caller is None:
                        finding.at = expiry.event.node
                    yield finding

    # sessions -------------------------------------------------------------------
    @staticmethod
    def async_sessions(ctx: FileContext, fn: cst.FunctionDef, qualname: str, evs: list[Event]) -> list[SessionRef]:
        """The async sessions ``fn`` uses: its scopes, parameters, ``self.<attr>`` sessions and
        those its callers hand in, each with what is known of its expiry."""
        scoped = scoped_sessions(ctx, fn, qualname, evs)
        refs = {r.name: r for r in sessions(ctx, fn, qualname, evs).values() if r.block is None and not r.decorated}
        unknown = _project_expiry(ctx)
        facts = ctx.function_facts(qualname)
        for p in facts.params if facts is not None else ():
            if p.name in refs and not ctx.index.param_dependency(p)[0]:
                # a session handed in by a caller or a middleware: its factory is not known here
                refs[p.name] = SessionRef(p.name, refs[p.name].is_async, unknown)
        for name, given in caller_sessions(ctx, qualname).items():  # `session` every caller opens and hands in
            refs.setdefault(name, given)
        mod = ctx.facts
        if mod is not None and "." in qualname:  # `self.session` of a repository or unit of work
            cls = qualname.rsplit(".", 1)[0]
            for e in evs:
                owner = e.owner or ""
                if e.kind == EventKind.CALL and owner.startswith("self.") and owner.count(".") == 1 and owner not in refs \
                        and ctx.index.self_session(mod, cls, owner[5:]):
                    refs[owner] = SessionRef(owner, None, unknown)
        out = []
        for ref in [*scoped, *refs.values()]:
            if ref.is_async is False:
                continue
            if ref.is_async is None:
                awaited = awaited_calls(fn)
                if not any(id(c) in awaited for c in calls_on(fn, ref.name)):
                    continue
            out.append(ref)
        return out

    # the walk -----------------------------------------------------------------------
    def _handoffs(self, ctx: FileContext, qualname: str, fn: cst.FunctionDef, depth: int) -> list[Handoff]:
        """The calls of ``qualname`` (a caller, in its own file) that hand on an instance one
        of its sessions expired, with that session."""
        def compute() -> list[Handoff]:
            facts = ctx.function_facts(qualname)
            if facts is None or not facts.is_async:
                return []
            evs = events(fn, ctx)
            out: list[Handoff] = []
            for ref in self.async_sessions(ctx, fn, qualname, evs):
                self._walk(ctx, qualname, evs, ref, out, depth)
            return out

        # by depth too: the walk stops following callers past a depth, and the file's context
        # outlives this file's check (see expiry_handoff.context_of), so an answer cut short
        # for one file must not serve another
        return ctx.cached(("sqf010-handoffs", qualname, depth), compute)

    def _walk(self, ctx: FileContext, qualname: str, evs: list[Event], ref: SessionRef,
              handoffs: list[Handoff] | None = None, depth: int = 0) -> list[Expiry]:
        S = ref.name
        if ref.block is not None:
            region = [e for e in evs if inside(e, ref.block) and e.node is not ref.block]
        else:
            region = list(evs)
        begins = {id(e.node) for e in region if e.kind == EventKind.WITH and begins_block(e.node, S)}  # type: ignore[arg-type]
        objs: dict[str, Tracked] = _injected(ctx, qualname, S) if ref.block is None else {}
        owned = Collections(caller_collections(ctx, qualname, S) if ref.block is None else {}, {})
        rounds: list[Round] = []
        carried_only: list[Expiry] = []  # rollbacks further down a call: they count for the next round's reads
        new: dict[str, Model] = {}
        out: list[Expiry] = []
        if ref.block is None:  # instances a caller expired and handed in with this session
            entered = caller_expired(ctx, qualname, S, self._handoffs, depth, _expiring(ctx.index))
            objs.update(entered)
            out.extend(obj.expiry for obj in entered.values() if obj.expiry is not None)
        active = False
        reload: tuple[set[int], str | None] | None = None  # (nodes inside the load call, model)
        # a call ending S, once its arguments ran: its nodes, its event, the expiry, the callee, what it spares
        handed: tuple[set[int], Event, str | None, str | None, set[str]] | None = None
        built: dict[str, tuple[str, int | str]] = {}  # `svc = Service(S)`: the class, where S is passed
        ctor: tuple[cst.CSTNode | None, tuple[str, int | str]] | None = None
        for e in region:
            if handed is not None and id(e.node) not in handed[0]:
                self._expire_handed(out, handed, objs, owned.bags)
                handed = None
            if reload is not None and id(e.node) not in reload[0]:
                for obj in [*objs.values(), *owned.bags.values()]:
                    if obj.expiry is not None and reload[1] in (None, obj.model.name):
                        obj.expiry, obj.shadowed = None, None  # the load may have refreshed it
                reload = None
            ended = session_ended_by(ctx, qualname, e, S) if e.kind in (EventKind.USE, EventKind.CALL) else None
            served = service_ended_by(ctx, e, S, built) if ended is None and e.kind in (EventKind.USE, EventKind.CALL) \
                else None
            if e.kind == EventKind.USE and e.name == S and served is None:
                made = constructed_with(ctx, e)
                ctor = (e.value, made) if made is not None else ctor
            if (ended is None or "rollback" not in ended[1]) and any(inside(e, r.loop.body) for r in rounds):
                deeper = session_ended_by(ctx, qualname, e, S, deep=True)
                if deeper is not None and "rollback" in deeper[1]:  # the next round reads what it expired
                    at = Event(EventKind.CALL, deeper[0], e.path, owner=S, index=e.index)
                    carried_only.append(Expiry(at, "rollback", via=dotted(deeper[0].func), expires_all=True))
            if ended is not None or served is not None:  # `await helper(db)`, where helper commits or rolls back db
                call, ends = ended or served  # type: ignore[misc]
                kind = "commit" if "commit" in ends and ref.expire_on_commit else \
                    "rollback" if "rollback" in ends and goes_on_after(e, call) else None
                at = Event(EventKind.CALL, call, e.path, owner=S, index=e.index)
                # a method of an object built with the session may refresh or delete what it is given
                spared = {a.value.value for a in call.args if isinstance(a.value, cst.Name)} if served else set()
                via = dotted(call.func) or cst.Module([]).code_for_node(call.func)
                handed = (node_ids(call), at, kind, via, spared)  # its arguments are read before it
                active = False
            elif e.kind == EventKind.ASSIGN:
                value = e.value.expression if isinstance(e.value, cst.Await) else e.value
                if ctor is not None and value is ctor[0]:
                    built[e.name or ""] = ctor[1]
                else:
                    built.pop(e.name or "", None)
                self._bind(ctx, e, ref, objs, owned, new)
                if isinstance(e.node, cst.For) and e.name in objs and objs[e.name].binding is e:
                    rounds.append(Round(e.node, e.name, objs[e.name], len(out)))
            elif e.kind == EventKind.ENDWITH and id(e.node) in begins:
                self._expire(out, e, "commit" if ref.expire_on_commit else None, objs, owned.bags)
                out[-1].kind = "begin"
                active = False
            elif e.kind == EventKind.CALL and e.owner == S:
                method = e.name
                X = e.args[0] if e.args else None
                if method == "add" and X in new:
                    objs[X] = Tracked(new.pop(X), None, False, new_in_tx=True)  # type: ignore[index, arg-type]
                elif method == "add_all":
                    for X in listed_names(e.node):  # type: ignore[arg-type]
                        if X in new:
                            objs[X] = Tracked(new.pop(X), None, False, new_in_tx=True)
                elif method == "commit":
                    self._expire(out, e, "commit" if ref.expire_on_commit else None, objs, owned.bags)
                    active = False
                elif method == "flush":
                    self._expire(out, e, None, objs, owned.bags, flush=True)
                    active = True
                elif method == "rollback":
                    if active or handler_block(e) is not None:
                        self._expire(out, e, "rollback", objs, owned.bags)
                    active = False
                elif method == "refresh" and X in objs:
                    objs[X].expiry, objs[X].shadowed = None, None  # type: ignore[index]
                    active = True
                elif method == "delete" and X is not None and (X in objs or X == "self"):
                    deleted = objs.get(X) or _self_instance(ctx, qualname)
                    if deleted is not None:  # persistent: a rollback restores it expired
                        deleted.deleted, deleted.deleted_commit = True, None
                        objs[X] = deleted
                    active = True
                elif method == "expunge" and X in objs:
                    del objs[X]  # type: ignore[arg-type]
                elif method in _DETACH_ALL:
                    break
                elif method in names.LOAD_METHODS:
                    active = True
                    model = binding_of(ctx, e.node, {S: ref}).model  # type: ignore[arg-type]
                    reload = (node_ids(e.node), model)
                elif method in names.ASYNC_METHODS:
                    active = True
            elif e.kind in (EventKind.READ, EventKind.WRITE) and e.owner in objs:
                obj = objs[e.owner]  # type: ignore[index]
                if e.kind == EventKind.WRITE:
                    obj.dirty.add(e.name or "")
                    if not aug_assigned(e):
                        obj.loaded.add(e.name or "")
                        if obj.shadowed is not None:
                            obj.shadowed[1].add(e.name or "")
                        continue
                self._read(e, e.owner or "", e.name or "", obj)
            elif e.kind == EventKind.USE and e.name in objs and e.owner:  # `_out(template)` reads template.x
                passed = handoff(ctx, e, e.name or "", S, objs[e.name or ""]) if handoffs is not None else None
                if passed is not None and handoffs is not None:  # a caller's walk: what it hands on expired
                    handoffs.append(passed)
                where = call_argument(e)
                callee = ctx.qualify(e.owner) if not e.owner.startswith("self.") else None
                for attr in ctx.index.param_reads(callee, where[1]) if where is not None else ():
                    used = self._read(e, e.name or "", attr, objs[e.name or ""])
                    if used is not None:
                        used.through[e.name or ""] = e.owner
                        break
        if handed is not None:  # the region's last call: a loop's next round still reads what it expired
            self._expire_handed(out, handed, objs, owned.bags)
        return [x for x in out if x.reads] + self._carried(ctx, region, rounds, out, carried_only, S, handoffs)

    @classmethod
    def _expire_handed(cls, out: list[Expiry], handed: tuple[set[int], Event, str | None, str | None, set[str]],
                       objs: dict[str, Tracked], bags: dict[str, Tracked]) -> None:
        """The commit or rollback of a call handed the session, once its arguments ran."""
        cls._expire(out, handed[1], handed[2], objs, bags, spared=handed[4])
        out[-1].via = handed[3]

    @staticmethod
    def _carried(ctx: FileContext, region: list[Event], rounds: list[Round], out: list[Expiry],
                 deeper: list[Expiry], S: str, handoffs: list[Handoff] | None) -> list[Expiry]:
        """Reads early in a loop's round of an element that an expiry later in the previous
        round expired (each a record of its own, unless a read is already reported). A
        rollback further down a call counts here: whoever handles the failure, the instances
        stay expired for the next round. In a caller's walk, the element handed with the
        session to a project function early in the round is such a hand-off too."""
        reported = {id(r.node) for x in out for reads in x.reads.values() for r in reads}
        found: list[Expiry] = []
        for watch in rounds:
            start = carried_reads(region, watch, out[watch.start:] + deeper, S)
            if start is None:
                continue
            for e, loaded in start.handed if handoffs is not None else ():
                passed = round_handoff(ctx, e, watch, start, S, loaded)
                if passed is not None:
                    handoffs.append(passed)  # type: ignore[union-attr]
            if not start.reads or any(id(r.node) in reported for r in start.reads):
                continue
            cause = start.cause(start.reads[0])
            record = Expiry(cause.event, cause.kind, via=cause.via, expires_all=True, carried=(watch.loop, watch.X))
            record.reads[watch.X], record.objects[watch.X] = start.reads[:1], watch.obj
            found.append(record)
        return found

    @staticmethod
    def _read(e: Event, X: str, attr: str, obj: Tracked) -> Expiry | None:
        """Record ``X.attr`` read at ``e`` when the expiry it follows expired it (that expiry)."""
        if attr not in obj.model.columns | obj.model.deferred | obj.eager:
            return None
        for expiry, loaded, only in [(obj.expiry, obj.loaded, obj.only), *([obj.shadowed] if obj.shadowed else [])]:
            if expiry is None or attr in loaded or only is not None and attr not in only:
                return None
            if X in expiry.reads:
                return None
            if not may_follow(expiry.event, e):
                continue
            expiry.reads[X] = [e if e.kind == EventKind.READ else Event(EventKind.READ, e.node, e.path, owner=X, name=attr, index=e.index)]
            expiry.objects[X] = obj
            return expiry
        return None

    def _bind(self, ctx: FileContext, e: Event, ref: SessionRef, objs: dict[str, Tracked], owned: Collections,
              new: dict[str, Model]) -> None:
        X = e.name or ""
        reached = _reached(ctx, e.value, objs)
        objs.pop(X, None)
        new.pop(X, None)
        owned.forget(X)
        if reached is not None:  # `user = sub.user`: the related instance is in the same session
            objs[X] = Tracked(reached, e, True, new_in_tx=False)
            return
        if isinstance(e.node, cst.For):  # `for user in users:` over a loaded list
            bag = iterated(e.node, owned.bags)
            if bag is not None:
                objs[X] = bag.element(e)
            return
        element = taken(e.value, owned.bags)
        if element is not None:  # `user = users_by_email.get(email)`
            objs[X] = element[0].element(e, element[1])
            return
        if bind_collection(ctx, e, ref.name, {ref.name: ref}, owned,
                           lambda model, at, eager: Tracked(model, at, False, new_in_tx=False, eager=eager)):
            return
        binding = binding_of(ctx, e.value, {ref.name: ref})
        model = model_for(ctx, binding.model)
        if binding.kind == BindingKind.NEW and model is not None:
            new[X] = model
            return
        bound = bound_through(ctx, e, ref.name, index_mod.Scope("session", ref.name, ref.is_async, ref.expire_on_commit,
                                                      False, "session"))
        if bound is not None:
            objs[X] = Tracked(bound.model, e, bound.optional, new_in_tx=False)

    @staticmethod
    def _expire(out: list[Expiry], e: Event, kind: str | None, objs: dict[str, Tracked], bags: dict[str, Tracked],
                flush: bool = False, spared: set[str] | None = None) -> None:
        """A commit (kind None: one that does not expire), a rollback, or a flush (which
        expires nothing but the columns the database sets on the rows it updates), of the
        instances ``objs`` and of the collections ``bags``."""
        expiry = Expiry(e, "flush" if flush else kind or "commit", expires_all=kind is not None and not flush)
        out.append(expiry)
        for table in (objs, bags):
            ExpiredReadInAsync._expire_in(expiry, e, kind, table, flush, spared or set())

    @staticmethod
    def _expire_in(expiry: Expiry, e: Event, kind: str | None, objs: dict[str, Tracked], flush: bool,
                   spared: set[str]) -> None:
        for X in list(objs):
            if X in spared:
                continue
            obj = objs[X]
            if kind == "rollback" and obj.new_in_tx:
                del objs[X]  # transient again: its values stay as they were
                continue
            if obj.deleted:
                if flush:
                    continue
                if kind != "rollback":  # a commit: detached (not expired) once it succeeds
                    obj.deleted_commit = obj.deleted_commit or e
                    continue
                if obj.deleted_commit is not None and not failed_in(obj.deleted_commit, e):
                    del objs[X]  # its delete was committed before: it is detached, not restored
                    continue
                obj.deleted, obj.deleted_commit = False, None  # restored, and expired below
            expires = kind is not None or obj.dirty and obj.model.refetched - obj.dirty and not obj.new_in_tx
            if expires:
                in_handler = handler_block(e) is not None and obj.expiry is not None
                obj.shadowed = (obj.expiry, obj.loaded, obj.only) if in_handler else None  # type: ignore[assignment]
            if kind is not None:
                obj.expiry, obj.loaded, obj.only = expiry, set(), None
            elif expires:
                # `onupdate=func.now()`: the UPDATE sets it in the database and the flush expires it
                expiry.refetch = True
                obj.expiry, obj.loaded, obj.only = expiry, set(), frozenset(obj.model.refetched - obj.dirty)
            obj.dirty = set()
            if not flush:
                obj.new_in_tx = False

    # the finding -----------------------------------------------------------------
    def _finding(self, ctx: FileContext, fn: cst.FunctionDef, evs: list[Event], ref: SessionRef,
                 expiry: Expiry) -> Finding:
        S = ref.name
        first = min((reads[0] for reads in expiry.reads.values()), key=lambda r: r.index)
        if expiry.caller is not None:  # nothing to refresh here for every caller: report only
            X = next(iter(expiry.reads))
            return self.finding(first.node, f"`{X}.{expiry.reads[X][0].name}` read here, but {expiry.caller.describe(X)}: "
                                f"the implicit reload raises MissingGreenlet in async code; refresh `{X}` in the "
                                f"caller (or `await {S}.refresh({X})` here) before the read", None)
        listed = ", ".join(f"`{X}.{reads[0].name}`" + (f" (in `{expiry.through[X]}({X})`)" if X in expiry.through else "")
                           for X, reads in expiry.reads.items())
        objects = ", ".join(f"`{X}`" for X in expiry.reads)
        cause = cause_of(expiry, S, ctx.position(expiry.event.node).start.line)
        message = (f"{listed} read after {cause} expired {objects}: the implicit reload "
                   f"raises MissingGreenlet in async code; ")
        if expiry.refetch:
            message = (f"{listed} read after {cause}, whose flush updated the row of {objects}: the database "
                       f"sets that column on update, so the flush expired it (whatever expire_on_commit says) "
                       f"and the implicit reload raises MissingGreenlet in async code; ")
        if expiry.carried is not None:
            return self.finding(first.node, self._carried_message(ctx, S, expiry, cause), None)
        related = [f"`{X}.{r.name}`" for X, reads in expiry.reads.items() for r in reads
                   if r.name not in expiry.objects[X].model.columns | expiry.objects[X].model.deferred]
        if related:  # a refresh loads the columns, not the relationships
            message += (f"{', '.join(related)} is a relationship its query loaded: load the objects again with "
                        f"their relationships (or take what is needed before it)")
            return self.finding(first.node, message, None)
        handler = handler_block(expiry.event) if expiry.kind == "rollback" else None
        if handler is not None and not expiry.through and all(inside(r, handler) for reads in expiry.reads.values() for r in reads):
            fix = self._capture(ctx, fn, evs, ref, expiry, handler)
            message += "take the values before the `try` (the handler should not reload from a failed session)"
            if fix is None:
                message += ": no automatic fix (the object is expired or changed before the handler)"
            return self.finding(first.node, message, fix)
        if any(obj.binding is not None and obj.binding.index > expiry.event.index for obj in expiry.objects.values()):
            # taken out of a collection loaded before the expiry: nothing to refresh right after it
            message += " and ".join(f"`await {S}.refresh({X})`" for X in expiry.reads) + " before the read"
            return self.finding(first.node, message, None)
        message += " and ".join(f"`await {S}.refresh({X})`" for X in expiry.reads) + " after it"
        return self.finding(first.node, message, self._refresh(evs, ref, expiry))

    @staticmethod
    def _carried_message(ctx: FileContext, S: str, expiry: Expiry, cause: str) -> str:
        X = next(iter(expiry.reads))
        read = expiry.reads[X][0]
        what = "relationship" if read.name not in expiry.objects[X].model.columns | expiry.objects[X].model.deferred \
            else "column"
        return (f"`{X}.{read.name}` read at the start of a round of the loop: in the round before, {cause} expired "
                f"every instance `{S}` holds, and `{X}` is the next element of a collection loaded before the loop, "
                f"so its {what} is expired and the implicit reload raises MissingGreenlet in async code; load each "
                f"element again inside the loop (by its id), or take the values before the loop")

    def _refresh(self, evs: list[Event], ref: SessionRef, expiry: Expiry) -> Fix | None:
        S = ref.name
        at = expiry.event
        if at.kind == EventKind.ENDWITH:
            target: cst.CSTNode = at.node
        else:
            try:
                target = at.statement
            except LookupError:
                return None
            if not sole_call(target, at.node):
                return None
        stmts: list[cst.BaseStatement] = []
        for X, obj in sorted(expiry.objects.items(), key=lambda kv: expiry.reads[kv[0]][0].index):
            refresh = session_call(S, "refresh", [X], True)
            if obj.optional and not known_present(evs, obj, X, at):
                stmts.append(cst.If(test=cst.parse_expression(f"{X} is not None"), body=cst.IndentedBlock([refresh])))
            else:
                stmts.append(refresh)
        return Fix([Edit(target, after=stmts)])

    def _capture(self, ctx: FileContext, fn: cst.FunctionDef, evs: list[Event], ref: SessionRef, expiry: Expiry,
                 handler: cst.IndentedBlock) -> Fix | None:
        """`user_id = user.id` before the `try` whose handler rolled back; the handler reads it."""
        rollback = expiry.event
        try_index = next((i for i in range(len(rollback.path) - 1, -1, -1)
                          if isinstance(rollback.path[i], cst.Try) and rollback.path[i + 1] is handler), None)
        if try_index is None:
            return None
        try_node = rollback.path[try_index]
        start = next(e for e in evs if inside(e, try_node))
        probe = Event(EventKind.USE, try_node, rollback.path[: try_index + 1])
        edits: list[Edit] = []
        before: list[cst.BaseStatement] = []
        taken: set[str] = set()
        for X in expiry.reads:
            obj = expiry.objects[X]
            if obj.binding is None or not reachable_only_through(probe, obj.binding) or obj.optional \
                    and not known_present(evs, obj, X, start):
                return None
            attrs = {r.name for r in evs if r.kind == EventKind.READ and r.owner == X and inside(r, handler)
                     and r.index > rollback.index}
            handler_reads = [r for r in evs if r.kind == EventKind.READ and r.owner == X and r.name in attrs
                             and inside(r, handler) and r.index > rollback.index]
            for e in evs[obj.binding.index + 1: handler_reads[-1].index]:
                if e.owner == X and e.kind in (EventKind.WRITE, EventKind.METHOD) and (e.kind == EventKind.METHOD or e.name in attrs):
                    return None  # changed (or maybe changed) before the read: the old value is not it
                if e.kind == EventKind.CALL and e.owner == ref.name and e.name in ("commit", "rollback", "refresh") \
                        and e.index < start.index:
                    return None  # expired (or refreshed) before the try: keep it simple
                if e.kind == EventKind.ASSIGN and e.name == X:
                    return None
            for attr in sorted(attrs):  # type: ignore[type-var]
                local = unique_name(fn, f"{X}_{attr}", taken)
                taken.add(local)
                before.append(cst.parse_statement(f"{local} = {X}.{attr}"))
                for r in handler_reads:
                    if r.name == attr:
                        edits.append(Edit(r.node, replace=to_name(local)))
        return Fix([Edit(try_node, before=before), *edits])


# --------------------------------------------------------------------------- helpers


def _expiring(index) -> set[str]:
    """The session methods that may expire something: a flush too, when a model of the project
    has a column the database sets on update."""
    if index is not None and any(m.refetched for m in index.models().values()):
        return _EXPIRING | {"flush"}
    return _EXPIRING


def _project_expiry(ctx: FileContext) -> bool:
    """Does a session whose factory cannot be seen (a parameter, `self.session`) expire on
    commit? Not when every async session the project makes is built with
    `expire_on_commit=False`; otherwise the configured assumption."""
    index = ctx.index
    return False if index.sessions_never_expire(async_only=True) else index.assume_expire_on_commit


def _injected(ctx: FileContext, qualname: str, S: str) -> dict[str, Tracked]:
    """The endpoint's parameters that FastAPI fills with an instance loaded through the same
    session as its parameter ``S`` (`admin: User = Depends(current_admin)`, where every
    session the dependency uses is the request's cached `Depends(get_db)` one): they are
    attached to ``S`` from the start."""
    index = ctx.index
    facts = ctx.function_facts(qualname)
    own = next((p for p in facts.params if p.name == S), None) if facts is not None else None
    if own is None:
        return {}
    dep, cache = index.param_dependency(own)
    provider = index.session_provider(dep) if dep and cache else None
    if provider is None:
        return {}
    out: dict[str, Tracked] = {}
    for p in facts.params:  # type: ignore[union-attr]
        other, other_cache = index.param_dependency(p)
        model = model_for(ctx, p.annotation) if other and other_cache and p is not own else None
        if model is None:
            continue
        origins = index.value_sessions(other)
        if origins and all(o.open and o.use_cache and o.provider == provider for o in origins):
            out[p.name] = Tracked(model, None, False, new_in_tx=False)
    return out


def _self_instance(ctx: FileContext, qualname: str) -> Tracked | None:
    """`self` in a method of a mapped class, as an instance of the session from the start of
    the method (for a method that deletes it: only a persistent instance can be deleted)."""
    owner, _, _ = qualname.rpartition(".")
    fn = function_named(ctx, qualname)
    if not owner or fn is None or not fn.params.params or fn.params.params[0].name.value != "self" \
            or any(dotted(d.decorator) in ("staticmethod", "classmethod") for d in fn.decorators):
        return None
    model = ctx.index.instance_model(ctx.qualify(owner))
    if model is None:
        return None
    start = Event(EventKind.ASSIGN, fn, (fn.body,), name="self", index=-1)
    return Tracked(model, start, False, new_in_tx=False)


def _reached(ctx: FileContext, value: cst.BaseExpression | None, objs: dict[str, Tracked]) -> Model | None:
    """The model of ``Y.rel`` when ``Y`` is an instance of the session and ``rel`` one of its
    relationships: the related instance is loaded into the same session (None when the
    relationship is unknown, or a collection: then no column is read on the value itself)."""
    if not isinstance(value, cst.Attribute) or not isinstance(value.value, cst.Name):
        return None
    owner = objs.get(value.value.value)
    if owner is None:
        return None
    rel = value.attr.value
    if rel not in owner.model.relationships:
        return None
    return model_for(ctx, owner.model.targets.get(rel))

