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
