"""Applying fixes to a module: a generic transformer over :class:`~codemods.passes.base.Edit`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import libcst as cst

from .passes.base import Edit, Fix


class ApplyEdits(cst.CSTTransformer):
    def __init__(self, edits: Iterable[Edit]) -> None:
        super().__init__()
        self.by_node: dict[int, list[Edit]] = {}
        for edit in edits:
            self.by_node.setdefault(id(edit.target), []).append(edit)

    def on_leave(self, original_node, updated_node):
        edits = self.by_node.get(id(original_node))
        if not edits:
            return updated_node
        result = updated_node
        before: list[cst.BaseStatement] = []
        after: list[cst.BaseStatement] = []
        for edit in edits:
            if edit.replace is not None:
                result = edit.replace(result)
            before.extend(edit.before)
            after.extend(edit.after)
        if before or after:
            return cst.FlattenSentinel([*before, result, *after])
        return result


def apply_fixes(module: cst.Module, fixes: Sequence[Fix]) -> cst.Module:
    edits = [edit for fix in fixes for edit in fix.edits]
    return module.visit(ApplyEdits(edits))
