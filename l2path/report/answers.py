"""Plain-words answers to the two questions of the study (docs/science.md), written from
the stages' outputs: every number in a sentence is read from them, none is typed here.

- ``continuation_answers``: question 1, from the monotonicity summary (per schedule and
  quantity: steps, decreases, decreases beyond cold-start noise, between critical points),
  results/study.csv (critical points) and the hessian stage's tables (class of the start
  point of every non-monotone step, escapes, J on the segment between the step's points).
Question 2's answers are in ``decay_answers``. Each returns a list of (heading, paragraph) pairs.
A schedule's words (its heading, how its sentence opens, what a fall of the MSE is in its own
direction) are its ``schedules.Schedule``'s.
"""

from __future__ import annotations

import math
from collections import Counter

import pandas as pd

from ..curvature.classes import PointClass
from ..landscape_records import NOT_ANALYSED, CurvaturePoint, InterpolationRow, SaddleStep
from ..monotonicity import ScheduleMonotonicity, MonotonicitySummary
from ..schedules import Schedule, chained, schedule, upward_chains
from ..verdicts import VerdictSummary

LEMMA = (
    "The lemma the question is about: at global minimisers of J_λ = L + (λ/2n)‖w‖² the data "
    "loss L is non-decreasing in λ. Along a branch of local minima, dL/dλ = (λ/n²)·wᵀH⁻¹w ≥ 0 "
    "(H the Hessian of J_λ, w the weights with the biases set to zero). So the data loss (here "
    "the in-sample MSE, the trained quadratic cost) can fall as λ rises only on a saddle branch "
    "or by a jump between branches, or when the points are not converged: which of these "
    "happened is what the same-λ controls and the curvature test."
)


def _opening(s: Schedule) -> str:
    return s.words or s.name


def _fall(s: Schedule) -> str:
    return s.fall or "the MSE fell"


def opening_answer(verdicts: VerdictSummary, monotonicity: MonotonicitySummary) -> str:
    """One or two sentences from the verdicts: is the MSE monotone along the chains, and why not."""
    sentences = []
    chains = [name for name in chained() if name in verdicts.schedules]
    for name in chains:
        counts = verdicts.schedules[name]
        steps = monotonicity.schedules[name].train_mse.steps
        fell = counts.nonmonotone_steps
        words = _fall(schedule(name))
        if not fell:
            sentences.append(
                f"{_opening(schedule(name))}, the in-sample MSE was monotone at all {steps} steps."
            )
            continue
        sentences.append(
            f"{_opening(schedule(name))}, {words} at {fell} of {steps} steps: the same-λ controls "
            f"got as low at {counts.continued_optimisation} of them (continued optimisation "
            f"explains those), {counts.within_noise} are within noise, and "
            f"{counts.beyond_noise_unexplained} remain beyond noise and unexplained."
        )
    nonmonotone = sum(verdicts.schedules[name].nonmonotone_steps for name in chains)
    return ("Yes, it is non-monotone. " if nonmonotone else "No non-monotone step. ") + " ".join(
        sentences
    )


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _steps_sentence(name: str, counts: ScheduleMonotonicity) -> str:
    mse, s = counts.train_mse, schedule(name)
    sentence = (
        f"{_opening(s)}, {_fall(s)} at {mse.decreases} of "
        f"{_plural(mse.steps, 'step')} ({mse.decreases_beyond_noise} of them beyond the "
        f"within-stage noise of their two ends; {mse.decreases_between_critical} between "
        f"two critical points)"
    )
    if mse.decreases:
        sentence += (
            f"; they form {_plural(mse.runs, 'run')} of consecutive drops (the longest "
            f"{mse.longest_run} steps), {mse.runs_beyond_noise} with a cumulative drop "
            f"beyond noise"
        )
    sentence += f"; the objective J_λ fell at {counts.objective.decreases} of its steps"
    if mse.decreases:
        sentence += (
            f". The largest single drop was {mse.largest_decrease:.3g}, the largest drop "
            f"between any two λ of a path {mse.largest_drop_any_pair:.3g}"
        )
    return sentence + "."


def _numbers(values) -> list[float]:
    """The values that are numbers (pandas' min, max and first skip NaN; so do the answers)."""
    return [v for v in values if not math.isnan(v)]


