"""Parsing for the index: ``ast``, with a libcst fallback for syntax newer than this Python."""

from __future__ import annotations

import ast


def parse_for_index(source: str | bytes, path: str = "<unknown>") -> ast.Module:
    """``ast.parse``, and for syntax newer than the running Python (PEP 695 generics and
    `type` aliases, Python 3.14's unparenthesised `except A, B:`), a parse of the same code
    with those constructs rewritten to older equivalents by libcst, line numbers kept. The
    index does not care about type parameters or how an except clause is spelled."""
    try:
        return ast.parse(source, filename=path)
    except SyntaxError as first:
        try:
            import libcst as cst

            text = source.decode("utf-8") if isinstance(source, bytes) else source
            module = cst.parse_module(text)
            return ast.parse(module.visit(_Downgrade()).code, filename=path)
        except Exception:
            raise first from None


def _downgrade_class():
    import libcst as cst

    class Downgrade(cst.CSTTransformer):
        def leave_FunctionDef(self, original, updated):
            return updated.with_changes(type_parameters=None) if updated.type_parameters else updated

        def leave_ClassDef(self, original, updated):
            return updated.with_changes(type_parameters=None) if updated.type_parameters else updated

        def leave_TypeAlias(self, original, updated):
            return cst.Assign(targets=[cst.AssignTarget(updated.name)], value=updated.value)

        def leave_ExceptHandler(self, original, updated):
            if isinstance(updated.type, cst.Tuple) and not updated.type.lpar:
                return updated.with_changes(type=updated.type.with_changes(
                    lpar=[cst.LeftParen()], rpar=[cst.RightParen()]))
            return updated

    return Downgrade


class _LazyDowngrade:
    _cls = None

    def __call__(self):
        if _LazyDowngrade._cls is None:
            _LazyDowngrade._cls = _downgrade_class()
        return _LazyDowngrade._cls()


_Downgrade = _LazyDowngrade()
