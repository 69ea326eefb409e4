"""What every pass is made of.

A pass is a class with its rule code, name, message, explanation and examples (tests and
``sqla-fix explain`` are generated from them), and a ``run`` method that looks at one parsed
module and yields :class:`Finding` objects. A finding may carry a :class:`Fix`: a list of
:class:`Edit` objects on nodes of the parsed module. The engine, not the pass, applies edits,
so that one finding's fix can be shown alone (``--format json``), overlapping fixes can wait
for the next round, and a pass never has to write a transformer of its own.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import operator
import re
import textwrap
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, TypeVar

from ..lazy import lazy

if TYPE_CHECKING:
    import libcst as cst
    import libcst.metadata as metadata
    from libcst.metadata import CodeRange

    from ..config import Config
    from ..index import ProjectIndex
else:
    cst = lazy("libcst")
    metadata = lazy("libcst.metadata")


# --------------------------------------------------------------------------- fixes

Transform = Callable[["cst.CSTNode"], "cst.CSTNode"]


@dataclass
class Edit:
    """A change to one node of the module.

    ``replace`` receives the node as already updated by edits inside it and returns its
    replacement; ``before``/``after`` are statements inserted around a statement node.
    """

    target: cst.CSTNode
    replace: Transform | None = None
    before: Sequence[cst.BaseStatement] = ()
    after: Sequence[cst.BaseStatement] = ()


@dataclass
class Fix:
    edits: list[Edit]
    safe: bool = True


@dataclass
class Finding:
    code: str
    message: str
    node: cst.CSTNode
    fix: Fix | None = None
    # The ORM object the finding is about (its local name), when it is about one: the engine
    # keeps one finding per object and function (see ``Pass.supersedes``).
    subject: str | None = None
    # The session call the finding is about (the rollback a read follows, the rollback that
    # needs an expunge_all), when it is about one: findings of two rules about one call are
    # one bug too (see ``Pass.supersedes``).
    at: cst.CSTNode | None = None
    # Filled in by the engine from the position metadata.
    range: CodeRange | None = None


# --------------------------------------------------------------------------- context


@dataclass
class FileContext:
    """Everything a pass may look at for one file."""

    path: str
    module: cst.Module
    wrapper: cst.MetadataWrapper
    index: ProjectIndex
    config: Config
    module_name: str = ""
    round: int = 0  # 0 while the index's facts describe this code; > 0 after a fix round they don't
    _metadata: dict = field(default_factory=dict)
    # What depends on the tree alone (positions, parents): shared by the contexts of one tree
    # under several states of the index (see expiry_handoff.context_of)
    of_tree: dict = field(default_factory=dict)

    @property
    def facts(self):
        """The index's ast facts of this file (for the code of this round), or None."""
        return self.cached("facts", lambda: self.index.module_for_path(self.path) if self.index is not None else None)

    def function_facts(self, qualname: str):
        """The index's facts of the function ``qualname`` (``Class.method``) of this file."""
        facts = self.facts
        return facts.functions.get(qualname) if facts is not None else None

    def qualify(self, dotted: str | None) -> str | None:
        """The qualified name a dotted expression of this file refers to."""
        facts = self.facts
        return facts.qualify(dotted) if facts is not None else dotted

    def cached(self, key, compute):
        """``compute()`` once per file and key: walks that several passes share."""
        cache = self._metadata.setdefault("__cache__", {})
        if key not in cache:
            cache[key] = compute()
        return cache[key]

    def meta(self, provider):
        if provider not in self._metadata:
            self._metadata[provider] = self.wrapper.resolve(provider)
        return self._metadata[provider]

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        if "parents" not in self.of_tree:
            self.of_tree["parents"] = parents(self.module)
        return self.of_tree["parents"].get(node)

    def position(self, node: cst.CSTNode) -> CodeRange:
        if "positions" not in self.of_tree:
            from .positions import Positions  # those of the statements asked about

            self.of_tree["positions"] = Positions(self.module, self.parent)
        return self.of_tree["positions"][node]

    def ancestors(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        parent = self.parent(node)
        while parent is not None:
            yield parent
            parent = self.parent(parent)


def positions(module: cst.Module) -> Mapping[cst.CSTNode, CodeRange]:
    """What libcst's PositionProvider gives, computed as it computes it (one code generation
    that notes where each node starts and ends). ``MetadataWrapper.resolve`` would also walk
    the whole tree once more, for the batchable providers it runs alongside (here, none)."""
    provider = metadata.PositionProvider()
    provider._gen_impl(module)
    return provider._computed  # type: ignore[return-value]  # CodeRange values, set as computed


def parents(module: cst.Module) -> dict[cst.CSTNode, cst.CSTNode]:
    """Each node's parent: what libcst's ParentNodeProvider gives (the same map: every node's
    ``children``), layout aside (see :func:`is_layout`: no parent is asked of it), read
    straight from the nodes' fields. The provider visits the tree twice and rebuilds every node
    on the way (``children`` is a visit too), many times slower. A parsed module shares no node
    between two parents, so the order of the walk does not matter."""
    out: dict[cst.CSTNode, cst.CSTNode] = {}
    stack: list[cst.CSTNode] = [module]
    while stack:
        node = stack.pop()
        for child in children(node):
            out[child] = node
            stack.append(child)
    return out


def nodes(root: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """``root`` and every node below it but layout (see :func:`is_layout`), in no particular
    order (as fast as :func:`parents`; for questions whose answer does not depend on the
    order, where a libcst visit would rebuild every node)."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(children(node))




class NoSource(Exception):
    """libcst's own source is not at hand: :func:`visit` cannot know the order of a node's
    children (the caller falls back to a libcst visit)."""


_VISITED = re.compile(r'visit_\w+\(\s*self,\s*"(\w+)"')
_ANY_VISIT = re.compile(r"(?<!\w)visit_\w+\(")  # a call visiting a child (not the method's own name)


@functools.cache
def _field_order(t: type) -> tuple[str, ...]:
    """The fields of the node type ``t`` a libcst visit descends into, in its order: what
    libcst's ``_visit_and_replace_children`` of the type visits, read from its source (once
    per type); the order of a node's dataclass fields is not it (``Call`` visits ``lpar``
    before ``func``...)."""
    try:
        source = inspect.getsource(t._visit_and_replace_children)  # type: ignore[attr-defined]
    except (OSError, TypeError) as exc:
        raise NoSource(t.__name__) from exc
    found = dict.fromkeys(_VISITED.findall(source))
    if not found and _ANY_VISIT.search(source):
        raise NoSource(t.__name__)  # libcst writes its visits in a shape this does not read
    return tuple(found)


_Plan = tuple[tuple[str, Callable | None, Callable | None], ...]
# by visitor class (weakly: the passes define visitor classes inside functions), by node type
_PLANS: weakref.WeakKeyDictionary[type, dict[type, _Plan]] = weakref.WeakKeyDictionary()


def _plans(visitor: type) -> dict[type, _Plan]:
    plans = _PLANS.get(visitor)
    if plans is None:
        plans = _PLANS[visitor] = {}
    return plans


def _visited_fields(t: type, visitor: type, plans: dict[type, _Plan] | None = None) -> _Plan:
    """The fields of :func:`_field_order`, each with ``visitor``'s own hooks for it
    (``visit_For_body``...; None for libcst's, which do nothing), made once per visitor class
    and node type."""
    plans = _plans(visitor) if plans is None else plans
    plan = plans.get(t)
    if plan is None:
        plan = plans[t] = tuple((name, own_hook(visitor, f"visit_{t.__name__}_{name}"),
                                 own_hook(visitor, f"leave_{t.__name__}_{name}"))
                                for name in _field_order(t))
    return plan


def own_hook(visitor: type, name: str) -> Callable | None:
    """The visitor class's own hook ``name`` (None: libcst's, which does nothing)."""
    hook = getattr(visitor, name, None)
    return None if hook is None or hook is getattr(cst.CSTVisitor, name, None) else hook


def visit(root: cst.CSTNode, visitor: cst.CSTVisitor) -> None:
    """What ``root.visit(visitor)`` does for a visitor that changes nothing and has no hook for
    layout (see :func:`is_layout`): the same calls (``on_visit``, the hooks of each field,
    ``on_leave``) in the same order for every other node, read straight from the nodes'
    fields; layout nodes are passed by. A libcst visit rebuilds every node it passes, several
    times slower. Raises :class:`NoSource` when libcst's source is not installed."""
    kind, kinds, node_kind = type(visitor), _KINDS, _Kind.NODE
    on_visit, on_leave = visitor.on_visit, visitor.on_leave
    plans = _plans(kind)

    def go(node: cst.CSTNode) -> None:
        if on_visit(node):
            for name, enter, leave in plans.get(type(node)) or _visited_fields(type(node), kind, plans):
                if enter is not None:
                    enter(visitor, node)
                value = getattr(node, name)
                # a node? (by its type, looked up: isinstance on libcst's abstract base class
                # is a Python call each time)
                if (kinds.get(type(value)) or _kind(type(value))) is node_kind:
                    go(value)
                elif type(value) is tuple or type(value) is list:
                    for item in value:
                        if (kinds.get(type(item)) or _kind(type(item))) is node_kind:
                            go(item)
                if leave is not None:
                    leave(visitor, node)
        on_leave(node)

    go(root)


