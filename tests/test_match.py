"""The passes' matchers (codemods/passes/match.py) find what libcst.matchers finds: the same
nodes, in the same order, for every pattern the passes spell, on every fixture, sample and
pass example, from the module and from function bodies."""

from __future__ import annotations

from pathlib import Path

import libcst
import libcst.matchers as libcst_m
import pytest

from codemods.passes import ALL_PASSES
from codemods.passes import match as our_m
from codemods.passes.base import is_layout


def patterns(m):
    """The patterns the passes use, spelled with the matcher module ``m``."""
    target = m.Name("user")
    return [
        m.Name(), m.Name("self"), m.Name("session"), m.Call(), m.Await(), m.Return(), m.For(), m.Subscript(),
        m.Param(), m.FunctionDef(), m.Raise(),
        m.Await() | m.Yield() | m.NamedExpr() | m.Lambda(),
        m.Global() | m.Nonlocal(),
        m.AssignTarget() | m.For() | m.CompFor() | m.AsName(),
        m.AssignTarget() | m.AugAssign() | m.AnnAssign(),
        m.FunctionDef() | m.Lambda() | m.ClassDef() | m.Global() | m.Nonlocal() | m.Yield(),
        m.FunctionDef() | m.Lambda(),
        m.Name() | m.Attribute(),
        m.Await(expression=m.Call()),
        m.Call(func=m.Attribute()),
        m.Call(func=m.Attribute(attr=m.Name("options"))),
        m.Call(func=m.Attribute(attr=m.Name("add"))),
        m.Call(func=m.Attribute(attr=m.Name("listens_for") | m.Name("listen")) | m.Name("listens_for")),
        m.Call(func=m.Attribute(attr=m.Name("get") | m.Name("pop") | m.Name("values"))),
        m.Call(func=m.Attribute(attr=m.Name("gather")) | m.Name("gather")),
        m.Call(func=m.Attribute(value=m.Call(), attr=m.Name("result"))),
        m.Call(func=m.Attribute(value=m.Attribute(value=m.Name("self")))),
        m.Assign(targets=[m.AssignTarget()]),
        m.Assign(targets=[m.AssignTarget()], value=m.Name("session")),
        m.Assign(targets=[m.AssignTarget(target=m.Attribute(value=m.Name("self")))]),
        m.Assign(targets=[m.AssignTarget(target=m.Subscript())]),
        m.Assign(targets=[m.AssignTarget(target=m.Name())], value=m.Attribute(value=m.Name())),
        m.Assign(targets=[m.AssignTarget(target=m.Name())]) | m.Call(func=m.Attribute()),
        m.AssignTarget(target=m.Name()),
        m.AssignTarget(target=m.Name("user")),
        m.AnnAssign(target=m.Name()),
        m.AnnAssign(target=target, value=m.DoNotCare()),
        m.For(target=m.Name(), iter=m.Attribute(value=m.Name())),
        m.Attribute(value=m.Name()) | m.Call() | m.FormattedStringExpression(),
        m.Attribute(value=m.Name("user")),
        m.Global(names=[m.ZeroOrMore(), m.NameItem(name=m.Name("x")), m.ZeroOrMore()]),
        m.Tuple(elements=[m.ZeroOrMore(), m.Element(value=target), m.ZeroOrMore()]),
        m.List(elements=[m.ZeroOrMore(), m.Element(value=m.Name()), m.ZeroOrMore()]),
        m.StarredElement(value=target),
    ]


def _sources() -> list[str]:
    root = Path(__file__).resolve().parent.parent
    files = sorted([*root.glob("tests/fixtures/**/*.py"), *root.glob("samples/**/*.py")])
    return [p.read_text(encoding="utf-8") for p in files] + [ex.source for p in ALL_PASSES for ex in p.examples]


class _Entered(libcst.CSTVisitor):
    """The nodes a libcst visit enters, in order: what libcst's findall tries its matcher on."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[libcst.CSTNode] = []

    def on_visit(self, node: libcst.CSTNode) -> bool:
        self.nodes.append(node)
        return True


def test_the_passes_matchers_find_what_libcst_finds():
    theirs, ours = patterns(libcst_m), patterns(our_m)
    found = 0
    for source in _sources():
        module = libcst.parse_module(source)
        functions = libcst_m.findall(module, libcst_m.FunctionDef())
        for root in [module, *(fn.body for fn in functions[:1])]:  # a body is a root too
            entered = _Entered()
            root.visit(entered)
            entered.nodes = [n for n in entered.nodes if not is_layout(n)]  # the walk passes layout by
            assert [id(n) for n in our_m.walk(root)] == [id(n) for n in entered.nodes]
            for their, our in zip(theirs, ours):
                # (a node of another type never matches, in libcst as here: not asked)
                kinds = {o.kind for o in (our.options if isinstance(our, our_m.OneOf) else (our,))}
                expected = [n for n in entered.nodes if type(n).__name__ in kinds and libcst_m.matches(n, their)]
                got = our_m.findall(root, our)
                assert [id(n) for n in got] == [id(n) for n in expected], (our, source[:60])
                found += len(got)
        # and libcst's findall itself, for a few patterns
        for their, our in zip(theirs[:12:3], ours[:12:3]):
            assert [id(n) for n in our_m.findall(module, our)] == [id(n) for n in libcst_m.findall(module, their)]
    assert found > 5_000


def test_matches_one_node():
    module = libcst.parse_module("global x, y\nuser.name = 1\n")
    stmt = module.body[0].body[0]
    assert our_m.matches(stmt, our_m.Global(names=[our_m.ZeroOrMore(), our_m.NameItem(name=our_m.Name("y")),
                                                   our_m.ZeroOrMore()]))
    assert not our_m.matches(stmt, our_m.Global(names=[our_m.NameItem(name=our_m.Name("y"))]))
    assert not our_m.matches(stmt, our_m.Nonlocal())
    with pytest.raises(AttributeError):
        our_m.NoSuchNode()  # noqa: B018


def test_findall_refuses_a_pattern_of_layout():
    # the walk passes whitespace, brackets and separators by: asking for one would find none
    module = libcst.parse_module("f(a, b)\n")
    with pytest.raises(ValueError, match="layout"):
        our_m.findall(module, our_m.Comma())
    with pytest.raises(ValueError, match="layout"):
        our_m.findall(module, our_m.Name() | our_m.SimpleWhitespace())
    assert [n.value for n in our_m.findall(module, our_m.Name())] == ["f", "a", "b"]

