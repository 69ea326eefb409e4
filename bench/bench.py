"""Benchmark: sqla-fix against ruff, side by side, on a real project and a generated one.

`make bench` (or `python bench/bench.py`) does, all in one run on this machine:

- installs ruff (pinned) into its own virtualenv, ``bench/.work/ruff-venv``, and sqla-fix (this
  tree, as pip installs it, not the editable install of ``make install``) into another,
  ``bench/.work/sqla-venv``;
- downloads a real application's source distribution from the package registry (pinned:
  prefect, whose ``prefect/server`` is SQLAlchemy async code) and unpacks it to ``bench/.work/``;
- generates a repository of FILES modules (SHARE of them use sessions, the rest use sets, so
  the prefilter's `.add(` trigger is exercised honestly);
- times both tools on both projects and prints one table per project: the full check without a
  cache, a re-run with nothing changed (cached), one file from an editor (stdin) for a file
  with session code (as on disk, and edited: the buffer differs from the file) and one
  without, start-up, and peak memory, each with its target and PASS/FAIL.

Each figure is the best of N runs (the machine may be shared; the best run is the one least
disturbed); the CPU seconds (user + system, all processes) are shown too, as they depend less
on what else the machine is doing. Ratios are sqla-fix / ruff within this run. Peak memory is the largest resident set
of any one process of the run (wait4's ru_maxrss). ``bench/.work/`` is not tracked by git.

    python bench/bench.py [--files 2000] [--lines 150] [--share 0.05] [--repeat 1] [--skip-real]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass

import editor_server  # the server's session runs in a process of its own (see its docstring)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "bench", ".work")
RUFF = "ruff==0.17.5"
REAL = "prefect==3.9.1"
# The real project's files for the editor figures: one full of session code (its SQLAlchemy
# models layer), one that never mentions a session.
REAL_SESSION_FILE = "src/prefect/server/models/work_queues.py"
REAL_PLAIN_FILE = "src/prefect/utilities/collections.py"

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


def make_generated(path: str, files: int, lines: int, share: float) -> None:
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    with open(os.path.join(path, "pyproject.toml"), "w") as fh:  # the project marker
        fh.write('[project]\nname = "generated"\nversion = "0"\n')
    make_repo(path, files, lines, share)
    own_repository(path)


# --------------------------------------------------------------------------- environment


def own_repository(path: str) -> None:
    """Make ``path`` a git work tree of its own, as a checkout would be. Without it the tree
    would belong to sqla-fix's own repository, whose .gitignore ignores ``bench/.work/``, and
    both tools, which follow git's ignore rules, would find no file."""
    subprocess.run(["git", "init", "-q", path], check=True)


def _pip(python: str, *args: str) -> None:
    subprocess.run([python, "-m", "pip", "-q", "--disable-pip-version-check", *args], check=True)


def ensure_ruff() -> str:
    venv = os.path.join(WORK, "ruff-venv")
    ruff = os.path.join(venv, "bin", "ruff")
    stamp = os.path.join(venv, ".installed-" + RUFF)
    if not os.path.exists(stamp):
        subprocess.run([sys.executable, "-m", "venv", "--clear", venv], check=True)
        _pip(os.path.join(venv, "bin", "python"), "install", RUFF)
        open(stamp, "w").close()
    return ruff


def ensure_sqla() -> list[str]:
    """sqla-fix as pip installs it (a wheel of this tree, built now), in the bench's own
    virtualenv, ``bench/.work/sqla-venv``: the editable install of ``make install`` adds
    setuptools' import finder to every start-up (a third of it), which users do not have."""
    venv = os.path.join(WORK, "sqla-venv")
    python = os.path.join(venv, "bin", "python")
    stamp = os.path.join(venv, ".installed-server")
    if not os.path.exists(stamp):
        subprocess.run([sys.executable, "-m", "venv", "--clear", venv], check=True)
        _pip(python, "install", ROOT + "[server]")  # with its dependencies, and pygls for `sqla-fix server`
        open(stamp, "w").close()
    _pip(python, "install", "--no-deps", "--force-reinstall", ROOT)  # this tree's code, as it is now
    return [python, "-m", "codemods"]


