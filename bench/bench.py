"""Benchmark: sqla-fix on a generated legacy-sized repository, as ratios within one run.

The repository has FILES modules of about LINES lines each; SHARE of them use SQLAlchemy
sessions (some with an SQF002 bug), the rest are ordinary code that uses sets (`.add(`), so
the prefilter is exercised honestly. Measured, all in this one run on this machine:

- baseline: libcst.parse_module of every file, in one process (what a naive libcst codemod
  pays before doing anything);
- sqla-fix check with -j1 and with all cores.

Ratios, not absolute times, are what to compare between machines. Usage:

    python bench/bench.py [--files 2000] [--lines 150] [--share 0.05]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

import libcst

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PLAIN = '''\
"""Ordinary module {i}: no database at all."""

import itertools


class Registry{i}:
    def __init__(self) -> None:
        self.items: set[int] = set()

    def register(self, value: int) -> None:
        self.items.add(value)

'''

FUNC = '''
def helper_{i}_{j}(values: list[int]) -> int:
    seen = set()
    total = 0
    for v in values:
        if v not in seen:
            seen.add(v)
            total += v * {j}
    return total
'''

SESSION = '''\
"""A service module {i} that uses sessions."""

from sqlalchemy.orm import Session, sessionmaker


def record_visit_{i}(user, db: Session) -> None:
    user.visits += 1
    db.add(user)
    db.commit()


def handle_{i}(SessionLocal: sessionmaker, user_id: int) -> None:
    auth = SessionLocal()
    user = auth.get(User, user_id)
    with SessionLocal() as db:
        record_visit_{i}(user, db)

'''


def make_repo(path: str, files: int, lines: int, share: float, seed: int = 7) -> int:
    rng = random.Random(seed)
    total_lines = 0
    for i in range(files):
        pkg = os.path.join(path, f"pkg{i % 40:02d}")
        os.makedirs(pkg, exist_ok=True)
        head = SESSION if rng.random() < share else PLAIN
        body = [head.format(i=i)]
        j = 0
        while sum(b.count("\n") for b in body) < lines:
            body.append(FUNC.format(i=i, j=j))
            j += 1
        text = "".join(body)
        total_lines += text.count("\n")
        with open(os.path.join(pkg, f"mod{i:05d}.py"), "w") as fh:
            fh.write(text)
    return total_lines


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def baseline(path: str) -> None:
    for here, _, names in os.walk(path):
        for name in names:
            if name.endswith(".py"):
                with open(os.path.join(here, name), encoding="utf-8") as fh:
                    libcst.parse_module(fh.read())


def sqla_fix(path: str, jobs: int) -> None:
    proc = subprocess.run([sys.executable, "-m", "codemods", "check", "--no-progress", "-j", str(jobs), "."],
                          cwd=path, capture_output=True, env=dict(os.environ, PYTHONPATH=ROOT))
    if proc.returncode not in (0, 1):
        raise SystemExit(proc.stderr.decode())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--lines", type=int, default=150)
    ap.add_argument("--share", type=float, default=0.05)
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    tmp = tempfile.mkdtemp(prefix="sqla-fix-bench-")
    try:
        lines = make_repo(tmp, args.files, args.lines, args.share)
        t_base = timed(lambda: baseline(tmp))
        t_one = timed(lambda: sqla_fix(tmp, 1))
        t_all = timed(lambda: sqla_fix(tmp, cores))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"repository: {args.files} files, {lines} lines, {args.share:.0%} use sessions; {cores} cores")
    print(f"libcst parse of every file (1 process): {t_base:6.2f} s  = 1.00")
    print(f"sqla-fix check -j1:                     {t_one:6.2f} s  = {t_one / t_base:.2f} of the baseline")
    print(f"sqla-fix check -j{cores}:                     {t_all:6.2f} s  = {t_all / t_base:.2f} of the baseline")


if __name__ == "__main__":
    main()
