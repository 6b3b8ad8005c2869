"""The report's key numbers (metrics/report.json), typed.

Every number is a field: ``headline`` reads them by attribute, so a misnamed number is an
AttributeError and a missing one a TypeError when ``KeyNumbers`` is built, never a number
silently dropped. ``to_json`` is the one place that spells the flat keys of
metrics/report.json (``ascending_mse_decreases``, ``chain_fold_jumps``, ...), in the order
the report has always written them.

A section that a stage did not produce is ``None`` (or an empty tuple): the stage was not
run, or had nothing to analyse. Within a section every number is required; a float the stage
could not measure (NaN) is ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..chain.records import ChainSummary


def _flat(record, prefix: str = "", skip: tuple[str, ...] = ()) -> dict:
    """The fields of ``record`` in declaration order, under ``prefix``."""
    return {
        f"{prefix}{f.name}": getattr(record, f.name) for f in fields(record) if f.name not in skip
    }


@dataclass(frozen=True)
class StudyNumbers:
    points: int  # finished points of the lambda study (controls excluded)
    critical_points: int  # points whose full-batch ||grad J_lambda|| met the gradient rule


@dataclass(frozen=True)
class ScheduleNumbers:
    """One schedule's in-sample MSE steps (metrics/monotonicity.json)."""

    schedule: str
    mse_decreases: int
    mse_steps: int


@dataclass(frozen=True)
class VerdictNumbers:
    """One schedule's verdict counts on its non-monotone steps (metrics/verdicts.json)."""

    schedule: str
    beyond_noise_unexplained: int
    continued_optimisation: int
    within_noise: int


@dataclass(frozen=True)
class HessianNumbers:
    """Classes of the points the hessian stage analysed."""

    minimum: int
    saddle: int
    not_critical: int


@dataclass(frozen=True)
class DecayNumbers:
    """One initialiser and layer in the question's setting (its eta, first lambda > 0)."""

    init: str
    layer: int
    measured_factor: float | None
    second_order_residual: float | None
    l2_change_question: float | None
    tail_off_rms: float | None


@dataclass(frozen=True)
class SlopeNumbers:
    """The level-off slope d ln RMS / d ln lambda of one (eta, init, layer)."""

    eta: float
    init: str
    layer: int
    slope: float | None


@dataclass(frozen=True)
class KeyNumbers:
    study: StudyNumbers
    schedules: tuple[ScheduleNumbers, ...]
    verdicts: tuple[VerdictNumbers, ...]  # empty: no verdicts written
    hessian: HessianNumbers | None  # None: no point analysed by the hessian stage
    nonmonotone_from_saddle: int | None  # None: no point analysed by the hessian stage
    decay: tuple[DecayNumbers, ...]  # empty: the dynamics stage did not run
    slopes: tuple[SlopeNumbers, ...]
    chain: ChainSummary | None = None  # None: no converged chain written

    def to_json(self) -> dict:
        """metrics/report.json: flat keys, as the report has always written them."""
        numbers: dict = {"points": self.study.points, "critical": self.study.critical_points}
        for counts in self.schedules:
            numbers |= _flat(counts, f"{counts.schedule}_", skip=("schedule",))
        for counts in self.verdicts:
            numbers |= _flat(counts, f"{counts.schedule}_", skip=("schedule",))
        if self.hessian is not None:
            numbers |= _flat(self.hessian, "hessian_")
        if self.nonmonotone_from_saddle is not None:
            numbers["nonmonotone_from_saddle"] = self.nonmonotone_from_saddle
        if self.chain is not None:
            numbers |= _flat(self.chain, "chain_")
        for row in self.decay:
            numbers |= _flat(row, f"decay_{row.init}_layer{row.layer}_", skip=("init", "layer"))
        for fit in self.slopes:
            numbers[f"equilibrium_eta{fit.eta:g}_{fit.init}_layer{fit.layer}_slope"] = fit.slope
        return numbers

    def decay_of(self, init: str, layer: int) -> DecayNumbers | None:
        return next((row for row in self.decay if (row.init, row.layer) == (init, layer)), None)

    def slope_of(self, init: str, layer: int) -> float | None:
        """The first (lowest eta) level-off slope of ``init``'s ``layer``; None if not measured."""
        return next(
            (fit.slope for fit in self.slopes if (fit.init, fit.layer) == (init, layer)), None
        )
