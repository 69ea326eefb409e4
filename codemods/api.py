"""A small Python API for tools that embed sqla-fix (editors, review bots, notebooks).

    from codemods.api import check_source, fix_source, load_config

    findings = check_source(text, "app/routes.py")
    for f in findings:
        print(f.line, f.col, f.code, f.message, f.fixable)
    fixed = fix_source(text, "app/routes.py")

``project`` gives the other modules of the project, {relative path: source}, so that the
factories, scopes and FastAPI providers defined there are known (as the command's project
index knows them). ``config`` is a :class:`Config`; ``load_config(path)`` reads the one that
applies to a file on disk, as the command does.
"""

from __future__ import annotations

from dataclasses import replace

from . import engine
from .config import Config
from .config import load as load_config
from .engine import FindingRecord as Finding

__all__ = ["Config", "Finding", "SourceProblem", "check_source", "fix_source", "load_config"]


class SourceProblem(Exception):
    """The source cannot be checked: it does not parse, or a rule failed on it. The message
    is one line, `path:line:col: message` where the position is known."""


def _run(source: str, path: str, config: Config | None, project: dict[str, str] | None) -> engine.FileResult:
    result = engine.fix_text(source, config or Config(), project, path)
    if result.error:
        raise SourceProblem(result.error)
    return result


def check_source(source: str, path: str = "example.py", *, config: Config | None = None,
                 project: dict[str, str] | None = None) -> list[Finding]:
    """The findings in ``source``, as the file ``path`` of the project, in source order.

    Each has ``path``, ``line``, ``col``, ``end_line``, ``end_col`` (1-based), ``code``,
    ``message``, ``fixable``, ``fix_safe`` and ``fix_applies`` (``fix_source`` makes that
    fix under ``config``). Raises :class:`SourceProblem` when the source cannot be checked.
    """
    return [replace(f, path=path) for f in _run(source, path, config, project).findings]


def fix_source(source: str, path: str = "example.py", *, config: Config | None = None,
               project: dict[str, str] | None = None, unsafe_fixes: bool = False) -> str:
    """``source`` with every fix applied (the unsafe ones too with ``unsafe_fixes``); the
    source itself when nothing is fixed. Raises :class:`SourceProblem` as ``check_source``."""
    config = config or Config()
    if unsafe_fixes:
        config = replace(config, unsafe_fixes=True)
    result = _run(source, path, config, project)
    return result.new_text if result.changed and result.new_text is not None else source
