"""The state a function body's walk fills (:class:`~.body.FunctionBody`'s fields): what it
knows of the function before the walk (its parameters, what their annotations name), and the
walk itself, started by the constructor."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from .. import names
from .astutil import (
    unquoted,
)
from .facts import CallSite, Factory, HeldSession, OpenedSession, Origin, SessionEnd
from .infer import Load
from .managers import NameType, annotation_class

if TYPE_CHECKING:
    from .extract_base import ExtractorBase


class BodyState(ast.NodeVisitor):
    """The facts one function body yields, filled by the walk of its statements."""

    def __init__(self, ex: ExtractorBase, fn: ast.FunctionDef | ast.AsyncFunctionDef, class_prefix: str = "",
                 closure: dict[str, tuple[str, bool | None]] | None = None) -> None:
        self.ex = ex
        self.fn = fn
        self.class_prefix = class_prefix
        self.is_generator = False
        self.commits = False
        self.commits_after_yield = False
        self.yield_in_begin = False
        self.yields_kind: str | None = None
        self.yields_class: str | None = None
        self.returns_factory: Factory | None = None
        self.returns_factories_at: dict[int, Factory] = {}
        self.local_factories: dict[str, Factory] = {}  # `maker = sessionmaker(...)` in this function
        self._seen_yield = False
        self._conditional = 0  # inside an if / loop / except: not run on every path
        self.rolls_back_after_yield = False
        self._yielded: set[str] = set()  # session names it yields
        self.handed_out: set[str] = set()  # session names it yields or returns
        self.handed_unregistered = False  # a yield or return of one before `registers` holds it
        self.built_factories: list[tuple[bool, bool | None]] = []  # see Function.built_factories
        self._closed_after_yield: set[str] = set()  # session names it closes after its yield, on every path
        self.returns_self_attr: str | None = None
        self._begin_depth = 0
        self._broad_guard = 0  # inside the body of a try with a handler for any error
        self.closed_names: set[str] = set()
        self.detaches = False
        self.with_callees: list[str] = []
        self.methods: set[str] = set()
        self.inline_opens: list[str] = []
        self.called: set[str] = set()
        self.eager: set[str] = set()
        self.opaque_options = False  # `.options(...)` it cannot read (see astutil.readable_option)
        self.checks_loads = False  # catches MissingGreenlet, or reads `.unloaded` / `.awaitable_attrs`
        self.rebound_params: set[str] = set()  # parameters it assigns another value to
        self.yield_sources: list[str] = []
        self.globals: set[str] = set()
        self.add_owners: set[str] = set()
        self.added_params: set[str] = set()
        self.stores: set[str] = set()
        self.registers: dict[str, str] = {}  # session local name -> the container it is added to
        self.local_names: set[str] = set()  # names assigned in the body so far (`x = ...`, `x: T = ...`)
        self.kept_params: set[str] = set()  # parameters it stores (`X[k] = p`, `X.append(p)`)
        self.session_ends: list[SessionEnd] = []
        self.param_reads: dict[str, set[str]] = {}
        self.param_statements: set[str] = set()  # parameters it runs a statement on (`p.execute(...)`)
        self._called_funcs: set[int] = set()
        self._raising: set[int] | None = None
        self._ends_seen: set[tuple] = set()
        self.has_nested = False
        self.opened: list[OpenedSession] = []
        self.held: list[HeldSession] = []
        self._held_names: list[str | None] = []  # the local name each held session was bound to
        self.yields_param: str | None = None
        self.calls: list[CallSite] = []
        self.origins: dict[str, Origin] = {}
        self.loads: dict[str, Load] = {}  # local name -> the load it holds (see .infer)
        self.local_calls: dict[str, str] = {}  # local name -> the call whose result it holds
        self.picked: dict[str, str] = {}  # local name -> the module-level table of functions it
        # holds one of (`handler = HANDLERS[action]`, `HANDLERS.get(action)`)
        self.returns_load: Load | None = None
        # `return {"chat": chat, ...}`: per constant key, the load a name there holds (None when
        # the returns disagree); `keyed_returns` turns False at a return that is no dict literal
        self.returned_keys: dict[str, Load | None] = {}
        self.keyed_returns = True
        self.returns_calls: list[str] = []
        self.returned_new: list[str | None] = []  # per `return`: the class of a name it built, else None
        self.session_names: dict[str, str] = {}
        self.local_factory_expire: dict[str, bool | None] = {}  # factories built in this function
        # `maker = functools.partial(Session, expire_on_commit=False)`: local name -> (what it
        # calls, expire_on_commit it states); an enclosing function's count too (`closure`).
        self.partials: dict[str, tuple[str, bool | None]] = {}
        all_args = fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
        self.param_names = {a.arg for a in all_args}
        self.partials.update({k: v for k, v in (closure or {}).items() if k not in self.param_names})
        self.param_annotations: dict[str, str] = {}
        # the one class a typed parameter (or, in a class a function returns, a typed parameter
        # of that function) stands for: receivers of method calls (`database.session()`)
        self.name_types: dict[str, NameType] = {
            k: v for k, v in ex.enclosing_types.items() if k not in self.param_names}
        for a in all_args:
            typed = annotation_class(a.annotation, ex.facts.qualify)
            if typed is not None:
                self.name_types[a.arg] = typed
            self.origins[a.arg] = Origin("param")
            annotation = unquoted(a.annotation) if a.annotation is not None else None  # `s: "AsyncSession"`
            head = annotation.value if isinstance(annotation, ast.Subscript) else annotation
            qualified = ex.q(head) if head is not None else None
            if qualified is not None:
                self.param_annotations[a.arg] = qualified
                if names.session_class(qualified) is not None:
                    self.session_names[a.arg] = qualified
                    self.origins[a.arg] = Origin("session", callee=qualified)
        self._with_stack: list[str] = []  # session names bound by enclosing with-blocks
        for stmt in fn.body:
            self.visit(stmt)
        if not self.is_generator:  # `s = Maker(); try: return ... finally: s.close()`
            for opened in self.opened:
                if opened.name in self.closed_names:
                    opened.closed_on_return = True
        # a session the function closes itself (`with`, `close()`) is not left to its holder
        self.held = [h for h, name in zip(self.held, self._held_names) if name is None or name not in self.closed_names]

    def hands_out_factory(self, value: ast.AST | None) -> None:
        """``value`` leaves the function (returned, stored on an object): if it is a session
        factory built here (`async_sessionmaker(engine, ...)`, or a local bound to one), note
        it in ``built_factories``. A scoped registry around a factory named here is not noted:
        that factory is counted where it is built."""
        if isinstance(value, ast.Name):
            made = self.local_factories.get(value.id)
        elif isinstance(value, ast.Call) and not (
                self.ex.q(value.func) in names.SCOPED and value.args and not isinstance(value.args[0], ast.Call)):
            made = self.ex.factory_from("", value, value.lineno)
        else:
            made = None
        if made is not None:
            self.built_factories.append((bool(made.is_async), made.expire_on_commit))
