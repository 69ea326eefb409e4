"""Python's cyclic garbage collector, set for a run of the command.

A check allocates millions of small objects (libcst's nodes, the index's records) that live
as long as one file's analysis or the whole run, and makes few reference cycles. With the
collector's default thresholds (the young objects traversed every 700 allocations, and every
object now and then) a full check of a large project spent a sixth of its CPU in collections.
The command (not a program that embeds sqla-fix, which keeps its own settings) traverses
young objects every 20,000 allocations instead: the same peak memory on that project, a
tenth less CPU. A run of one file from an editor, whose memory is bounded by that file, does
not collect at all.

Within a file's analysis the command does not collect either: a parse makes a million objects
that live until the file is done, and each young collection traversed those alive then (a
twentieth of a check of a large project went to them). Once the file is done, its trees are
freed by their reference counts, and one young collection takes the few cycles it left
(``one_file``): a tenth of the collector's time, and no more peak memory.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_COMMAND = False  # the settings are the command's to choose
YOUNG = 20_000  # the young generation's threshold (objects allocated and still alive)


def for_command() -> None:
    """The settings of the ``sqla-fix`` command (its worker processes inherit them)."""
    global _COMMAND
    _COMMAND = True
    gc.set_threshold(YOUNG, 20, 20)


def for_one_file() -> None:
    """The command checks one file (an editor's buffer): no collection until it exits."""
    if _COMMAND:
        gc.disable()


@contextmanager
def one_file() -> Iterator[None]:
    """The analysis of one file, in the command: no collection while it runs, a young one
    after it when it left enough objects alive to call for one. Outside the file's time
    limit (``guard.time_limit``): that collection is not the file's time, and a timer firing
    cannot come between turning the collector off and the ``finally`` that turns it on."""
    if not (_COMMAND and gc.isenabled()):
        yield
        return
    try:
        gc.disable()
        yield
    finally:
        gc.enable()
        if gc.get_count()[0] > YOUNG:
            gc.collect(1)