def ensure_real() -> str:
    """The real project's sdist, unpacked once (a fresh copy of the sources on every run, so
    caches and stray files of earlier runs never count)."""
    name, version = REAL.split("==")
    downloads = os.path.join(WORK, "downloads")
    sdist = os.path.join(downloads, f"{name}-{version}.tar.gz")
    if not os.path.exists(sdist):
        os.makedirs(downloads, exist_ok=True)
        _pip(sys.executable, "download", "--no-deps", "--no-binary", ":all:", "-d", downloads, REAL)
    target = os.path.join(WORK, f"{name}-{version}")
    shutil.rmtree(target, ignore_errors=True)
    with tarfile.open(sdist) as tar:
        tar.extractall(WORK, filter="data")
    own_repository(target)
    return target


# --------------------------------------------------------------------------- measuring


@dataclass
class Run:
    seconds: float
    peak_mb: float
    cpu: float = 0.0  # user + system seconds of the process and its children


def run(cmd: list[str], cwd: str, stdin: str | None = None) -> Run:
    """One process: wall time and its peak resident set (its own or any child's)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    stdin_fh = open(stdin, "rb") if stdin else subprocess.DEVNULL
    try:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdin=stdin_fh, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env=env)
        err = proc.stderr.read() if proc.stderr else b""
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if stdin:
            stdin_fh.close()  # type: ignore[union-attr]
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.decode(errors='replace')}")
    return Run(seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime)


def best(cmd: list[str], cwd: str, n: int, stdin: str | None = None) -> Run:
    runs = [run(cmd, cwd, stdin) for _ in range(n)]
    return Run(min(r.seconds for r in runs), max(r.peak_mb for r in runs), min(r.cpu for r in runs))


SQLA = [sys.executable, "-m", "codemods"]  # replaced by main() with the bench's own install


def count_files(path: str) -> int:
    return sum(1 for _, dirs, names in os.walk(path) for n in names if n.endswith(".py"))


@dataclass
class Row:
    figure: str
    ours: Run
    theirs: Run | None
    target: str
    ok: bool | None  # None: a figure without a target
    files: int = 0  # for files/s
    memory: bool = False  # a row about peak memory, not time

    def cells(self) -> list[str]:
        verdict = "" if self.ok is None else "PASS" if self.ok else "FAIL"
        if self.memory and self.theirs:
            return [self.figure, f"{self.ours.peak_mb:.0f} MB", f"{self.theirs.peak_mb:.0f} MB",
                    f"{self.ours.peak_mb / self.theirs.peak_mb:.2f}x", "", "", "", self.target, verdict]
        ratio = f"{self.ours.seconds / self.theirs.seconds:.2f}x" if self.theirs else ""
        rate = ""
        if self.files:
            rate = f"{self.files / self.ours.seconds:,.0f} / {self.files / self.theirs.seconds:,.0f}" if self.theirs else ""
        theirs = f"{self.theirs.seconds:.3f} s" if self.theirs else ""
        peak = f"{self.ours.peak_mb:.0f} / {self.theirs.peak_mb:.0f}" if self.theirs else f"{self.ours.peak_mb:.0f}"
        cpu = f"{self.ours.cpu:.2f} / {self.theirs.cpu:.2f}" if self.theirs else f"{self.ours.cpu:.2f}"
        return [self.figure, f"{self.ours.seconds:.3f} s", theirs, ratio, rate, cpu, peak, self.target, verdict]


def measure(path: str, ruff: str, session_file: str, plain_file: str, repeat: int, changes: int) -> list[Row]:
    files = count_files(path)
    rows: list[Row] = []
    for cache in (".sqla-fix-cache", ".ruff_cache"):
        shutil.rmtree(os.path.join(path, cache), ignore_errors=True)

    cold = best([*SQLA, "check", "--no-cache", "--no-progress", "."], path, repeat)
    ruff_cold = best([ruff, "check", "--isolated", "--select", "ALL", "--no-cache", "--exit-zero", "."], path, repeat)
    rows.append(Row("full check, no cache (ruff: `--select ALL --no-cache`)", cold, ruff_cold, "ratio <= 1.0",
                    cold.seconds <= ruff_cold.seconds, files))

    warm_cmd = [*SQLA, "check", "--no-progress", "."]
    ruff_warm_cmd = [ruff, "check", "--isolated", "--select", "F", "--exit-zero", "."]
    run(warm_cmd, path)  # fills the caches
    run(ruff_warm_cmd, path)
    warm = best(warm_cmd, path, max(repeat, 3))
    ruff_warm = best(ruff_warm_cmd, path, max(repeat, 3))
    rows.append(Row("re-run, nothing changed (ruff: `--select F`, cached)", warm, ruff_warm, "ratio <= 2.0",
                    warm.seconds <= 2 * ruff_warm.seconds, files))

    # What `check` starts with before it looks at a file: the interpreter, the command line and
    # the passes' metadata, as `rules` loads them (`--version` is answered before the command
    # line is even imported, so it is no measure of that).
    startup = None
    for label, args in (("--version", ["--version"]), ("rules", ["rules"]), ("explain SQF002", ["explain", "SQF002"])):
        ours = best([*SQLA, *args], path, 7)
        if label == "rules":
            startup = ours
        theirs = best([ruff, "--version"], path, 7) if label == "--version" else None
        rows.append(Row(f"start-up: `{label}`", ours, theirs, "< 0.15 s", ours.seconds < 0.15))
    assert startup is not None

    for label, name in (("session code", session_file), ("no session code", plain_file)):
        ours = best([*SQLA, "check", "-", "--stdin-filename", name], path, 5, stdin=os.path.join(path, name))
        theirs = best([ruff, "check", "--isolated", "--select", "ALL", "--exit-zero", "-", "--stdin-filename", name],
                      path, 5, stdin=os.path.join(path, name))
        if label == "session code":
            rows.append(Row(f"one file from an editor, {label}", ours, theirs, "< 0.3 s", ours.seconds < 0.3))
            # As it is while one types: the buffer is not the file on disk, so no stored result
            # serves and the file is analysed against the stored index.
            edited = os.path.join(WORK, "edited.py")
            with open(os.path.join(path, name), "rb") as src, open(edited, "wb") as out:
                out.write(src.read() + b"\n# edited\n")
            ours = best([*SQLA, "check", "-", "--stdin-filename", name], path, 3, stdin=edited)
            theirs = best([ruff, "check", "--isolated", "--select", "ALL", "--exit-zero", "-", "--stdin-filename", name],
                          path, 3, stdin=edited)
            rows.append(Row(f"one file from an editor, {label}, edited (buffer differs from the file)", ours, theirs,
                            "< 0.3 s", ours.seconds < 0.3))
        else:
            after = ours.seconds - startup.seconds
            rows.append(Row(f"one file from an editor, {label} ({after:.3f} s after the start-up of `rules`)", ours, theirs,
                            "< 0.1 s after start-up", after < 0.1))

    rows += server_rows(path, session_file, plain_file, changes)
    rows.append(Row("peak memory, full check (one process)", cold, ruff_cold, "< 500 MB", cold.peak_mb < 500,
                    memory=True))
    return rows


def server_rows(path: str, session_file: str, plain_file: str, n: int) -> list[Row]:
    """`sqla-fix server` driven by an LSP client over stdio (see bench/editor_server.py). Its
    peak memory is the server process's, over the whole session."""
    f = editor_server.measure(path, SQLA, session_file, plain_file, n)
    rows = [Row("server: start, initialize, first open of the session file -> diagnostics (indexes the project, "
                "with the cache the runs above left)", Run(f.first_open.seconds, f.peak_mb, f.first_open.cpu),
                None, "", None)]
    for kind, samples in f.change.items():
        rows.append(_warm_row(f"server, warm: the session file changed ({kind.value}) -> diagnostics", samples,
                              f.peak_mb, 0.3))
    rows.append(_warm_row("server, warm: the file with no session code changed (an added comment line) -> diagnostics",
                          f.plain_change, f.peak_mb, 0.1))
    if f.action:
        rows.append(_warm_row(f"server, warm: code actions on a finding of the session file ({f.findings} there)",
                              f.action, f.peak_mb, 0.3))
    shutil.rmtree(os.path.join(path, ".sqla-fix-cache"), ignore_errors=True)
    cold = editor_server.measure(path, SQLA, session_file, plain_file, n, first_only=True)
    rows.append(Row("server: start, initialize, first open of the session file -> diagnostics, no cache",
                    Run(cold.first_open.seconds, cold.peak_mb, cold.first_open.cpu), None, "", None))
    return rows


