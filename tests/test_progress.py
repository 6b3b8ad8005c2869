"""edge.progress outside a Prefect run (the bar only; the artifacts: tests/test_flows.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from edge.progress import progress


def test_workers_advancing_at_once_count_every_item():
    with progress("points", 1000, "points", "test") as bar:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: [bar.advance() for _ in range(250)], range(4)))
    assert bar.done == 1000 and bar.percent() == 100.0


def test_a_revised_total_and_an_empty_task():
    with progress("chains", 10, "points", "test") as bar:
        bar.advance(3)
        assert bar.percent() == 30.0
        bar.advance(1, total=4)  # the chains ended early: 4 points in all
    assert bar.percent() == 100.0
    with progress("nothing", 0, "points", "test") as empty:
        pass
    assert empty.percent() == 100.0
