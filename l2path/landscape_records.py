"""The hessian stage's typed rows: one type per table it writes and one for its metrics
(``rows.Row``: ``to_row``/``from_row``, ``to_json``/``from_json``, unknown and missing keys
refused). The stage's computation (``landscape``) makes them; the report reads them back.

| type | file |
|---|---|
| ``CurvaturePoint`` | ``results/hessian.csv`` |
| ``EscapeRow`` | ``results/escapes.csv`` |
| ``InterpolationRow`` | ``results/interpolation.csv`` |
| ``SaddleStep`` | ``results/saddle_steps.csv`` |
| ``HessianSummary`` | ``metrics/hessian.json`` |
| ``spectrum_path`` | ``<paths.spectra_dir>/<point key>.npz`` |


A point's class is the gradient rule's (``curvature.spectrum.classify``): minimum, saddle or
not critical; a step whose start was not analysed has the start class ``NOT_ANALYSED``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from .curvature.classes import CRITICAL_CLASSES, PointClass
from .rows import Row, column

NOT_ANALYSED = "not analysed"


def spectrum_path(spectra_dir: str | Path, key: str) -> Path:
    """Where the stage keeps the spectrum arrays of the analysed point ``key``."""
    return Path(spectra_dir) / f"{key}.npz"


@dataclass(frozen=True, kw_only=True)
class CurvaturePoint(Row):
    """A row of hessian.csv: one analysed study point, its extreme eigenvalues with their
    residuals, the SLQ index estimate, the Hutchinson trace, its class, and whether an escape
    from it ended lower."""

    key: str
    schedule: str
    seed: int
    lam: float = column("lambda")
    grad_norm: float  # the study's full-data ||grad J||
    critical: bool  # the study's gradient rule (study.csv)
    lambda_max: float
    lambda_min: float
    lambda_max_residual: float
    lambda_min_residual: float
    top_converged: int
    bottom_converged: int
    index_estimate: float
    index_stderr: float
    trace: float
    trace_stderr: float
    slq_probes: int
    trace_probes: int
    curvature_class: PointClass = column("class")  # the gradient rule's
    hvps: int
    n_curvature: int  # images the Hessian was taken on
    escape_lower: bool


@dataclass(frozen=True, kw_only=True)
class EscapeRow(Row):
    """A row of escapes.csv: one side of the escape test at a saddle."""

    key: str
    sign: float
    alpha: float
    objective_before: float
    objective_after: float
    objective_drop: float
    mse_before: float
    mse_after: float
    grad_norm_after: float
    lower: bool


@dataclass(frozen=True, kw_only=True)
class InterpolationRow(Row):
    """A row of interpolation.csv: J on the segment between a chain step's two points, under
    one of the step's lambdas (``objective_lambda``: "from" or "to")."""

    start: str  # the points' keys
    end: str
    objective_lambda: str
    lam: float = column("lambda")
    t: float
    data_loss: float
    penalty: float
    objective: float


@dataclass(frozen=True, kw_only=True)
class SaddleStep(Row):
    """A row of saddle_steps.csv: a non-monotone chain step with its start point's curvature
    (NaN and ``NOT_ANALYSED`` where the start was not analysed) and its segment's barriers."""

    schedule: str
    seed: int
    start: str
    end: str
    lambda_from: float
    lambda_to: float
    mse_change: float
    beyond_noise: bool
    start_class: str  # a PointClass, or NOT_ANALYSED
    start_lambda_min: float
    start_index_estimate: float
    start_escape_lower: bool
    barrier_under_lambda_from: float
    barrier_under_lambda_to: float


@dataclass(frozen=True, kw_only=True)
class ClassCounts(Row):
    """Analysed points per class."""

    minimum: int
    saddle: int
    not_critical: int = column("not critical")

    @classmethod
    def count(cls, classes: Iterable[PointClass]) -> ClassCounts:
        classes = list(classes)
        unknown = set(classes) - set(CRITICAL_CLASSES)
        if unknown:
            raise ValueError(f"classes {sorted(unknown)} are none of {list(CRITICAL_CLASSES)}")
        return cls(
            minimum=classes.count(PointClass.MINIMUM),
            saddle=classes.count(PointClass.SADDLE),
            not_critical=classes.count(PointClass.NOT_CRITICAL),
        )


@dataclass(frozen=True, kw_only=True)
class StepStarts(Row):
    """Non-monotone steps by the class of their start point."""

    total: int
    from_saddle: int
    from_minimum: int
    from_not_critical: int
    escape_lowered: int  # steps whose start's escape ended lower


@dataclass(frozen=True, kw_only=True)
class ScheduleCurvature(Row):
    """One schedule's entry of metrics/hessian.json (no steps entry when it had none)."""

    points: ClassCounts
    nonmonotone_steps: StepStarts | None = None


@dataclass(frozen=True)
class HessianSummary:
    """``metrics/hessian.json``: per schedule with analysed points or non-monotone steps."""

    schedules: dict[str, ScheduleCurvature]

    def to_json(self) -> dict[str, Any]:
        return {name: entry.to_json() for name, entry in self.schedules.items()}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> HessianSummary:
        return cls({name: ScheduleCurvature.from_json(entry) for name, entry in obj.items()})
