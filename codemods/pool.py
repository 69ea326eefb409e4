"""Worker processes that survive their files.

``concurrent.futures.ProcessPoolExecutor`` gives up as a whole when one worker dies (a
segmentation fault in a native parser, the kernel's out-of-memory killer): every result is
lost. Here a small supervisor hands each worker one item at a time and knows which item every
worker holds, so a worker that dies, or keeps an item longer than the time limit, costs that
one item: it is reported through ``on_failure``, the worker is replaced, and the rest go on.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import guard

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

GRACE = 5.0  # at most this many seconds past the time limit before a worker is killed


def _context():
    import multiprocessing  # with the first worker: a run that starts none never loads it

    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _worker(conn: Connection, fn: Callable, initializer: Callable | None, initargs: tuple) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor handles ^C
    if initializer is not None:
        initializer(*initargs)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        number, item = task
        if isinstance(item, str):  # a file's path (the index's items carry its bytes)
            guard.run_test_hooks(item, in_worker=True)
        try:
            conn.send((number, True, fn(item)))
        except Exception as exc:  # a bug in fn: reported for this item only
            conn.send((number, False, f"{exc.__class__.__name__}: {exc}"))


@dataclass
class _Slot:
    process: Any
    conn: Connection
    number: int | None = None  # the item it holds
    started: float = 0.0


def death_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


def run(fn: Callable[[Any], Any], items: Sequence, jobs: int,
        on_failure: Callable[[Any, str], Any], initializer: Callable | None = None,
        initargs: tuple = (), timeout: float | None = None,
        progress: Callable[[int], Any] | None = None) -> list:
    """``[fn(item) for item in items]`` in ``jobs`` worker processes. An item whose worker dies
    or overruns ``timeout`` (plus a grace period: ``fn`` is expected to stop itself at
    ``timeout``) gets ``on_failure(item, reason)`` as its result instead."""
    from multiprocessing import connection

    ctx = _context()
    results: list = [None] * len(items)
    queue = list(range(len(items)))[::-1]
    slots: list[_Slot] = []
    pending = len(items)
    hard = (timeout + min(GRACE, timeout)) if timeout else 0.0

    def start() -> _Slot:
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_worker, args=(child, fn, initializer, initargs), daemon=True)
        process.start()
        child.close()
        return _Slot(process, parent)

    def give(slot: _Slot) -> None:
        if queue:
            slot.number = queue.pop()
            slot.started = time.monotonic()
            try:
                slot.conn.send((slot.number, items[slot.number]))
            except OSError:
                pass  # it died: its sentinel reports the item
        else:
            slot.number = None

    def finish(number: int, value: Any) -> None:
        nonlocal pending
        results[number] = value
        pending -= 1
        if progress:
            progress(1)

    def bury(slot: _Slot, reason: str) -> _Slot:
        if slot.process.is_alive():
            slot.process.kill()
        slot.process.join()
        slot.conn.close()
        if slot.number is not None:
            finish(slot.number, on_failure(items[slot.number], reason))
        fresh = start()
        give(fresh)
        return fresh

    try:
        for _ in range(min(jobs, len(items))):
            slot = start()
            slots.append(slot)
            give(slot)
        while pending:
            waiting: dict[Any, _Slot] = {s.conn: s for s in slots if s.number is not None}
            waiting.update({s.process.sentinel: s for s in slots if s.number is not None})
            limit = None
            if timeout:
                now = time.monotonic()
                limit = max(0.0, min(s.started + hard - now for s in slots if s.number is not None))
            ready = connection.wait(list(waiting), timeout=limit)
            for handle in ready:
                slot = waiting[handle]
                if slot.number is None or slot not in slots:
                    continue  # already handled through its other handle
                index = slots.index(slot)
                if handle is slot.conn:
                    try:
                        number, ok, value = slot.conn.recv()
                    except (EOFError, OSError):
                        slots[index] = bury(slot, _died(slot))
                        continue
                    finish(number, value if ok else on_failure(items[number], f"internal error: {value}"))
                    give(slot)
                elif not slot.conn.poll():  # dead, and no result left in the pipe
                    slots[index] = bury(slot, _died(slot))
            if timeout:
                now = time.monotonic()
                for index, slot in enumerate(slots):
                    if slot.number is not None and now - slot.started > hard:
                        slots[index] = bury(slot, f"took longer than {timeout:g} s")
    finally:
        for slot in slots:
            try:
                slot.conn.send(None)
            except (OSError, ValueError):
                pass
        for slot in slots:
            slot.process.join(timeout=1)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join()
            slot.conn.close()
    return results


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def map_items(fn: Callable, items: list, jobs: int, on_failure: Callable, timeout: float | None,
              initializer=None, initargs=(), progress=None) -> list:
    """Map in worker processes when it pays (more than a handful of items), else in-process.

    In-process, ``fn`` guards itself: the depth scan keeps the files that crash a native
    parser away from it, Python's own errors are caught, and a timer signal stops a file at
    its time limit. In workers, the pool also survives a worker that dies anyway."""
    if jobs <= 1 or len(items) < 16:
        if initializer:
            initializer(*initargs)
        out = []
        for item in items:
            out.append(fn(item))
            if progress:
                progress(1)
        return out
    return run(fn, items, jobs, on_failure, initializer=initializer, initargs=initargs,
               timeout=timeout, progress=progress)


def _died(slot: _Slot) -> str:
    slot.process.join(timeout=1)
    return f"the worker process analysing it {death_reason(slot.process.exitcode)}"

