"""Python's cyclic garbage collector, set for a run of the command.

A check allocates millions of small objects (libcst's nodes, the index's records) that live
as long as one file's analysis or the whole run, and makes few reference cycles. With the
collector's default thresholds (the young objects traversed every 700 allocations, and every
object now and then) a full check of a large project spent a sixth of its CPU in collections.
The command (not a program that embeds sqla-fix, which keeps its own settings) traverses
young objects every 20,000 allocations instead: the same peak memory on that project, a
tenth less CPU. A run of one file from an editor, whose memory is bounded by that file, does
not collect at all.
"""

from __future__ import annotations

import gc

_COMMAND = False  # the settings are the command's to choose


def for_command() -> None:
    """The settings of the ``sqla-fix`` command (its worker processes inherit them)."""
    global _COMMAND
    _COMMAND = True
    gc.set_threshold(20_000, 20, 20)


def for_one_file() -> None:
    """The command checks one file (an editor's buffer): no collection until it exits."""
    if _COMMAND:
        gc.disable()
