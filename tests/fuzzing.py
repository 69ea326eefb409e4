"""Fuzzing sqla-fix: programs in, `check` and `apply --yes` run over them, and what must always
hold is checked. Used by tests/test_fuzz.py (a few dozen programs) and bench/fuzz.py (a long
campaign)."""

from __future__ import annotations

import ast
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from click.testing import CliRunner

from codemods.cli import cli

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted(ROOT.glob("samples/*/*.py"))
HEAD = "from sqlalchemy.orm import Session\n"  # so the prefilter lets generated programs through


def mutate(text: str, rng: random.Random) -> str:
    """One to three random line edits: delete, duplicate or swap lines."""
    lines = text.splitlines(keepends=True)
    for _ in range(rng.randint(1, 3)):
        if len(lines) < 2:
            break
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        op = rng.choice(("delete", "duplicate", "swap"))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(j, lines[i])
        else:
            lines[i], lines[j] = lines[j], lines[i]
    return "".join(lines)


def mutants(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = [p.read_text() for p in SAMPLES]
    return [mutate(rng.choice(texts), rng) for _ in range(count)]


def _parses(text: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(text)
        return True
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False


@dataclass
class Outcome:
    programs: int = 0
    crashes: list[str] = field(default_factory=list)  # a run ended other than 0/1, or said "internal error"
    unparsable: list[str] = field(default_factory=list)  # apply wrote code that does not parse
    unstable: list[str] = field(default_factory=list)  # a second apply changed something again

    def merge(self, other: Outcome) -> None:
        self.programs += other.programs
        self.crashes += other.crashes
        self.unparsable += other.unparsable
        self.unstable += other.unstable


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [*args, "--no-cache", "--no-progress"], catch_exceptions=True)
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return 99, f"{result.exception!r}"
    return result.exit_code, text


def run_programs(directory: Path, programs: list[str], jobs: int = 1) -> Outcome:
    """Write ``programs`` as files of ``directory`` and run check, apply --yes, apply --yes."""
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for i, text in enumerate(programs):
        path = directory / f"p{i:05}.py"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        files.append(path)
    before = {p: p.read_bytes() for p in files}
    out = Outcome(programs=len(programs))
    j = ["-j", str(jobs)]
    for args in (("check", *j, str(directory)), ("apply", "--yes", "--allow-dirty", *j, str(directory))):
        code, text = _run(*args)
        if code not in (0, 1) or "internal error" in text:
            out.crashes.append(f"{args[0]}: exit {code}: {text[-2000:]}")
    after = {p: p.read_bytes() for p in files}
    for p in files:
        if after[p] != before[p] and _parses(before[p].decode("utf-8", "replace")) \
                and not _parses(after[p].decode("utf-8", "replace")):
            out.unparsable.append(str(p))
    code, text = _run("apply", "--yes", "--allow-dirty", *j, str(directory))
    if code not in (0, 1) or "internal error" in text:
        out.crashes.append(f"second apply: exit {code}: {text[-2000:]}")
    out.unstable.extend(str(p) for p in files if p.read_bytes() != after[p])
    return out