def _warm_row(figure: str, samples: list[editor_server.Sample], peak_mb: float, target: float) -> Row:
    """The best of the samples in the table; the verdict on the median (a keystroke of an
    ordinary moment, not the luckiest), which the figure's name gives with its CPU seconds."""
    wall = statistics.median(s.seconds for s in samples)
    cpu = statistics.median(s.cpu for s in samples)
    best = Run(min(s.seconds for s in samples), peak_mb, min(s.cpu for s in samples))
    return Row(f"{figure}: best of {len(samples)}; median {wall:.3f} s, CPU {cpu:.2f} s", best, None,
               f"median < {target} s", wall < target)


def table(rows: list[Row]) -> str:
    head = ["figure", "sqla-fix", "ruff", "ratio", "files/s (sqla-fix / ruff)", "CPU s (sqla-fix / ruff)",
            "peak MB (sqla-fix / ruff)",
            "target", "result"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines)


def lines_of(path: str) -> int:
    total = 0
    for here, _, names in os.walk(path):
        for n in names:
            if n.endswith(".py"):
                with open(os.path.join(here, n), "rb") as fh:
                    total += fh.read().count(b"\n")
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--lines", type=int, default=150)
    ap.add_argument("--share", type=float, default=0.05)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each full check (the best counts)")
    ap.add_argument("--skip-real", action="store_true", help="only the generated repository")
    ap.add_argument("--changes", type=int, default=10, help="edits of each kind sent to the editor server")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    os.makedirs(WORK, exist_ok=True)
    ruff = ensure_ruff()
    SQLA[:] = ensure_sqla()
    ruff_version = subprocess.run([ruff, "--version"], capture_output=True, text=True).stdout.strip()
    projects = []
    if not args.skip_real:
        projects.append((f"{REAL.replace('==', ' ')} (sdist)", ensure_real(), REAL_SESSION_FILE, REAL_PLAIN_FILE))
    generated = os.path.join(WORK, "generated")
    make_generated(generated, args.files, args.lines, args.share)
    session_file, plain_file = _generated_examples(generated)
    projects.append((f"generated ({args.share:.0%} use sessions)", generated, session_file, plain_file))
    failed = 0
    for title, path, session, plain in projects:
        rows = measure(path, ruff, session, plain, args.repeat, args.changes)
        failed += sum(r.ok is False for r in rows)
        print(f"\n{title}: {count_files(path)} files, {lines_of(path):,} lines; {ruff_version}; {cores} cores; "
              f"load average {os.getloadavg()[0]:.1f}\n")
        print(table(rows))
    print(f"\n{failed} target{'s' if failed != 1 else ''} missed.")


def _generated_examples(path: str) -> tuple[str, str]:
    session = plain = None
    for here, _, names in sorted(os.walk(path)):
        for n in sorted(names):
            if not n.endswith(".py"):
                continue
            full = os.path.join(here, n)
            with open(full, encoding="utf-8") as fh:
                uses = "sqlalchemy" in fh.read()
            rel = os.path.relpath(full, path)
            if uses and session is None:
                session = rel
            elif not uses and plain is None:
                plain = rel
    assert session and plain, "the generated repository needs both kinds of module"
    return session, plain


if __name__ == "__main__":
    main()
