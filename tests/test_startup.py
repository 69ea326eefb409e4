"""Start-up: commands that never look at a syntax tree never import libcst (nor the project
index); `--version` does not even import the command line.

Timings belong in `make bench`; what is tested here is which modules a command loads, in a
fresh interpreter (the test process itself has imported everything long ago).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from snippets import BUGGY

import codemods
from codemods.cli import cli
from codemods.passes import ALL_PASSES

ROOT = Path(__file__).resolve().parent.parent

# Runs the command as `python -m codemods ARGS` would, then reports the modules loaded.
PROBE = """
import json, runpy, sys
sys.argv = ["sqla-fix", *json.loads(sys.argv[1])]
try:
    runpy.run_module("codemods", run_name="__main__")
except SystemExit:
    pass
sys.stdout.flush()
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def run_probe(args: list[str], cwd: Path, stdin: bytes | None = None) -> tuple[str, list[str]]:
    """The command's output, and the libcst modules it loaded."""
    out, loaded = run_probe_all(args, cwd, stdin)
    return out, [m for m in loaded if m.split(".")[0] == "libcst"]


def run_probe_all(args: list[str], cwd: Path, stdin: bytes | None = None) -> tuple[str, list[str]]:
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


@pytest.mark.parametrize("args", [["rules"], ["rules", "--format", "json"], ["explain", "SQF011"]])
def test_rule_metadata_comes_without_the_project_index(tmp_path, args):
    # The passes' metadata sits in their modules; those name the index only for type checking
    # or through a lazy module, so listing or explaining rules never loads it.
    out, loaded = run_probe_all(args, tmp_path)
    assert "SQF011" in out
    assert "codemods.passes.session_never_closed" in loaded  # the probe does see the passes
    assert [m for m in loaded if m.startswith("codemods.index")] == []


def test_version_is_answered_before_the_command_line_is_imported(tmp_path):
    out, loaded = run_probe_all(["--version"], tmp_path)
    assert out.strip() == f"sqla-fix, version {codemods.__version__}"
    assert "click" not in loaded and "codemods.cli" not in loaded


def test_version_from_the_command_line_says_the_same(tmp_path):
    # `--version` among other arguments goes through click, which prints the same line.
    res = CliRunner().invoke(cli, ["--version"])
    assert res.output.strip() == f"sqla-fix, version {codemods.__version__}"


def test_a_file_without_session_code_from_an_editor_is_a_byte_scan(tmp_path):
    source = b"def total(values):\n    seen = set()\n    for v in values:\n        seen.add(v)\n    return seen\n"
    (tmp_path / "plain.py").write_bytes(source)
    out, loaded = run_probe(["check", "-", "--stdin-filename", "plain.py"], tmp_path, stdin=source)
    assert "No findings" in out
    assert loaded == []


def test_a_file_without_session_code_in_an_indexed_project_loads_neither_libcst_nor_the_index(tmp_path):
    # The warm path of an editor: the project's index and results are cached, the file on
    # stdin has a pass's trigger (`.add(`) but nothing session-related. Reading the cache and
    # the byte scans need neither the index's code nor worker processes.
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "0"\n')
    (tmp_path / "visits.py").write_text(BUGGY)
    plain = b"def total(values):\n    seen = set()\n    for v in values:\n        seen.add(v)\n    return seen\n"
    (tmp_path / "plain.py").write_bytes(plain)
    out, _ = run_probe_all(["check", "."], tmp_path)  # fills the caches
    assert "SQF002" in out
    out, loaded = run_probe_all(["check", "-", "--stdin-filename", "plain.py"], tmp_path, stdin=plain)
    assert "No findings" in out
    assert [m for m in loaded if m.split(".")[0] in ("libcst", "multiprocessing")] == []
    assert [m for m in loaded if m.startswith("codemods.index")] == []


def test_an_unchanged_file_from_an_editor_is_answered_from_the_caches(tmp_path):
    # The buffer is byte for byte the file on disk: the index's entry for the file and its
    # stored result serve; the file is neither indexed again nor parsed.
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "0"\n')
    (tmp_path / "visits.py").write_text(BUGGY)
    first, _ = run_probe_all(["check", "."], tmp_path)
    out, loaded = run_probe_all(["check", "-", "--stdin-filename", "visits.py"], tmp_path, stdin=BUGGY.encode())
    assert "SQF002" in out and "SQF002" in first
    assert [m for m in loaded if m.split(".")[0] == "libcst" or m.startswith("codemods.index")] == []
    # Edited in the editor, not saved: the buffer is what is checked.
    edited = BUGGY.replace("db.add(user)", "db.merge(user)")
    out, loaded = run_probe_all(["check", "-", "--stdin-filename", "visits.py"], tmp_path, stdin=edited.encode())
    assert "SQF002" not in out
    assert "codemods.index" in loaded


def test_a_file_with_a_finding_does_load_libcst(tmp_path):
    # The other side of the two tests above: the probe does see libcst when it is used.
    (tmp_path / "visits.py").write_text(BUGGY)
    out, loaded = run_probe(["check", "-", "--stdin-filename", "visits.py"], tmp_path, stdin=BUGGY.encode())
    assert "SQF002" in out
    assert "libcst" in loaded
