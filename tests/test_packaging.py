"""The distribution: an sdist whose test suite runs, a wheel with py.typed, the metadata a
package index shows, the pre-commit hook manifest, and texts that stand on their own."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from codemods.passes import ALL_PASSES

ROOT = Path(__file__).resolve().parent.parent
NOT_SHIPPED = (".venv", ".git", "__pycache__", "*.egg-info", "build", "dist", ".sqla-fix-cache",
               ".ruff_cache", ".pytest_cache", ".mypy_cache", "*.pyc")


def tree_files(top: Path) -> set[str]:
    """Files under ``top`` that belong in the sdist, relative to ROOT."""
    ignored = shutil.ignore_patterns(*NOT_SHIPPED)
    out = set()
    for here, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d not in ignored(here, dirs)]
        kept = set(files) - ignored(here, files)
        out |= {os.path.relpath(os.path.join(here, f), ROOT).replace(os.sep, "/") for f in kept}
    return out


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> tuple[Path, Path]:
    """An sdist built from a copy of this tree, and a wheel built from that sdist."""
    work = tmp_path_factory.mktemp("dist")
    shutil.copytree(ROOT, work / "src", ignore=shutil.ignore_patterns(*NOT_SHIPPED))
    proc = subprocess.run([sys.executable, "-m", "build", "--sdist", "--wheel", "--no-isolation",
                           "--outdir", str(work / "out"), str(work / "src")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (sdist,) = (work / "out").glob("*.tar.gz")
    (wheel,) = (work / "out").glob("*.whl")
    return sdist, wheel


def test_sdist_has_everything_the_test_suite_needs_and_collects(dists, tmp_path):
    sdist, _ = dists
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
        tar.extractall(tmp_path, filter="data")
        pkg_info = tar.extractfile(f"{sdist.name[:-len('.tar.gz')]}/PKG-INFO").read().decode()
    wanted = tree_files(ROOT / "tests") | tree_files(ROOT / "samples") | tree_files(ROOT / "codemods")
    wanted |= {"LICENSE", "README.md", "Makefile", "pyproject.toml", ".pre-commit-hooks.yaml"}
    assert not wanted - names, sorted(wanted - names)[:10]
    assert not [n for n in names if ".sqla-fix-cache" in n or n.endswith(".pyc")]

    assert re.search(r"^License-Expression: MIT$", pkg_info, re.M)
    assert re.search(r"^Classifier: Typing :: Typed$", pkg_info, re.M)
    assert re.search(r"^Project-URL: (?i:homepage), https://", pkg_info, re.M)
    assert re.search(r"^Requires-Dist: pathspec", pkg_info, re.M)

    unpacked = tmp_path / sdist.name[:-len(".tar.gz")]
    env = {**os.environ, "PYTHONPATH": str(unpacked)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:xdist"],
                          cwd=unpacked, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    collected = {line.split("::")[0] for line in proc.stdout.splitlines() if "::" in line}
    assert collected == {f"tests/{p.name}" for p in (ROOT / "tests").glob("test_*.py")}


def test_wheel_is_typed_and_licensed(dists):
    _, wheel = dists
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        metadata = next(whl.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    assert "codemods/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "License-Expression: MIT" in metadata
    assert not [n for n in names if n.startswith("tests/")]


def test_license_file():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Copyright (c) 2026 the sqla-fix authors" in text


def test_user_facing_texts_cite_no_document_the_reader_cannot_see():
    """Explain pages, messages and the README describe the bugs themselves."""
    banned = re.compile(r"post-?mortem|\bseed\b", re.IGNORECASE)
    for p in ALL_PASSES:
        assert not banned.search(p.explain()), f"{p.code} explain page"
        for name, value in vars(p).items():
            if isinstance(value, str):
                assert not banned.search(value), f"{p.code}.{name}"
    for path in sorted((ROOT / "codemods").rglob("*.py")) + [ROOT / "README.md"]:
        assert not banned.search(path.read_text()), path.relative_to(ROOT)
