"""The report's tables as a reader sees them: the columns that carry the answer first, named
in words with their units, numbers to 3 significant digits, and wide detail tables folded
behind a ``<details>`` so that the page fits 1,300 px.

A ``Column`` maps one column of a stage's table (its code name, as in the CSV) to a heading
and a format; ``display`` builds the shown table and ``folded`` wraps a full table.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Callable

import pandas as pd


def significant(value, digits: int = 3) -> str:
    """A number to ``digits`` significant digits ("–" for a missing one); text unchanged."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return f"{value:.{digits}g}"
    return str(value)


@dataclass(frozen=True)
class Column:
    source: str  # the column in the stage's table
    heading: str  # in words, with the unit
    show: Callable[[object], str] = significant


def display(table: pd.DataFrame, columns: list[Column], html_id: str) -> str:
    """The ``columns`` of ``table`` (those it has), headed in words, as an HTML table."""
    present = [column for column in columns if column.source in table]
    head = "".join(f"<th>{html.escape(column.heading)}</th>" for column in present)
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(column.show(row[column.source]))}</td>" for column in present)
        + "</tr>"
        for _, row in table.iterrows()
    )
    return (
        f'<table class="table" id="{html_id}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def folded(summary: str, table_html: str) -> str:
    """A wide detail table behind a ``<details>`` whose summary says what it holds."""
    return (
        f'<details class="wide"><summary>{html.escape(summary)}</summary>'
        f'<div class="scroll">{table_html}</div></details>'
    )


VERDICT_TABLE = [
    Column("verdict", "verdict"),
    Column("schedule", "schedule"),
    Column("seed", "seed", str),
    Column("lambda_from", "λ from"),
    Column("lambda_to", "λ to"),
    Column("change", "MSE change"),
    Column("control_change", "same-λ control's change"),
    Column("control_gap", "λ effect (change − control's)"),
    Column("control_gap_sd_paired", "its paired sd"),
    Column("z", "change / noise sd"),
]


def _steps(verdict: str) -> Column:
    return Column(verdict, f"steps: {verdict}", str)


CHAIN_TABLE = [
    Column("direction", "chain"),
    Column("seed", "seed", str),
    Column("drops", "drops of the MSE", str),
    Column("points", "points", str),
    Column("lambda_from", "λ from"),
    Column("lambda_to", "λ to"),
    Column("proved_minima", "proved minima", str),
    Column("proved_saddles", "proved saddles", str),
    Column("degenerate", "degenerate (flat, none below the margin)", str),
    Column("escapes", "saddles escaped", str),
    Column("mse_first", "MSE at the first point"),
    Column("mse_last", "MSE at the last point"),
    *(
        _steps(verdict)
        for verdict in (
            "one branch of minima",
            "fold jump",
            "saddle branch",
            "branch switch",
            "branch lost",
            "not followed",
        )
    ),
]
