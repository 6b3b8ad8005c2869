"""The lambda study's loop: resume from the store, then train round after round until every
chain has ended. Production (the ``train-shard`` task) and the tests run this same loop.

``on_point(record)`` is called for every finished point or control not yet reported (its
``mlflow_run_id`` is None): the points found in the store that a killed run never
reported, then each point as soon as it is finished. It returns the record to keep (e.g.
with its tracking run id), which is saved back to the store. ``on_round(batch, progress)``
is called before each round. A re-run skips every point whose record is present with the
same fingerprint, and rebuilds the rounds of an uninterrupted run, so a killed study
resumes to the same numbers bit for bit.
"""

from __future__ import annotations

from typing import Callable

from ..data.dataset import Dataset
from .planner import StudyPlan
from .points import RoundContext, train_round
from .progress import Progress
from .records import PointRecord
from .schedules import Point
from .store import PointStore

PointHook = Callable[[PointRecord], PointRecord]
RoundHook = Callable[[list[Point], Progress], None]


def _report(
    progress: Progress, store: PointStore, record: PointRecord, on_point: PointHook | None
) -> None:
    if on_point is None:
        return
    reported = on_point(record)
    if reported != record:
        store.update(reported)
        progress.update(reported)


def run_study(
    plan: StudyPlan,
    data: Dataset,
    store: PointStore,
    label: str = "",
    on_point: PointHook | None = None,
    on_round: RoundHook | None = None,
) -> Progress:
    """Train every unfinished point of ``plan``; returns the final progress (``results()``)."""
    progress = Progress.resume(plan, store)
    for record in progress.results() + progress.control_results():
        if record.mlflow_run_id is None:
            _report(progress, store, progress.records[record.key], on_point)
    context = RoundContext(plan, data, store, label)
    while batch := progress.next_round():
        if on_round is not None:
            on_round(batch, progress)
        for record in train_round(context, progress, batch):
            progress.accept(record)
            _report(progress, store, record, on_point)
    return progress