_V = TypeVar("_V")


def visit_with(root: cst.CSTNode, make: Callable[[], _V]) -> _V:
    """``root.visit(make())`` for a visitor that changes nothing and has no hook for layout,
    by :func:`visit`; by libcst's own visit, with a new visitor, when libcst's source is not
    at hand. The visitor that went through the tree."""
    visitor = make()
    try:
        visit(root, visitor)  # type: ignore[arg-type]
    except NoSource:
        visitor = make()
        root.visit(visitor)  # type: ignore[arg-type]
    return visitor


class _Kind(enum.Enum):
    """What a node's field holds, as far as the tree goes."""

    NODE = 1
    SEQUENCE = 2  # a tuple or list (of nodes, usually)
    OTHER = 3  # a string, a sentinel, None; or a node of layout alone (see is_layout)


_KINDS: dict[type, _Kind] = {}
_FIELDS: dict[type, Callable[[object], tuple]] = {}


def _kind(t: type) -> _Kind:
    if issubclass(t, cst.CSTNode):
        kind = _Kind.OTHER if issubclass(t, layout_types()) else _Kind.NODE
    else:
        kind = _Kind.SEQUENCE if issubclass(t, (tuple, list)) else _Kind.OTHER
    _KINDS[t] = kind
    return kind


def is_layout(node: cst.CSTNode) -> bool:
    """Is ``node`` layout alone: whitespace, a comment, a newline, a bracket or a separator?
    The walks here (:func:`parents`, :func:`nodes`, :func:`visit`,
    :func:`visit_order_children`) pass such nodes by: below them is only more layout, no pass
    looks for one (a node's own fields still hold them), and they are two thirds of a tree's
    nodes."""
    return isinstance(node, layout_types())


