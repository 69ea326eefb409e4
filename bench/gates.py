#!/usr/bin/env python3
"""Do the passes' gates turn away a file a pass would report on?

A pass runs on a file only when the file's `ast` facts show something it could match
(``Pass.wants``). This runs the check of each project twice, in-process and with one worker:
once as the command does, once with every gate open (every pass on every file the byte scan
lets through), and prints what only the second run finds. Anything printed is a gate that
says no too early: the pass's finding is lost in a normal run.

Usage: python bench/gates.py DIR [DIR...]    (exit status 1 when a finding differs)
"""

from __future__ import annotations

import os
import sys

from codemods import config as config_mod
from codemods import engine
from codemods.discovery import discover
from codemods.passes import ALL_PASSES

Finding = tuple[str, int, str, str]


def findings(root: str) -> set[Finding]:
    cwd = os.getcwd()
    os.chdir(root)
    try:
        config = config_mod.load(root)
        files = discover(["."])
        results = engine.run_files(files, engine.build_index(files, config, 1), config, 1)
        return {(r.path, f.line, f.code, f.message) for r in results for f in r.findings}
    finally:
        os.chdir(cwd)


def ungated(root: str) -> set[Finding]:
    saved = {p: p.__dict__.get("wants") for p in ALL_PASSES}
    for p in ALL_PASSES:
        p.wants = classmethod(lambda cls, index, facts: True)  # type: ignore[method-assign,assignment]
    try:
        return findings(root)
    finally:
        for p, wants in saved.items():
            if wants is None:
                del p.wants
            else:
                p.wants = wants  # type: ignore[method-assign]


def main(roots: list[str]) -> int:
    status = 0
    for root in roots:
        root = os.path.abspath(root)
        gated, opened = findings(root), ungated(root)
        print(f"{root}: {len(gated)} findings gated, {len(opened)} ungated")
        for path, line, code, message in sorted(opened ^ gated):
            status = 1
            side = "only ungated" if (path, line, code, message) in opened else "only gated"
            print(f"  {side}: {path}:{line}: {code} {message[:160]}")
    return status


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
