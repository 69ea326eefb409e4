"""Small helpers over the standard library's ``ast`` nodes."""

from __future__ import annotations

import ast

from .. import names


def walk(node: ast.AST) -> list[ast.AST]:
    """``list(ast.walk(node))``, in its order (breadth first, each node's children in the order
    of its fields), less the leaves :func:`children` leaves out, several times faster: no
    generator per node, nor per field."""
    out = [node]
    i = 0
    while i < len(out):
        out.extend(children(out[i]))
        i += 1
    return out


def source_order(roots: list[ast.AST], skip: tuple[type, ...] = ()) -> list[ast.AST]:
    """The nodes under ``roots`` (and themselves), depth first in source order: each node, then
    its children in the order of their fields, as ``ast.iter_child_nodes`` gives them; the
    children of a node of a type in ``skip`` are left out. No generator per node."""
    out: list[ast.AST] = []
    stack = roots[::-1]
    while stack:
        node = stack.pop()
        out.append(node)
        if not isinstance(node, skip):
            stack.extend(reversed(children(node)))
    return out


# Fields that hold only leaves no walk looks for: a name's context (Load, Store: read as
# `node.ctx`), an operator (Add, Or, Is: read as `node.op`, `node.ops`). A fifth of a module's
# nodes; leaving them out spares each walk a visit and a type test of each.
_LEAF_FIELDS = frozenset({"ctx", "op", "ops"})
_FIELDS: dict[type, tuple[str, ...]] = {}  # a node class -> its fields that may hold child nodes


def children(node: ast.AST) -> list[ast.AST]:
    """``list(ast.iter_child_nodes(node))`` less the leaves of ``_LEAF_FIELDS``, worked out
    once per node: the index walks each function's body several times (its facts, its read
    paths, its state), and each walk of a node already seen costs an attribute read. The
    trees are read, never changed."""
    try:
        return node._sqf_children  # type: ignore[attr-defined]
    except AttributeError:
        pass
    kind = ast.AST
    out: list[ast.AST] = []
    fields = _FIELDS.get(type(node))
    if fields is None:
        fields = _FIELDS[type(node)] = tuple(f for f in node._fields if f not in _LEAF_FIELDS)
    for name in fields:
        value = getattr(node, name, None)
        if isinstance(value, kind):
            out.append(value)
        elif isinstance(value, list):
            out.extend(item for item in value if isinstance(item, kind))
    node._sqf_children = out  # type: ignore[attr-defined]
    return out


def dotted_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted_name(node.value)
        return f"{base}.{node.attr}" if base else None
    return None



def unquoted(annotation: ast.AST) -> ast.AST | None:
    """A string annotation (``"AsyncSession"``, ``"User | None"``) as the expression it
    spells; any other annotation as it is; None when the string does not parse."""
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            return ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return None
    return annotation


def const_bool(node: ast.AST | None) -> bool | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return node.value
    return None


def keyword_arg(call: ast.Call, name: str) -> ast.AST | None:
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def strip_await(node: ast.AST) -> ast.AST:
    while isinstance(node, ast.Await):
        node = node.value
    return node


def load_root(node: ast.AST) -> str | None:
    """``S`` when ``node`` is ``S.get(...)``, ``(await S.execute(q)).scalar_one()``, ``S.query(M).first()``..."""
    node = strip_await(node)
    while isinstance(node, (ast.Call, ast.Attribute, ast.Subscript, ast.Await)):
        if isinstance(node, ast.Await):
            node = node.value
            continue
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in names.LOAD_METHODS:
                owner = dotted_name(node.func.value)
                if owner is not None:
                    return owner
            node = node.func.value
            continue
        if isinstance(node, ast.Call):
            return None
        node = node.value
    return None



EAGER_LOADERS = {"selectinload", "joinedload", "subqueryload", "immediateload", "contains_eager"}


