"""The index's records: what extraction finds in one module (plain, picklable data), and the
derived records the queries answer with."""

from __future__ import annotations

from dataclasses import dataclass, field

from .infer import Stage


@dataclass
class Factory:
    name: str
    builder: str  # qualified name of what built it
    is_async: bool | None
    expire_on_commit: bool | None  # None: not stated (SQLAlchemy's default is True)
    line: int
    scoped: bool = False
    bind: str | None = None  # the engine expression it is bound to, as written
    via: str | None = None  # built by calling this project function (which returns a factory)
    via_index: int | None = None  # ... as this item of the tuple it returns (`Maker, engine = setup()`)


@dataclass
class HandOff:
    """A parameter, or a path into it, passed to another function."""

    param: str
    path: str  # "" for the parameter itself, else the dotted path passed (`job.project` -> "project")
    callee: str  # qualified, as the index resolves calls
    position: int = -1  # positional index of the argument, or -1
    keyword: str | None = None  # its keyword, when passed by keyword
    guarded: bool = False  # made only for some values of another parameter (see .paths)


@dataclass
class Param:
    name: str
    depends: str | None = None  # qualified name of the Depends target
    use_cache: bool = True
    annotation: str | None = None  # qualified name of the annotation's head
    alias: str | None = None  # qualified name of an Annotated alias used as annotation


@dataclass
class Origin:
    """Where a local value came from."""

    kind: str  # "new" (constructed), "loaded" (through session `via`), "call" (project call), "param", "other"
    via: str | None = None  # the session expression it was loaded through / a session argument
    callee: str | None = None
    alt: tuple[str | None, ...] = ()  # further candidates for `via` (arguments that may be sessions)


@dataclass
class CallSite:
    callee: str
    line: int
    args: list[Origin]
    kwargs: dict[str, Origin]
    arg_names: list[str | None]
    kwarg_names: dict[str, str | None]
    table: str | None = None  # called through this module-level table of functions
    # (`HANDLERS[action](db, obj)`): a call of each function in it, with the same arguments


@dataclass(frozen=True)
class Holder:
    """Where a session is kept for later code to read back: ``context["db_session"]``,
    ``request.state.db``, ``g.db``. Known by the last name of the object holding it and the
    key or attribute (``g.db`` and ``g.pop("db")`` name one holder)."""

    owner: str  # "context", "state", "g"; "self" for a class's own attribute
    key: str

    @classmethod
    def of(cls, base: str, key: str) -> Holder:
        """The holder ``<base>[key]`` / ``<base>.key``, ``base`` a dotted name."""
        return cls(base.rsplit(".", 1)[-1], key)


@dataclass
class HeldSession:
    """``holder = factory(...)``, or a session the function opened stored there."""

    holder: Holder
    factory: str  # qualified name called to open it (a candidate, as for OpenedSession)


@dataclass
class OpenedSession:
    factory: str  # qualified name called to open it
    closed_on_return: bool  # opened in a with-block that the function leaves before returning
    yielded: bool  # the function yields (or returns) this session
    expire_on_commit: bool | None = None  # stated in the call itself: Session(e, expire_on_commit=False)
    begin: bool = False  # opened as `factory.begin()`: commits when the block exits
    name: str | None = None  # the local name holding it


@dataclass
class SessionDecorator:
    """A decorator whose wrapper opens a session, passes it to the decorated function and
    (maybe) commits after it returns."""

    factory: str
    expire_on_commit: bool | None
    commits: bool
    position: int | None  # positional index the session is passed at
    keyword: str | None  # or the keyword it is passed as


@dataclass
class Attribute:
    kind: str  # "column", "deferred", "relationship"
    lazy: str | None = None  # relationship loader strategy ("select" is SQLAlchemy's default);
    # "raise" for a deferred column declared with raiseload
    target: str | None = None  # relationship target class, as written
    collection: bool | None = None  # a relationship holding a collection (None: not declared)
    line: int = 0
    refetched: bool = False  # a column the database sets on UPDATE (`onupdate=func.now()`,
    # `server_onupdate=`): a flush that updates the row expires it, whatever expire_on_commit says
    join_depth: bool = False  # a relationship declared with `join_depth=`: eager loading goes
    # that deep along a cycle instead of stopping at it


