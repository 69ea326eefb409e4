"""Parsing without libcst's per-node checks: the same trees, and checks kept elsewhere."""

from __future__ import annotations

import threading
from pathlib import Path

import libcst
import pytest

from codemods import trees

SAMPLES = sorted((Path(__file__).resolve().parents[1] / "samples").rglob("*.py"))


@pytest.mark.parametrize("path", SAMPLES[:12], ids=lambda p: p.name)
def test_a_parse_without_checks_gives_the_tree_a_checked_parse_gives(path):
    text = path.read_text(encoding="utf-8")
    unchecked = trees.parse_text(text)
    assert unchecked.deep_equals(libcst.parse_module(text))
    assert unchecked.code == text


def test_the_checks_are_off_while_this_thread_parses():
    with trees._unchecked():
        assert libcst.Name("").value == ""  # what a parser never builds, unchecked here
        with trees._unchecked():  # nested: still off
            libcst.Name("")
        libcst.Name("")
    with pytest.raises(libcst.CSTValidationError):
        libcst.Name("")


def test_a_node_built_outside_a_parse_is_still_checked():
    trees.parse_text("x = 1\n")  # the hook is in place from now on
    with pytest.raises(libcst.CSTValidationError):
        libcst.Name("")
    with pytest.raises(libcst.CSTValidationError):
        libcst.Name("two words")


def test_a_node_built_in_another_thread_during_a_parse_is_checked():
    """The checks are off for the thread that parses only."""
    errors: list[BaseException] = []
    started, done = threading.Event(), threading.Event()

    def build() -> None:
        started.wait()
        try:
            libcst.Name("")
        except libcst.CSTValidationError as exc:
            errors.append(exc)
        done.set()

    thread = threading.Thread(target=build)
    thread.start()
    with trees._unchecked():
        started.set()
        done.wait(10)
    thread.join()
    assert len(errors) == 1


def test_a_syntax_error_is_still_raised():
    with pytest.raises(libcst.ParserSyntaxError):
        trees.parse_text("def (:\n")
    libcst.Name("ok")  # and the checks are back after the failed parse
    with pytest.raises(libcst.CSTValidationError):
        libcst.Name("")


ACCEPTED_NOT_REBUILT = "f = b if b else(lambda: 1)\n"  # libcst's parser takes it, its checks do not


def test_a_tree_whose_nodes_libcst_would_reject_is_not_rebuildable():
    assert trees.rebuildable(trees.parse_text("f = b if b else (lambda: 1)\n"))
    assert not trees.rebuildable(trees.parse_text(ACCEPTED_NOT_REBUILT))


def test_a_fix_in_a_file_libcst_cannot_rebuild_is_not_made_and_the_findings_stand():
    """Such a file is analysed (its findings are real); a fix there would fail half-way, as
    libcst checks each node it rebuilds: the fix is not offered, and the file says why."""
    from codemods.config import Config
    from codemods.engine import fix_text

    source = ("from sqlalchemy.exc import IntegrityError\nfrom sqlalchemy.orm import Session\n\n\n"
              "def save(db: Session, item, b) -> None:\n    " + ACCEPTED_NOT_REBUILT +
              "    try:\n        db.commit()\n    except IntegrityError:\n        pass\n    db.add(item)\n    db.commit()\n")
    result = fix_text(source, Config(select=("SQF009",)))
    assert [f.code for f in result.findings] == ["SQF009"]
    assert not result.findings[0].fixable and result.new_text is None
    assert result.error is not None and "fixes not applied: libcst cannot rebuild" in result.error
    clean = fix_text(source.replace("else(", "else ("), Config(select=("SQF009",)))
    assert clean.error is None and clean.findings[0].fixable and clean.new_text is not None