@functools.cache
def layout_types() -> tuple[type, ...]:
    """The node types of :func:`is_layout`."""
    return (cst.BaseParenthesizableWhitespace, cst.TrailingWhitespace, cst.EmptyLine, cst.Comment, cst.Newline,
            cst.LeftParen, cst.RightParen, cst.LeftSquareBracket, cst.RightSquareBracket, cst.LeftCurlyBrace,
            cst.RightCurlyBrace, cst.Comma, cst.Dot, cst.Colon, cst.Semicolon, cst.AssignEqual)


def field_values(t: type) -> Callable[[object], tuple]:
    """A function giving the values of a node type's fields, as a tuple. (attrgetter gives a
    tuple for two names or more: the class, read twice in front, is no node and is skipped.)"""
    get = _FIELDS.get(t)
    if get is None:
        get = _FIELDS[t] = operator.attrgetter("__class__", "__class__", *(f.name for f in dataclasses.fields(t)))
    return get


def children(node: cst.CSTNode) -> list[cst.CSTNode]:
    """``node``'s children but layout, in the order of its fields (not always a visit's)."""
    return _nodes_in((_FIELDS.get(type(node)) or field_values(type(node)))(node))


_VISIT_FIELDS: dict[type, Callable[[object], tuple] | None] = {}


def visit_order_children(node: cst.CSTNode) -> list[cst.CSTNode]:
    """``node``'s children in the order a libcst visit enters them, layout aside (see
    :func:`visit`)."""
    t = type(node)
    if t in _VISIT_FIELDS:
        get = _VISIT_FIELDS[t]
    else:
        try:
            get = operator.attrgetter("__class__", "__class__", *_field_order(t))
        except NoSource:
            get = None
        _VISIT_FIELDS[t] = get
    if get is None:  # libcst's source is not at hand: its own (slower) answer
        return [child for child in node.children if not is_layout(child)]
    return _nodes_in(get(node))


