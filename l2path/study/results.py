"""The study's results table (``results/study.csv``): one row per finished point
(``records.PointRecord.content_row``: no run fields), identity columns first, then the rest by
name."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from .. import atomic
from .records import PointRecord

FIRST_COLUMNS = ("key", "schedule", "seed", "lambda", "grid_index", "start", "parent")


def results_frame(records: list[PointRecord]) -> pd.DataFrame:
    """The records as a table (records read back from disk and fresh ones give the same table)."""
    frame = pd.DataFrame([record.content_row() for record in records])
    rest = sorted(set(frame.columns) - set(FIRST_COLUMNS))
    return frame[[c for c in FIRST_COLUMNS if c in frame.columns] + rest]


def write_results(path: str | Path, records: list[PointRecord]) -> pd.DataFrame:
    frame = results_frame(records)
    atomic.write_csv(path, frame)
    return frame


def read_results(path: str | Path) -> list[PointRecord]:
    """The points of a results table, in its order (without their per-epoch histories)."""
    with open(path, newline="") as handle:
        return [PointRecord.from_row(row) for row in csv.DictReader(handle)]
