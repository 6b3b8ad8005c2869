"""Jobs in spawned processes: results in order, log lines in the parent, errors raised there."""

from __future__ import annotations

import os
from functools import partial

import pytest

from edge.process_pool import process_map


def square(log, value: int) -> tuple[int, int]:
    log(f"squaring {value}")
    if value < 0:
        raise ValueError(f"negative {value}")
    return value * value, os.getpid()


def test_jobs_run_in_other_processes_and_their_log_lines_reach_the_parent():
    lines: list[str] = []
    with process_map(2, lines.append) as (map_, log):
        results = list(map_(partial(square, log), [3, 1, 2]))
    assert [r for r, _ in results] == [9, 1, 4]
    assert os.getpid() not in {pid for _, pid in results}
    assert sorted(lines) == ["squaring 1", "squaring 2", "squaring 3"]


def test_a_jobs_error_is_raised_in_the_parent():
    with pytest.raises(ValueError, match="negative -1"):
        with process_map(2, lambda line: None) as (map_, log):
            list(map_(partial(square, log), [1, -1]))
