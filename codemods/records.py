"""What analysing a file gives: its findings, and the fixed text (plain, picklable records,
kept by the results cache; importing them loads no pass)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .cache import Seen
from .source import SourceFile


@dataclass
class FindingRecord:
    """A finding as reported: picklable, positions 1-based (columns too)."""

    path: str
    line: int
    col: int
    end_line: int
    end_col: int
    code: str
    message: str
    fixable: bool = False
    fix_safe: bool = True
    fix_applies: bool = False  # applied by `apply` under the current settings
    fix_diff: str | None = None
    fixed_text: str | None = None  # the whole file with this one fix applied (with fix_diff)


@dataclass
class FileResult:
    path: str
    findings: list[FindingRecord] = field(default_factory=list)
    error: str | None = None  # one line, already prefixed with the path
    source: SourceFile | None = None
    new_text: str | None = None  # None: unchanged
    seen: Seen | None = None  # the file as it was read (for the results cache)
    # The file's syntax was checked (or it skips itself): the result is the same whether the
    # file was named on the command line or found in a directory.
    verified: bool = False

    @property
    def changed(self) -> bool:
        return self.new_text is not None and self.source is not None and self.new_text != self.source.text