def _nodes_in(values: tuple, kinds: dict[type, _Kind] = _KINDS) -> list[cst.CSTNode]:
    """The nodes among a node's field values (a sequence's items included)."""
    out = []
    for value in values:
        kind = kinds.get(type(value)) or _kind(type(value))
        if kind is _Kind.NODE:
            out.append(value)
        elif kind is _Kind.SEQUENCE:
            for item in value:
                if (kinds.get(type(item)) or _kind(type(item))) is _Kind.NODE:
                    out.append(item)
    return out


# --------------------------------------------------------------------------- passes


@dataclass(frozen=True)
class Example:
    """A pass example. ``after`` is the fixed code; None means reported without a fix."""

    before: str
    after: str | None = None
    title: str = ""

    @property
    def source(self) -> str:
        return textwrap.dedent(self.before).lstrip("\n")

    @property
    def fixed(self) -> str | None:
        return None if self.after is None else textwrap.dedent(self.after).lstrip("\n")


@dataclass(frozen=True)
class Valid:
    """Code the pass must leave alone, and why (taken from the traps in the domain notes)."""

    source_text: str
    why: str

    @property
    def source(self) -> str:
        return textwrap.dedent(self.source_text).lstrip("\n")


class Pass:
    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    #: Markdown. Sections: what it does, why it is a bug, the fix, fix safety.
    explanation: ClassVar[str]
    #: "safe", "unsafe", "mixed" (the page says when) or "none" (report only).
    fix_safety: ClassVar[str] = "safe"
    #: A file is parsed for this pass only if its bytes contain one of these.
    triggers: ClassVar[tuple[bytes, ...]] = ()
    examples: ClassVar[tuple[Example, ...]] = ()
    valid: ClassVar[tuple[Valid, ...]] = ()
    #: Rules this one is more specific than: when both describe the same object in the same
    #: function, or the same session call (``Finding.at``), the engine keeps this rule's
    #: finding and drops theirs (one bug, one finding).
    supersedes: ClassVar[tuple[str, ...]] = ()
    #: Files the examples need beside them: {relative path: source}. Used to build a
    #: project index for the examples (a FastAPI provider module, a db module...).
    example_project: ClassVar[dict[str, str]] = {}
    #: The method call the pass is about (``"merge"``, ``"rollback"``): a module, and a
    #: function, that never calls it has nothing for the pass (see :meth:`wants` and
    #: :func:`flow.functions_calling`).
    method: ClassVar[str | None] = None

    @classmethod
    def wants(cls, index: ProjectIndex, facts) -> bool:
        """Can this pass find anything in a module with these ast facts? A cheap check that
        lets the engine skip the libcst parse; it must never say no to a module the pass
        could report on. ``facts`` is None when the module could not be read by ``ast``.
        By default, derived from :attr:`method`."""
        return facts is None or cls.method is None or cls.method in facts.all_methods

    def run(self, ctx: FileContext) -> Iterator[Finding]:  # pragma: no cover - abstract
        raise NotImplementedError

    def finding(self, node: cst.CSTNode, message: str, fix: Fix | None = None, subject: str | None = None) -> Finding:
        return Finding(code=self.code, message=message, node=node, fix=fix, subject=subject)

    @classmethod
    def explain(cls) -> str:
        """The page `sqla-fix explain CODE` prints."""
        parts = [f"# {cls.code} {cls.name}", "", cls.summary, "", textwrap.dedent(cls.explanation).strip()]
        parts += ["", f"Fix safety: {cls.fix_safety}."]
        for ex in cls.examples:
            parts += ["", f"## Example{': ' + ex.title if ex.title else ''}", "", "Before:", "",
                      textwrap.indent(ex.source.rstrip(), "    ")]
            if ex.fixed is not None:
                parts += ["", "After:", "", textwrap.indent(ex.fixed.rstrip(), "    ")]
            else:
                parts += ["", "(reported; no automatic fix)"]
        if cls.valid:
            parts += ["", "## Left alone"]
            for v in cls.valid:
                parts += ["", f"{v.why}:", "", textwrap.indent(v.source.rstrip(), "    ")]
        return "\n".join(parts) + "\n"