def eager_names(node: ast.AST) -> set[str]:
    """Relationship names a function loads eagerly: selectinload(User.posts), joinedload("posts")."""
    out: set[str] = set()
    for call in ast.walk(node):
        if not isinstance(call, ast.Call):
            continue
        func = call.func
        last = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if last not in EAGER_LOADERS:
            continue
        for arg in call.args:
            if isinstance(arg, ast.Attribute):
                out.add(arg.attr)
            elif isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                out.add(arg.value.rsplit(".", 1)[-1])
    return out


# Loader options that say plainly which relationships they load (or leave lazy)
READABLE_LOADERS = EAGER_LOADERS | {"defaultload", "lazyload", "load_only", "defer", "undefer", "undefer_group"}


def readable_option(node: ast.AST) -> bool:
    """A loader option whose effect on relationships the index can read:
    ``selectinload(User.posts).selectinload(Post.tags)``, ``joinedload("author")``. Not
    ``*opts``, a helper's result, ``Load(User)...``, ``raiseload``/``noload`` or a ``"*"``
    wildcard: what those leave loaded is unknown."""
    while isinstance(node, ast.Call):
        func = node.func
        last = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if last not in READABLE_LOADERS or node.keywords:
            return False
        for arg in node.args:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                if "*" in arg.value:
                    return False
            elif not isinstance(arg, ast.Attribute):
                return False
        if not isinstance(func, ast.Attribute):
            return True
        node = func.value
    return False


def decorator_callee(node: ast.AST) -> ast.AST:
    return node.func if isinstance(node, ast.Call) else node


def const_str(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def first_argument(sub: ast.Subscript) -> ast.AST | None:
    """The first type argument of ``X[A, B]`` (``A``), of ``X[A]`` (``A``); None for ``X[()]``."""
    if isinstance(sub.slice, ast.Tuple):
        return sub.slice.elts[0] if sub.slice.elts else None
    return sub.slice


def annotation_target(annotation: ast.AST) -> str | None:
    """The class a Mapped[...] annotation names: Mapped["User"], Mapped[list["Item"]],
    Mapped[Optional[User]] -> its innermost name."""
    node: ast.AST | None = annotation
    while isinstance(node, ast.Subscript):
        node = first_argument(node)
    if node is None:
        return None
    if isinstance(node, ast.BinOp):  # X | None
        node = node.left
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value.strip()
        for wrapper in ("list[", "List[", "set[", "Set[", "Optional["):
            if text.startswith(wrapper):
                text = text[len(wrapper):].rstrip("]")
        return text.split("|")[0].strip().strip("'\"") or None
    name = dotted_name(node)
    if name in ("int", "str", "float", "bool", "bytes", "datetime", "date", "dict", "Any", "None"):
        return None
    return name



COLLECTION_TYPES = {"list", "List", "set", "Set", "Sequence", "MutableSequence", "MutableSet", "Collection"}


def annotation_collection(annotation: ast.AST | None) -> bool | None:
    """Does a ``Mapped[...]`` annotation declare a collection (``Mapped[list["Item"]]``)?
    None when there is no annotation to tell."""
    if annotation is None:
        return None
    node = annotation
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            node = ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return None
    if not isinstance(node, ast.Subscript):
        return False if isinstance(node, (ast.Name, ast.Attribute, ast.BinOp)) else None
    outer = (dotted_name(node.value) or "").rsplit(".", 1)[-1]
    if outer in COLLECTION_TYPES:  # SQLModel: `items: list["Item"] = Relationship()`
        return True
    if outer != "Mapped":
        return False if outer == "Optional" else None
    inner = node.slice
    if isinstance(inner, ast.Constant) and isinstance(inner.value, str):
        return inner.value.strip().split("[")[0].rsplit(".", 1)[-1] in COLLECTION_TYPES
    head = inner.value if isinstance(inner, ast.Subscript) else None
    return (dotted_name(head) or "").rsplit(".", 1)[-1] in COLLECTION_TYPES if head is not None else False
