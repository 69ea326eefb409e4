"""Where a module's nodes are, as libcst's PositionProvider says, worked out for the top-level
statement a node asked about is in, when it is asked.

The provider generates the code of the whole module, noting where every node starts and ends:
in an editor's server, on every change, for the few nodes the passes ask about (a finding's,
the statements SQF012 orders; often one function of the file). Here only the statements
before the one asked about have their code generated (counting lines and columns, noting
nothing), and that statement with the provider's own notes, starting at the line and column
the statements before it end at: at the top level there is no indentation to carry, so the
ranges are the provider's. A node outside every top-level statement (the module, its header
and footer) is looked up in the provider's map of the whole module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import libcst as cst  # this module is imported when a position is first asked: libcst is loaded
from libcst.metadata import CodeRange, PositionProvider
from libcst.metadata.position_provider import (
    PositionProvidingCodegenState,
    WhitespaceInclusivePositionProvidingCodegenState,
)


class Positions(Mapping[cst.CSTNode, CodeRange]):
    """The provider's map of ``module``, filled one top-level statement at a time; ``parent``
    gives a node's parent (None for the module)."""

    def __init__(self, module: cst.Module, parent: Callable[[cst.CSTNode], cst.CSTNode | None]) -> None:
        self._module = module
        self._parent = parent
        self._provider = PositionProvider()
        self._computed: dict[cst.CSTNode, CodeRange] = self._provider._computed  # type: ignore[assignment]
        self._starts: dict[int, tuple[int, int]] = {}  # id of a top-level statement -> (line, column) it starts at
        self._counted = 0  # the top-level statements whose start is known
        self._lines = _Lines(default_indent=module.default_indent, default_newline=module.default_newline,
                             provider=self._provider)
        for line in module.header:
            line._codegen(self._lines)
        self._whole = False

    def __getitem__(self, node: cst.CSTNode) -> CodeRange:
        if node not in self._computed and not self._whole:
            top = self._top(node)
            if top is None:
                self._all()
            else:
                self._statement(top)
        return self._computed[node]

    def __iter__(self) -> Iterator[cst.CSTNode]:
        self._all()
        return iter(self._computed)

    def __len__(self) -> int:
        self._all()
        return len(self._computed)

    def _top(self, node: cst.CSTNode) -> cst.CSTNode | None:
        """The top-level statement ``node`` is in (itself, if it is one), or None."""
        while True:
            up = self._parent(node)
            if up is None:
                return None
            if up is self._module:
                return node if any(s is node for s in self._module.body) else None  # header, footer
            node = up

    def _start(self, top: cst.CSTNode) -> tuple[int, int]:
        """Where ``top`` starts: the code of the statements before it generated, once."""
        body = self._module.body
        while id(top) not in self._starts:
            stmt = body[self._counted]
            self._starts[id(stmt)] = (self._lines.line, self._lines.column)
            stmt._codegen(self._lines)
            self._counted += 1
        return self._starts[id(top)]

    def _statement(self, top: cst.CSTNode) -> None:
        line, column = self._start(top)
        top._codegen(PositionProvidingCodegenState(
            default_indent=self._module.default_indent, default_newline=self._module.default_newline,
            provider=self._provider, line=line, column=column))

    def _all(self) -> None:
        if not self._whole:
            self._provider._gen_impl(self._module)
            self._whole = True


class _Lines(WhitespaceInclusivePositionProvidingCodegenState):
    """A code generation state that counts lines and columns as the provider's does and notes
    nothing."""

    def before_codegen(self, node: cst.CSTNode) -> None:
        pass

    def after_codegen(self, node: cst.CSTNode) -> None:
        pass
