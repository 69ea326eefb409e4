"""Start-up: commands that never look at a syntax tree never import libcst.

Timings belong in `make bench`; what is tested here is which modules a command loads, in a
fresh interpreter (the test process itself has imported everything long ago).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from snippets import BUGGY

from codemods.passes import ALL_PASSES

ROOT = Path(__file__).resolve().parent.parent

# Runs the command as `python -m codemods ARGS` would, then reports the libcst modules loaded.
PROBE = """
import json, runpy, sys
sys.argv = ["sqla-fix", *json.loads(sys.argv[1])]
try:
    runpy.run_module("codemods", run_name="__main__")
except SystemExit:
    pass
sys.stdout.flush()
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "libcst")), file=sys.stderr)
"""


def run_probe(args: list[str], cwd: Path, stdin: bytes | None = None) -> tuple[str, list[str]]:
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], cwd=cwd, input=stdin,
                          capture_output=True, timeout=300,
                          env={"PYTHONPATH": str(ROOT), "GIT_CEILING_DIRECTORIES": str(cwd.parent),
                               "PATH": "/usr/bin:/bin"})
    loaded = json.loads(proc.stderr.decode().strip().splitlines()[-1])
    return proc.stdout.decode(), loaded


@pytest.mark.parametrize("args, expected", [
    (["--version"], "sqla-fix, version"),
    (["rules"], ALL_PASSES[0].code),
    (["explain", "SQF002"], "# SQF002 merge-foreign-instance"),
])
def test_metadata_commands_do_not_import_libcst(tmp_path, args, expected):
    out, loaded = run_probe(args, tmp_path)
    assert expected in out
    assert loaded == []


def test_a_file_without_session_code_from_an_editor_is_a_byte_scan(tmp_path):
    source = b"def total(values):\n    seen = set()\n    for v in values:\n        seen.add(v)\n    return seen\n"
    (tmp_path / "plain.py").write_bytes(source)
    out, loaded = run_probe(["check", "-", "--stdin-filename", "plain.py"], tmp_path, stdin=source)
    assert "No findings" in out
    assert loaded == []


def test_a_file_with_a_finding_does_load_libcst(tmp_path):
    # The other side of the two tests above: the probe does see libcst when it is used.
    (tmp_path / "visits.py").write_text(BUGGY)
    out, loaded = run_probe(["check", "-", "--stdin-filename", "visits.py"], tmp_path, stdin=BUGGY.encode())
    assert "SQF002" in out
    assert "libcst" in loaded
