"""Generated and mutated programs: `check` and `apply --yes` never crash, every written file
still parses, and a second `apply` changes nothing. (bench/fuzz.py runs the same at scale.)"""

from __future__ import annotations

import tempfile
from pathlib import Path

import hypothesmith
from fuzzing import HEAD, mutants, run_programs
from hypothesis import HealthCheck, given, settings


def _assert_clean(outcome) -> None:
    assert outcome.crashes == []
    assert outcome.unparsable == []
    assert outcome.unstable == []


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(hypothesmith.from_grammar())
def test_generated_programs(source):
    with tempfile.TemporaryDirectory() as tmp:
        _assert_clean(run_programs(Path(tmp), [HEAD + source]))


def test_line_mutations_of_the_samples(tmp_path):
    _assert_clean(run_programs(tmp_path, mutants(40, seed=9)))


def test_line_mutations_in_worker_processes(tmp_path):
    _assert_clean(run_programs(tmp_path, mutants(24, seed=10), jobs=2))
