"""A fuzz campaign, far larger than the suite's: generated programs (hypothesmith) and random
line mutations of the samples, run through `check`, `apply --yes` and a second `apply --yes`.

    .venv/bin/python bench/fuzz.py --generated 1000 --mutated 2000 [--jobs 2] [--seed 1]

Prints the programs tried, the crashes (a run that ended other than 0 or 1, or reported an
internal error), the written files that do not parse and the files a second apply changed
again. Exit status 1 when any of those is not zero.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fuzzing import HEAD, Outcome, mutants, run_programs  # noqa: E402


def generated(count: int, seed: int) -> list[str]:
    import hypothesmith
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed

    out: list[str] = []

    @hseed(seed)
    @settings(max_examples=count, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(hypothesmith.from_grammar())
    def collect(source):
        out.append(HEAD + source)

    collect()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generated", type=int, default=500)
    parser.add_argument("--mutated", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100, help="files per run")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    programs = generated(args.generated, args.seed) + mutants(args.mutated, args.seed)
    total = Outcome()
    with tempfile.TemporaryDirectory() as tmp:
        for start in range(0, len(programs), args.batch):
            batch = programs[start:start + args.batch]
            total.merge(run_programs(Path(tmp) / f"b{start}", batch, jobs=args.jobs))
            print(f"{total.programs} programs: {len(total.crashes)} crashes, "
                  f"{len(total.unparsable)} unparsable outputs, {len(total.unstable)} unstable",
                  file=sys.stderr, flush=True)
    for kind in ("crashes", "unparsable", "unstable"):
        for item in getattr(total, kind)[:10]:
            print(f"{kind}: {item}")
    print(f"programs tried: {total.programs} ({len(programs) - args.mutated} generated, {args.mutated} mutated); "
          f"crashes: {len(total.crashes)}; unparsable outputs: {len(total.unparsable)}; "
          f"second apply changed: {len(total.unstable)}")
    return 1 if total.crashes or total.unparsable or total.unstable else 0


if __name__ == "__main__":
    sys.exit(main())
