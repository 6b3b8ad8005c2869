"""The report's first screen: three short sentences that answer question 1 in the user's words,
each with its numbers, each read from a named table (the evidence follows them on the page).

1. **SGD** (``verdicts.VerdictSummary``, ``monotonicity.MonotonicitySummary``,
   results/decomposition.csv): along the warm-started ascending chains, at how many of their
   steps the in-sample MSE fell, how many the same-lambda control explains, and the split of
   those falls into the lambda effect m(child) - m(control) (columns ``lambda_effect``,
   ``sd_paired``) and the optimisation deficit m(control) - m(parent)
   (``optimisation_deficit``);
2. **converged** (metrics/chain.json, ``chain.records.ChainSummary``): drops among the steps of
   the converged chains (``drops``, ``steps``), and how many stay on one branch of minima
   (``one_branch_of_minima``) or jump at a located fold (``fold_jumps``), and, where nonzero,
   the saddle branches, branch switches, lost branches and steps not followed;
3. **saddles** (results/chain_points.csv, ``chain.records.ChainPoint``): how many converged
   points are proved saddles and proved minima, by which proof (``class_proof``), and how many
   of the saddles are the trivial critical point w = 0 (``weight_l2``).

A sentence whose table is missing is left out; none counts over nothing.
"""

from __future__ import annotations

import pandas as pd

from ..chain.records import ChainPoint, ChainSummary, ClassProof
from ..curvature.classes import PointClass
from ..monotonicity import MonotonicitySummary
from ..verdicts import VerdictSummary

# ||w|| below this is the trivial critical point w = 0 (the collapsed chains' end: 1e-10 there)
TRIVIAL_NORM = 1e-6


def _range(values: pd.Series, digits: str = "+.2g") -> str:
    low, high = float(values.min()), float(values.max())
    return f"{low:{digits}}" if low == high else f"{low:{digits}} to {high:{digits}}"


def _all(part: int, whole: int) -> str:
    return f"all {whole}" if part == whole and whole > 1 else f"{part} of {whole}"


def sgd_sentence(
    verdicts: VerdictSummary, steps: int, decomposition: pd.DataFrame | None
) -> str | None:
    """The SGD chain's answer: falls on the ascending warm steps (of ``steps``) and what they
    are made of."""
    counts = verdicts.schedules.get("ascending")
    if counts is None:
        return None
    fell = counts.nonmonotone_steps
    text = (
        f"SGD: the in-sample MSE fell as λ rose at {fell} of {steps} ascending steps, and at "
        f"{_all(counts.continued_optimisation, fell)} the same-λ control fell as far: "
        f"unfinished optimisation"
    )
    rows = pd.DataFrame() if decomposition is None else decomposition
    if len(rows):
        rows = rows[
            (rows["schedule"] == "ascending")
            & (rows["metric"] == "train_mse")
            & (rows["change"] < 0)
        ]
    if not len(rows):
        return text + "."
    z = rows["lambda_effect"] / rows["sd_paired"]
    return text + (
        f" (deficit {_range(rows['optimisation_deficit'])}), while λ's own effect was a "
        f"{'rise' if (rows['lambda_effect'] > 0).all() else 'change'} "
        f"({_range(rows['lambda_effect'])}, {_range(z, '.1f')} paired sds)."
    )


def converged_sentence(chain: ChainSummary) -> str:
    """What the converged chains show: drops, and the steps' verdicts that explain them (the
    rarer verdicts only where they occur)."""
    others = [
        (chain.saddle_branches, "lie on a saddle branch"),
        (chain.branch_switches, "switch branch"),
        (chain.branches_lost, "lose the branch"),
        (chain.not_followed, "are not followed (no drop: chain.follow)"),
    ]
    rest = "".join(f", {count} {words}" for count, words in others if count)
    return (
        f"Converged: on critical points of one objective (J_λ on {chain.n_sub} images) the MSE "
        f"fell at {chain.drops} of {chain.steps} steps; {chain.one_branch_of_minima} stay on one "
        f"branch of minima, {chain.fold_jumps} jump at a located fold{rest}."
    )


def saddle_sentence(points: list[ChainPoint]) -> str | None:
    """Proved saddles and minima among the converged points, and by which proof."""
    converged = [p for p in points if p.converged]
    if not converged:
        return None
    saddles = [
        p
        for p in converged
        if p.curvature_class is PointClass.SADDLE and p.class_proof is ClassProof.INERTIA
    ]
    minima = sum(p.proved_minimum for p in converged)
    lanczos = sum(p.class_proof is ClassProof.LANCZOS for p in converged)
    trivial = sum(p.weight_l2 < TRIVIAL_NORM for p in saddles)
    return (
        f"Saddles: {len(saddles)} of {len(converged)} converged points are proved saddles "
        f"({trivial} at w = 0), {minima} proved minima, all by the inertia of the dense Hessian "
        f"(LDLᵀ, Cholesky), {'none' if not lanczos else lanczos} by Lanczos alone."
    )


def first_screen(
    verdicts: VerdictSummary | None,
    monotonicity: MonotonicitySummary,
    decomposition: pd.DataFrame | None,
    chain: ChainSummary | None,
    chain_points: list[ChainPoint] | None,
) -> list[str]:
    """The first screen's sentences, in order (see the module)."""
    ascending = monotonicity.schedules.get("ascending")
    sentences = [
        sgd_sentence(verdicts, ascending.train_mse.steps, decomposition)
        if verdicts is not None and ascending is not None
        else None,
        converged_sentence(chain) if chain is not None else None,
        saddle_sentence(chain_points) if chain_points else None,
    ]
    return [s for s in sentences if s]
