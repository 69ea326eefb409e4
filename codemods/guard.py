"""Reading other people's code safely: a file too deeply nested for a recursive parser is
recognised by a scan before any parser sees it, warnings that Python raises while compiling it
are kept off the terminal, and a file that takes too long is stopped.

libcst's native parser recurses once (and more) per level of nesting and overflows the C stack
(a segmentation fault, which no ``except`` catches) at around 1,500 nested brackets or a few
thousand nested lambdas; its Python side, like ``ast`` with its visitors, raises RecursionError
a few hundred levels deep. CPython itself rejects more than 200 nested brackets. So a file whose
statements nest deeper than :data:`MAX_DEPTH` (brackets, lambdas and unary operators counted
together) is not analysed at all.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import threading
import time
import tokenize
import warnings
from collections.abc import Iterator

MAX_DEPTH = 200  # CPython's own limit for nested brackets

_BRACKETS = bytes(range(256)).translate(None, b"()[]{}")
# Unary operators with the spaces between them deleted and ``+``, ``~`` spelled ``-``.
_AS_MINUS = bytes.maketrans(b"+~", b"--")
_UNARY_RUN = b"-" * MAX_DEPTH
_OPENERS = {"(", "[", "{"}
_CLOSERS = {")", "]", "}"}
_UNARY = {"-", "+", "~", "not", "await"}


class TooDeep(ValueError):
    """The source nests deeper than a recursive parser can safely follow."""

    def __init__(self, line: int) -> None:
        super().__init__(f"too deeply nested to analyse (more than {MAX_DEPTH} levels)")
        self.line = line


class FileTimeout(BaseException):
    """The per-file time limit ran out (a BaseException, so that no handler meant for a
    pass's bugs swallows it)."""


def _bracket_rounds(raw: bytes, limit: int) -> int:
    """How many rounds of deleting innermost bracket pairs the bytes take, up to ``limit``: an
    upper bound of the bracket depth (brackets inside strings and comments counted too), in C
    speed."""
    left = raw.translate(None, _BRACKETS)
    rounds = 0
    while rounds < limit:
        peeled = left.replace(b"()", b"").replace(b"[]", b"").replace(b"{}", b"")
        if len(peeled) == len(left):
            break
        left = peeled
        rounds += 1
    return rounds


def suspicious(raw: bytes) -> bool:
    """The cheap scan: False means the file certainly nests less than MAX_DEPTH."""
    return (_bracket_rounds(raw, MAX_DEPTH + 1) > MAX_DEPTH
            or raw.count(b"lambda") > MAX_DEPTH // 2
            or _UNARY_RUN in raw.replace(b"not", b"-").replace(b"await", b"-").translate(_AS_MINUS, b" \t\r\n\\\f"))


def deepest(raw: bytes) -> tuple[int, int]:
    """(depth, line) of the most deeply nested point, from the tokens: open brackets, plus
    lambdas whose body is still open, plus the current run of unary operators. An estimate
    from above of how deep a parser recurses; never parses."""
    depth_at = 0
    best = (0, 1)
    brackets = 0
    lambdas: list[int] = []  # bracket depth at which each open lambda started
    run = 0
    try:
        for tok in tokenize.tokenize(io.BytesIO(raw).readline):
            if tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
                brackets, lambdas, run = 0, [], 0
                continue
            if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING):
                continue
            text = tok.string
            if text in _OPENERS:
                brackets += 1
            elif text in _CLOSERS:
                brackets = max(0, brackets - 1)
                lambdas = [d for d in lambdas if d <= brackets]
            elif text == "," or text == ";":
                lambdas = [d for d in lambdas if d < brackets]
            elif text == "lambda":
                lambdas.append(brackets)
            run = run + 1 if text in _UNARY else 0
            depth_at = brackets + len(lambdas) + run
            if depth_at > best[0]:
                best = (depth_at, tok.start[0])
    except (tokenize.TokenError, SyntaxError, ValueError):
        # Cannot tokenize: judge by the cheap bound, at the line the tokenizer reached.
        if _bracket_rounds(raw, MAX_DEPTH + 1) > MAX_DEPTH or best[0] > MAX_DEPTH:
            return (MAX_DEPTH + 1, best[1])
        return best
    return best


def check_depth(raw: bytes | str) -> None:
    """Raise TooDeep when the source nests deeper than MAX_DEPTH."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if not suspicious(data):
        return
    depth, line = deepest(data)
    if depth > MAX_DEPTH:
        raise TooDeep(line)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """No warning raised while reading a file (SyntaxWarning, DeprecationWarning for invalid
    escapes in the analysed code) reaches the terminal."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise FileTimeout in this (main) thread after ``seconds``. Where no timer signal is
    available (another thread, another OS) the block runs unbounded; worker processes have
    their own limit, enforced from outside by the pool."""
    if not seconds or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum, frame):
        raise FileTimeout()

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --------------------------------------------------------------------------- test hooks

# Read only by the code that analyses one file, so tests can make a file behave like one that
# crashes or hangs the analysis. Each holds a file's base name.
KILL_HOOK = "SQLA_FIX_TEST_KILL_WORKER_ON"  # the worker process kills itself (SIGKILL)
# The analysis never ends. In a worker it also blocks the timer signal, as a hang inside
# native code would, so that only the pool's own limit stops it.
HANG_HOOK = "SQLA_FIX_TEST_HANG_ON"


def run_test_hooks(path: str, in_worker: bool) -> None:
    name = os.path.basename(path)
    if in_worker and os.environ.get(KILL_HOOK) == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get(HANG_HOOK) == name:
        if in_worker and hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        while True:
            time.sleep(0.05)


def one_line(detail: str, limit: int = 160) -> str:
    """An error's text as one short line (a `KeyError` of a syntax node prints the whole node)."""
    first = detail.strip().splitlines()[0] if detail.strip() else detail
    return first if len(first) <= limit else first[: limit - 3] + "..."