@dataclass
class SessionEnd:
    """A commit or rollback of a session the function was given (a parameter, or
    ``self.<attr>``): made here, or by the project function it hands that session to."""

    session: str  # a parameter's name, "self.<attr>", or a session it opened (handed on);
    # "self." for a call of one of its own methods (which may end the same self sessions)
    method: str  # "commit", "rollback" or "flush"; "" for a call that passes the session on
    callee: str | None = None  # that call, qualified, or as written when it starts with "self."
    passed: int | str | None = None  # the position (int) or keyword the session is passed at
    on_exit: bool = False  # made after a context manager's yield, on every path: at the scope's exit
    caught: bool = False  # in the body of a try whose handler catches any error: a failure stays here
    binds_self: bool = False  # called on an object (`self.x(db)`, `item.save(db)` on a typed
    # parameter), which fills a method's `self`; not when named by its class (`Repo.save(repo, db)`)


@dataclass
class SelfEnd:
    """What a context manager's ``__exit__``/``__aexit__`` does to the session it holds on
    ``self`` when the block ended without an error (see index.managers.exit_ends)."""

    attr: str  # self.<attr>
    method: str  # a managers.ExitEnd value: "commit", "rollback" or "close"
    certain: bool  # on every such path (not under another condition, nor after a return that may be taken)


@dataclass
class ClassFacts:
    qualname: str
    line: int
    bases: list[str]
    keywords: dict[str, str]
    attributes: dict[str, Attribute] = field(default_factory=dict)
    backrefs: list[tuple[str, str, str]] = field(default_factory=list)  # (target, name, lazy)
    abstract: bool = False
    tablename: bool = False
    # @property / @hybrid_property / @cached_property name -> the `self.<attr>` names it reads;
    # `__str__` and `__repr__` too (what formatting the object reads); a plain method as
    # "name()" -> what it reads on every call (see index.model_reads)
    properties: dict[str, list[str]] = field(default_factory=dict)
    mapped_by_decorator: bool = False  # `@registry.mapped`
    external_bases: bool = False  # a base is imported from outside the project (a plugin's Model)
    generic_args: list[str] = field(default_factory=list)  # `Repo[User]` bases: User (qualified)
    values: dict[str, str] = field(default_factory=dict)  # class-level `model = User` (qualified)
    eager_defaults: bool = False  # `__mapper_args__ = {"eager_defaults": True}`: flushes fetch them back


@dataclass
class Injection:
    """A session a middleware's `__call__` hands its handler in ``data[key]`` (see
    :mod:`.middlewares`), and what it does with it after the handler returns."""

    key: str
    name: str  # the middleware's local name for it
    after: list[str] = field(default_factory=list)  # methods called on it, "use", "unknown"