def _better_under_old_lambda(
    part: list[SaddleStep], interpolation: list[InterpolationRow] | None
) -> str:
    """How many steps ended at a point that is lower under the *previous* lambda's objective:
    then the previous point was not a minimum of its own J_lambda (the next stage simply
    went on optimising it)."""
    if not interpolation:
        return ""
    under_from: dict[tuple[str, str], list[InterpolationRow]] = {}
    for row in interpolation:
        if row.objective_lambda == "from":
            under_from.setdefault((row.start, row.end), []).append(row)
    ends = {}  # (start, end) -> J under the old lambda at t = 0 and at t = 1
    for key, rows in under_from.items():
        values = _numbers(r.objective for r in sorted(rows, key=lambda r: r.t))
        if values:
            ends[key] = (values[0], values[-1])
    found = [ends[step.start, step.end] for step in part if (step.start, step.end) in ends]
    lower = sum(1 for first, last in found if last < first)
    return (
        f" At {lower} of these {len(found)} steps the new point is lower than the old one under "
        f"the old λ's objective itself (J_λk(θ_k+1) < J_λk(θ_k)), so the old point was not a "
        f"minimum of its own objective: the next stage went on optimising it."
    )


def _barrier(step: SaddleStep) -> float:
    """The larger barrier of the step's segment under its two lambdas (NaN: none measured)."""
    return max(
        _numbers([step.barrier_under_lambda_from, step.barrier_under_lambda_to]), default=math.nan
    )


def _saddle_sentence(
    name: str, saddle_steps: list[SaddleStep], interpolation: list[InterpolationRow] | None = None
) -> str | None:
    part = [step for step in saddle_steps if step.schedule == name]
    if not part:
        return None
    classes = Counter(step.start_class for step in part)
    lowered = sum(1 for step in part if step.start_escape_lower)
    text = f"Of the {_plural(len(part), 'non-monotone step')} of the {name} chains, "
    # hessian.select: none; the converged chains prove classes instead
    if classes[NOT_ANALYSED] == len(part):
        text += "none was classed by the per-point Hessian analysis (hessian.select: none)"
    else:
        text += (
            f"{classes[PointClass.SADDLE]} started from a saddle point, "
            f"{classes[PointClass.MINIMUM]} from a minimum and {classes[PointClass.NOT_CRITICAL]} "
            f"from a point that is not a critical point (its gradient norm is above "
            f"lambda_study.polish.grad_tol, so no claim about saddles can be made there)"
        )
    if classes[PointClass.SADDLE]:
        text += (
            f"; stepping along the negative curvature and re-optimising lowered J_λ at {lowered} "
            f"of the saddles"
        )
    crossing = sum(1 for step in part if _barrier(step) > 0)
    text += (
        f". On the straight line between consecutive points, {crossing} of these steps cross a "
        f"barrier in J_λ."
    )
    return text + _better_under_old_lambda(part, interpolation)


def _curvature_sentence(hessian: list[CurvaturePoint]) -> str:
    classes = Counter(point.curvature_class for point in hessian)
    negative = sum(1 for point in hessian if point.lambda_min < 0)
    top = _numbers(point.lambda_max for point in hessian)
    bottom = _numbers(point.lambda_min for point in hessian)
    top_range = f"{min(top, default=math.nan):.3g} to {max(top, default=math.nan):.3g}"
    bottom_range = f"{min(bottom, default=math.nan):.3g} to {max(bottom, default=math.nan):.3g}"
    return (
        f"The Hessian of J_λ was analysed at {_plural(len(hessian), 'point')}: "
        f"{classes[PointClass.MINIMUM]} minima, {classes[PointClass.SADDLE]} saddles, "
        f"{classes[PointClass.NOT_CRITICAL]} not critical. λ_max ranged over {top_range}; "
        f"{negative} points have a negative smallest eigenvalue (from {bottom_range}), i.e. "
        f"directions of negative curvature exist even where the point is not critical."
    )


def continuation_answers(
    monotonicity: MonotonicitySummary,
    study: pd.DataFrame,
    hessian: list[CurvaturePoint] | None,
    saddle_steps: list[SaddleStep] | None,
    interpolation: list[InterpolationRow] | None = None,
) -> list[tuple[str, str]]:
    """Question 1: does in-sample MSE rise with lambda along each schedule, and were the
    drops at saddle points?"""
    answers = []
    critical = int(study["critical"].astype(bool).sum())
    for name, counts in monotonicity.schedules.items():
        text = _steps_sentence(name, counts)
        if saddle_steps is not None:
            extra = _saddle_sentence(name, saddle_steps, interpolation)
            text += f" {extra}" if extra else ""
        answers.append((schedule(name).label, text))
    summary = (
        f"{critical} of {_plural(len(study), 'point')} of the study were critical points "
        f"(full-batch ‖∇J_λ‖ under lambda_study.polish.grad_tol); the others stopped on "
        f"the SGD plateau rule, with ‖∇J_λ‖ from {study['grad_norm'].min():.2g} to "
        f"{study['grad_norm'].max():.2g}."
    )
    if hessian:
        summary += " " + _curvature_sentence(hessian)
    answers.append(("Convergence and curvature", summary))
    return answers
