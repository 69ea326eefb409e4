"""SQF009: a handler that swallows a failed commit of a session it was handed, in a `try`
followed in its own block by an unconditional `raise`, goes on only into that `raise`: left
alone, unless something between uses the session."""

from __future__ import annotations

import pytest

from codemods.config import Config
from codemods.engine import fix_text
from codemods.passes.rollback_after_failed_flush import RollbackAfterFailedFlush
from codemods.passes.rollback_after_failed_flush_examples import nested_handler


def _lines(between: str) -> list[int]:
    source = nested_handler(between).lstrip("\n")
    result = fix_text(source, Config(root="/project", select=("SQF009",)),
                      project=RollbackAfterFailedFlush.example_project, path="app/example.py")
    assert result.error is None
    return [f.line for f in result.findings]


@pytest.mark.parametrize("between", ["", "log.info('giving up on %s', names)"])
def test_a_handler_that_goes_on_only_into_a_raise_is_left_alone(between):
    assert _lines(between) == []


@pytest.mark.parametrize("between", ["log.info('left: %s', session.query(User).count())",
                                     "record_failure(session, 'again')"])
def test_a_use_of_the_session_before_the_raise_is_reported(between):
    assert _lines(between) == [18]
