"""The converged chains' answer to question 1 (``metrics/chain.json``, results/chain_*.csv):
what the in-sample MSE does along the user's warm-started chain once every point is a critical
point of one objective, and why where it falls. Every number is read from the tables.
"""

from __future__ import annotations

import pandas as pd

from ..chain.records import ChainPoint, ChainStep, ChainSummary, StepVerdictKind


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def _lemma_check(summary: ChainSummary) -> str:
    if summary.lemma_ratio_min is None:
        return ""
    return (
        f" (there the lemma's slope, integrated along the followed branch, gives the realised "
        f"change of L to a ratio {summary.lemma_ratio_min:.5f} to {summary.lemma_ratio_max:.5f})"
    )


GOOD_FIT = 0.02  # a fold's mu^2 = k |lambda* - lambda| fit "holds" below this residual


def _fold_fits(steps: list[ChainStep]) -> str:
    """How many located folds show the approach's mu^2 = k |lambda* - lambda| (column
    ``fold_fit_residual``): each fold has its t_tau sign change, not each a fit."""
    folds = [s for s in steps if s.verdict is StepVerdictKind.FOLD_JUMP]
    if not folds:
        return ""
    fitted = [s.fold_fit_residual for s in folds if s.fold_fit_residual is not None]
    good = sum(r < GOOD_FIT for r in fitted)
    return (
        f" (t_τ changes sign in every one; the approach's μ² = k|λ* − λ| fits with a relative "
        f"residual under {GOOD_FIT:g} at {good}, worse at {len(fitted) - good}, and has too "
        f"few approach points at {len(folds) - len(fitted)})"
    )


def _drop(step: ChainStep) -> str:
    where = (
        f"{step.direction.value} seed {step.seed}, λ {step.lambda_low:g} to {step.lambda_high:g}"
    )
    fold = ""
    if step.fold_lambda is not None:
        fold = f" at λ* = {step.fold_lambda:.4g} ± {step.fold_lambda_error:.1g}"
    return f"{where}: change {step.change:.3g}, {step.verdict.value}{fold}"


def chain_answer(summary: ChainSummary, steps: list[ChainStep] | None) -> str:
    """One paragraph: drops among the converged steps, the steps' verdicts, the proved classes;
    and each drop with its verdict."""
    text = (
        f"Converged (each point settled on J_λ of the first {summary.n_sub} training images, λ/n "
        f"as in the study: polished from the chain's previous point, and left along the witness "
        f"of every proved saddle; classes proved with their witnesses from the dense Hessian): "
        f"the in-sample MSE fell as λ rose at "
        f"{summary.drops} of the {summary.steps} steps of {_plural(summary.chains, 'chain')}. "
        f"{summary.one_branch_of_minima} steps stay on one branch of minima"
        f"{_lemma_check(summary)}, {summary.fold_jumps} jump at a located fold"
        f"{_fold_fits(steps or [])}, "
        f"{summary.saddle_branches} lie on a saddle branch, {summary.branch_switches} switch "
        f"branch, {summary.branches_lost} lost the branch and {summary.not_followed} were not "
        f"followed; {summary.proved_minima} of {summary.points} points (with "
        f"{summary.cold_points} of cold starts) are proved minima, "
        f"{summary.proved_saddles} proved saddles (a witness vector with vᵀHv below the rounding "
        f"margin) and {summary.degenerate_points} degenerate (eigenvalues within the margin, "
        f"none below it); {summary.escapes} escapes left saddles on the way."
    )
    drops = [step for step in steps or [] if step.drop]
    if drops:
        text += " The drops: " + "; ".join(_drop(step) for step in drops) + "."
    return text


CHAIN_COLUMNS = [
    "seed",
    "direction",
    "points",
    "lambda_from",
    "lambda_to",
    "proved_minima",
    "proved_saddles",
    "degenerate",
    "escapes",
    "mse_first",
    "mse_last",
    "drops",
    *(kind.value for kind in StepVerdictKind),
]


def chain_table(points: list[ChainPoint], steps: list[ChainStep]) -> pd.DataFrame:
    """One row per converged chain (and per cold start): its points, lambda range, proved
    classes, escapes, MSE at its two ends, drops and verdict counts (``CHAIN_COLUMNS``)."""
    rows = []
    for seed, direction in dict.fromkeys((p.seed, p.direction) for p in points):
        mine = [p for p in points if (p.seed, p.direction) == (seed, direction)]
        judged = [s for s in steps if (s.seed, s.direction) == (seed, direction)]
        row = {
            "seed": seed,
            "direction": direction.value,
            "points": len(mine),
            "lambda_from": mine[0].lam,
            "lambda_to": mine[-1].lam,
            "proved_minima": sum(p.proved_minimum for p in mine),
            "proved_saddles": sum(p.proved_saddle for p in mine),
            "degenerate": sum(p.degenerate for p in mine),
            "escapes": sum(p.escapes for p in mine),
            "mse_first": mine[0].mse,
            "mse_last": mine[-1].mse,
            "drops": sum(s.drop for s in judged),
        }
        row |= {kind.value: sum(s.verdict is kind for s in judged) for kind in StepVerdictKind}
        rows.append(row)
    return pd.DataFrame(rows, columns=CHAIN_COLUMNS)