@dataclass
class Function:
    qualname: str
    line: int
    is_async: bool
    is_generator: bool
    params: list[Param]
    returns: str | None
    opened: list[OpenedSession] = field(default_factory=list)
    yields_param: str | None = None  # yields/returns one of its own parameters as is
    calls: list[CallSite] = field(default_factory=list)
    session_names: dict[str, str] = field(default_factory=dict)  # local name -> factory called
    decorators: list[str] = field(default_factory=list)
    commits: bool = False  # calls .commit() on a session it holds
    commits_after_yield: bool = False  # ... after its yield (a context manager committing on exit)
    rolls_back_after_yield: bool = False  # rolls back after its yield on every path (`finally:`)
    closes_after_yield: bool = False  # closes the session it yields after the yield (`finally:`
    # close(), or the yield inside the with-block that opened it)
    returns_self_attr: str | None = None  # `return self.<attr>` (`__enter__` returning its session)
    yield_in_begin: bool = False  # yields inside `with session.begin()` / `factory.begin()`
    yields_kind: str | None = None  # "session" or "service" (an object built around a session)
    yields_class: str | None = None  # qualified name of that object's class
    returns_factory: Factory | None = None
    returns_factories_at: dict[int, Factory] = field(default_factory=dict)  # `return Maker, engine`: by position
    session_decorator: SessionDecorator | None = None
    yield_sources: list[str] = field(default_factory=list)  # what made the yielded session(s)
    returns_class: str | None = None  # the class a return annotation names (User | None -> User)
    returns_shape: str | None = None  # "one", "optional" or "list"
    # Inferred from the body when there is no annotation (see .infer): what a `return` loads
    # (model as written or "self.<attr>", and an infer.Stage value), and the calls whose
    # results it returns (qualified, or "self.<...>").
    returns_load: tuple[str, str] | None = None
    returns_calls: list[str] = field(default_factory=list)
    # every `return` is a dict literal: per constant key, the load the name there holds (model
    # as written, stage), where all the returns naming that key agree: `prep["chat"]`
    returns_keys: dict[str, tuple[str, str]] = field(default_factory=dict)
    returns_built: str | None = None  # every `return` gives a name bound to `Cls(...)`: Cls, qualified
    eager: set[str] = field(default_factory=set)  # attributes named in selectinload(...) & co
    opaque_options: bool = False  # passes loader options the index cannot read (`*opts`, raiseload, "*")
    checks_loads: bool = False  # catches MissingGreenlet or looks at load state (`.unloaded`, `.awaitable_attrs`)
    rebound_params: set[str] = field(default_factory=set)  # parameters it assigns another value to
    detaches: bool = False  # expunges objects from its sessions (what it returns is detached)
    # qualified callees of its with-items; a with-item that is a value, not a call
    # (`async with self.session as s`), as WITH_VALUE + its dotted name
    with_callees: list[str] = field(default_factory=list)
    methods: set[str] = field(default_factory=set)  # x.method(...) names it calls
    # what it calls to make a session it uses at once and never names (`Maker().query(...)`):
    # the callee qualified, or `<class>.<attr>` for `obj.attr()` on a local built as `obj = Class(...)`
    inline_opens: list[str] = field(default_factory=list)
    called: set[str] = field(default_factory=set)  # name(...) it calls
    add_owners: set[str] = field(default_factory=set)  # X in `X.add(name)` calls
    added_params: set[str] = field(default_factory=set)  # its parameters p in `X.add(p)` calls
    stores: set[str] = field(default_factory=set)  # X in `X[k] = v`, `X.append(v)`, `X.setdefault(k, v)`...
    # the session factories it builds and hands out (returns, or stores on an object:
    # `app.state.maker = async_sessionmaker(engine)`): (makes async sessions, expire_on_commit)
    built_factories: list[tuple[bool, bool | None]] = field(default_factory=list)
    # s -> X for `X.add(s)`, `X.append(s)` on every path, X a container of its module or class
    # (not a local or a parameter): kept only when every session it hands out (returns or
    # yields) was added so before
    registers: dict[str, str] = field(default_factory=dict)
    kept_params: set[str] = field(default_factory=set)  # its parameters among those stored values v
    # (`.add(p)` aside: mostly a session's)
    param_reads: dict[str, list[str]] = field(default_factory=dict)  # parameter -> attributes it reads of it
    param_statements: list[str] = field(default_factory=list)  # parameters it runs a statement on
    # (`p.execute(...)`, `p.get(...)`, `p.connection()`: names.STATEMENT_METHODS)
    # parameter -> dotted attribute paths it reads of it, and where it hands them on (see .paths)
    param_paths: dict[str, list[str]] = field(default_factory=dict)
    param_paths_guarded: dict[str, list[str]] = field(default_factory=dict)  # read only for some values
    # of another parameter
    param_handoffs: list[HandOff] = field(default_factory=list)
    session_ends: list[SessionEnd] = field(default_factory=list)  # sessions it was given that it may end
    returns_function: str | None = None  # name of a function defined in it that it returns (indexed
    # as `<qualname>.<name>`): the dependency a FastAPI dependency factory makes
    held: list[HeldSession] = field(default_factory=list)  # sessions it opens and stores in a holder
    injects: list[Injection] = field(default_factory=list)  # a middleware's `__call__` (see middlewares)
    # the class every `return` builds an instance of, qualified (a class defined in the function
    # is indexed as `<qualname>.<Class>`): `def transaction(): ...; return TxContext()`
    returns_instance_of: str | None = None
    exit_ends: list[SelfEnd] = field(default_factory=list)  # an `__exit__`/`__aexit__`'s (managers.exit_ends)

    @property
    def flushes_params(self) -> dict[str, str]:
        """Parameter -> "commit" or "flush": it commits or flushes the session given as that
        parameter where a failure reaches its caller with the session still needing a rollback
        (no handler of its own catches every error). A call passing a session there is a
        guarded commit. Read from ``session_ends``."""
        names = {p.name for p in self.params}
        out: dict[str, str] = {}
        for end in self.session_ends:
            if end.method in ("commit", "flush") and not end.caught and end.session in names \
                    and out.get(end.session) != "commit":
                out[end.session] = end.method
        return out


