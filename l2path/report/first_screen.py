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
3. **minima** (metrics/chain.json and results/chains.csv, ``ChainSummary``, ``ChainRecord``):
   graduated optimisation (``graduated_lower`` of ``graduated_compared``,
   ``graduated_gain_max``), the best minimum found at each lambda (``best_found_drops`` of its
   ``best_found_lambdas`` - 1 steps), the crevasses (``several_minima_lambdas``,
   ``distinct_minima_max``, ``crevasse_mse_spread_max``), and the trivial point's lambda_c
   (``trivial_threshold``) beside where the ascending chains end (``lambda_last``) and the
   descending ones leave w = 0 (``left_trivial_at``);
4. **classes** (``ChainSummary``): proved minima, proved saddles (each with its witness) and
   degenerate points, and the escapes that left saddles.

A sentence whose table is missing is left out; none counts over nothing.
"""

from __future__ import annotations

import pandas as pd

from ..chain.records import ChainDirection, ChainRecord, ChainSummary
from ..monotonicity import MonotonicitySummary
from ..verdicts import VerdictSummary


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
    per_seed = (
        f"{chain.fold_jumps_min}"
        if chain.fold_jumps_min == chain.fold_jumps_max
        else f"{chain.fold_jumps_min} to {chain.fold_jumps_max}"
    )
    return (
        f"Converged: on critical points of one objective (J_λ on {chain.n_sub} images) the MSE "
        f"fell at {chain.drops} of {chain.steps} steps; {chain.one_branch_of_minima} stay on one "
        f"branch of minima, {chain.fold_jumps} jump at a located fold ({per_seed} per seed: "
        f"these counts move with the SGD start's rounding, the drops do not){rest}."
    )


def _values(values: list[float]) -> str:
    """Distinct values, e.g. "2048" or "1024, 2048"."""
    return ", ".join(f"{v:.4g}" for v in sorted(set(values))) or "none"


def minima_sentence(chain: ChainSummary, chains: list[ChainRecord] | None) -> str | None:
    """Graduated optimisation, the best found and the crevasses, and where w = 0 is left."""
    if not chain.best_found_lambdas:
        return None
    gain = chain.graduated_gain_max
    graduated = (
        f"graduated optimisation (descending from w = 0) reached a lower J than the ascending "
        f"chain at {chain.graduated_lower} of {chain.graduated_compared} (seed, λ)"
        + (f", by up to {100 * gain:.3g} %" if gain is not None and gain > 0 else "")
    )
    best = (
        f"the in-sample MSE of the lowest-J minimum found at each λ fell at "
        f"{chain.best_found_drops} of its {chain.best_found_lambdas - 1} steps"
    )
    spread = chain.crevasse_mse_spread_max
    crevasses = (
        f"{chain.several_minima_lambdas} of {chain.best_found_lambdas} λ have two or more minima "
        f"distinct by J or by distance modulo units' permutations and sign flips (up to "
        f"{chain.distinct_minima_max}; {chain.minima_apart_at_same_objective} share another's J"
        + (f", in-sample MSE differing by up to {spread:.3g}" if spread is not None else "")
        + ")"
    )
    text = (
        f"Minima ({chain.cold_points} cold-start points beside the chains): {graduated}; {best}; "
    )
    text += f"crevasses: {crevasses}."
    down = [c for c in chains or [] if c.trivial_threshold is not None]
    if down:
        up = [c.lambda_last for c in chains or [] if c.direction is ChainDirection.UP]
        left = [c.left_trivial_at for c in down if c.left_trivial_at is not None]
        text += (
            f" The trivial point w = 0 is a minimum above λ_c = "
            f"{_values([c.trivial_threshold for c in down])}; the ascending chains end at λ = "
            f"{_values(up)}, the descending ones leave w = 0 at λ = {_values(left)}."
        )
    return text


def classes_sentence(chain: ChainSummary) -> str:
    """Proved minima, proved saddles and degenerate points, and the escapes."""
    return (
        f"Classes: of {chain.points} converged-chain and cold points, {chain.proved_minima} are "
        f"proved minima (Cholesky), {chain.proved_saddles} proved saddles (a witness vector "
        f"below the rounding margin) and {chain.degenerate_points} degenerate (flat within the "
        f"margin, none below it); {chain.escapes} escapes along a saddle's witness led to them."
    )


def first_screen(
    verdicts: VerdictSummary | None,
    monotonicity: MonotonicitySummary,
    decomposition: pd.DataFrame | None,
    chain: ChainSummary | None,
    chains: list[ChainRecord] | None,
) -> list[str]:
    """The first screen's sentences, in order (see the module)."""
    ascending = monotonicity.schedules.get("ascending")
    sentences = [
        sgd_sentence(verdicts, ascending.train_mse.steps, decomposition)
        if verdicts is not None and ascending is not None
        else None,
        converged_sentence(chain) if chain is not None else None,
        minima_sentence(chain, chains) if chain is not None else None,
        classes_sentence(chain) if chain is not None and chain.points else None,
    ]
    return [s for s in sentences if s]