MODULE_LEVEL = "<module>"  # the qualname of a module's own statements, read as one function


@dataclass
class Alias:
    name: str
    depends: str | None
    use_cache: bool
    annotation: str | None


@dataclass
class ModuleFacts:
    path: str
    module: str  # its own name (relative imports resolve from it)
    other_names: list[str] = field(default_factory=list)  # other names it can be imported as
    weak_names: list[str] = field(default_factory=list)  # names only a script next to it uses
    import_root: str = "."  # where `module` is rooted, relative to the project root
    root_kind: str = ""  # a resolve.RootKind value: why that directory is an import root
    imports: dict[str, str] = field(default_factory=dict)
    factories: dict[str, Factory] = field(default_factory=dict)
    functions: dict[str, Function] = field(default_factory=dict)
    aliases: dict[str, Alias] = field(default_factory=dict)
    configure_calls: dict[str, dict[str, bool | None]] = field(default_factory=dict)
    classes: dict[str, ClassFacts] = field(default_factory=dict)
    declarative_bases: set[str] = field(default_factory=set)  # Base = declarative_base()
    flask_dbs: set[str] = field(default_factory=set)  # db = SQLAlchemy(app)
    session_types: dict[str, str] = field(default_factory=dict)  # DB = NewType("DB", AsyncSession)
    # Class.attr -> what `self.attr = ...` holds: "type:<annotation>" for a parameter,
    # "call:<callee>" for a call result, "call:self.<other attr>" for `self.factory()`
    self_values: dict[str, str] = field(default_factory=dict)
    # Class.attr -> the parameter of the class's `__init__` that `self.attr = param` stores
    init_params: dict[str, str] = field(default_factory=dict)
    # The whole module, nested functions included (for the engine's decision to parse):
    all_methods: set[str] = field(default_factory=set)  # x.method(...) names called anywhere
    all_called: set[str] = field(default_factory=set)  # name(...) called anywhere
    all_with_callees: set[str] = field(default_factory=set)  # qualified callees of with-items
    # the attribute names read, written or called anywhere (`x.attr`), and the names
    # `getattr(x, "attr")`, `hasattr()` and `setattr()` are given as constants
    all_attributes: set[str] = field(default_factory=set)
    star_imports: bool = False  # `from x import *`: names it binds that `imports` does not list
    # the qualified callees of its calls, anywhere, that the index can resolve: a plain name
    # (`create_product(...)`), an imported name's attribute (`products.create_product(...)`:
    # "app.crud.products.create_product"), a class of its own's (`Repo.create(...)`); not an
    # object's method (`client.create_product(...)`, `self.save()`)
    qualified_calls: set[str] = field(default_factory=set)
    # the qualified callees of its module-level `name = callee(...)` (`session = Session(engine)`)
    assigned_calls: set[str] = field(default_factory=set)
    # the qualified callees of calls advanced once, anywhere (`next(get_db())`: "app.db.get_db")
    advanced_calls: set[str] = field(default_factory=set)
    # the last names of the exception classes its handlers catch (`except exc.IntegrityError`:
    # "IntegrityError"), and names.BARE_EXCEPT for `except:`
    all_caught: set[str] = field(default_factory=set)
    has_async: bool = False
    # databases its string constants name as engine URLs or driver names ("postgresql" for
    # f"postgresql+asyncpg://{host}/db"), and whether one is "AUTOCOMMIT" (see .aborts)
    databases: set[str] = field(default_factory=set)
    autocommit: bool = False
    containers: set[str] = field(default_factory=set)  # module-level `X = {}`, class-level "Class.X"
    # module-level dicts, lists and tuples of functions (`HANDLERS = {"a": do_a, "b": do_b}`):
    # local name -> the qualified names of its members
    function_tables: dict[str, list[str]] = field(default_factory=dict)
    # holders whose session some code here closes (or takes out): see index.holders
    closed_holders: list[Holder] = field(default_factory=list)

    def own(self, name: str) -> str:
        """The qualified name of ``name`` defined in this module (a function's or a class's
        qualname: ``Repo.save`` of ``app.repo`` is ``app.repo.Repo.save``)."""
        return f"{self.module}.{name}" if self.module else name

    def qualify(self, dotted: str | None) -> str | None:
        """The qualified name a dotted expression of this module refers to."""
        if not dotted:
            return None
        head, _, rest = dotted.partition(".")
        if head in self.imports:
            target = self.imports[head]
            return f"{target}.{rest}" if rest else target
        if head in ("self", "cls"):
            return None
        return self.own(dotted)



# --------------------------------------------------------------------------- derived records


@dataclass
class SessionOrigin:
    """Which session an injected value belongs to."""

    provider: str | None  # canonical session provider (FastAPI dependency) or None for own sessions
    open: bool  # still open while the endpoint runs
    use_cache: bool = True
    opener: str | None = None  # for own sessions: the provider that opens it


@dataclass
class Model:
    qualified: str
    columns: set[str]
    deferred: set[str]
    relationships: dict[str, str]  # name -> lazy strategy
    targets: dict[str, str]  # relationship name -> target class as written
    properties: dict[str, set[str]] = field(default_factory=dict)  # property -> self attributes it reads
    refetched: set[str] = field(default_factory=set)  # columns a flush that updates the row expires
    collections: set[str] = field(default_factory=set)  # relationships declared as collections
    raising: set[str] = field(default_factory=set)  # deferred columns whose first read raises (raiseload)
    # relationships declared without `join_depth=`: an eager strategy on them stops at a cycle
    shallow: set[str] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.qualified.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Returned:
    """What a function returns: instances of ``model``, one, maybe None, or a list."""

    model: Model
    shape: Stage
    function: Function  # the function whose annotation or body says so

    @property
    def optional(self) -> bool:
        return self.shape is Stage.OPTIONAL


@dataclass
class Scope:
    """What `with X(...) as name:` opens."""

    kind: str  # "session", "begin", "context-manager", "configured"
    name: str
    is_async: bool | None
    expire_on_commit: bool  # effective: stated, or the factory's, or the configured assumption
    commits_on_exit: bool
    yields: str  # "session" or "service"
    factory: str | None = None
    rolls_back_on_exit: bool = False  # expires every instance on exit, whatever expire_on_commit says
    closes_on_exit: bool = False  # the session is closed when the block ends (its instances detached)
    # a class's exit commits, rolls back or closes only on some paths (`if not self.owner: return`):
    # those ends are not counted above
    exit_uncertain: bool = False

    @property
    def expires_on_exit(self) -> bool:
        """Are the instances loaded in the scope expired when it ends?"""
        return self.rolls_back_on_exit or (self.commits_on_exit and self.expire_on_commit)

