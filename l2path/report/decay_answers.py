"""Question 2, Nielsen's weight-decay exercise: the answers (a)-(d), the level-off scale and
the mechanism, each opening with a plain answer and its number, then the evidence.

Read from the rows of results/dynamics_theory.csv (``dynamics.summary.TheoryRow``): the
question's rows are the main setting's (eta, first lambda > 0); the book's and the sweep's
rows add the tail-off at eta = 0.5 and the level-off across lambda.
"""

from __future__ import annotations

import math
from itertools import groupby
from typing import Callable

import pandas as pd

from ..dynamics.equilibrium import slopes
from ..dynamics.summary import EquilibriumSlope, TheoryRow

NEAR = 3.0  # "near 1/sqrt(n_w)": within this factor of it
LARGE, DEFAULT = "large", "default"  # the initialisers the question compares (dynamics.inits)


def _fmt(value: float, spec: str = ".3g") -> str:
    return (
        "n/a"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else format(value, spec)
    )


def _layer(r: TheoryRow) -> str:
    return f"layer {int(r.layer)}"


def _per_layer(part: list[TheoryRow], text: Callable[[TheoryRow], str]) -> str:
    return "; ".join(f"{_layer(r)}: {text(r)}" for r in part)


def equilibrium_slopes(theory: list[TheoryRow]) -> list[EquilibriumSlope]:
    """The level-off slopes of ``theory`` (``equilibrium.slopes``, which fits a table)."""
    table = pd.DataFrame([r.to_row() for r in theory])
    return [EquilibriumSlope.from_row(fit) for fit in slopes(table).to_dict("records")]


def question_rows(theory: list[TheoryRow], config) -> list[TheoryRow]:
    """The rows of the question's setting: the stage's eta and its first lambda > 0."""
    lam = next(value for value in config.lambdas if value > 0)
    return [r for r in theory if r.eta == config.eta and r.lam == lam]


DECAY_DOMINATED = "(a) Are the first epochs dominated by decay? (large N(0,1) init)"
SHRINK = "(b) Per-epoch shrink (1 − ηλ/n)^(n/m) ≈ exp(−ηλ/m) while gradients are small"
TAIL_OFF = "(c) Does decay tail off near RMS 1/√n_w?"
INIT = "(d) How does this relate to the N(0, 1/n_in) initialisation?"
LEVEL_OFF = "(e) At what scale does each layer level off, and does it depend on λ?"
BALANCE = "Why the balance misses a levelled layer's r at η = 0.5"
MECHANISM = "Why one layer shrinks while another grows"


def dynamics_answers(
    theory: list[TheoryRow],
    config,
    costs: pd.DataFrame | None = None,
    budget: pd.DataFrame | None = None,
) -> list[tuple[str, str]]:
    """``config``: the ``dynamics`` params section that produced ``theory``; ``costs``: the
    causal test's table (``dynamics.cost_test.cost_table``), ``budget`` the balance's gap
    split (``dynamics.budget.budget_table``), each None or empty if not run."""
    lam = next(value for value in config.lambdas if value > 0)
    rows = question_rows(theory, config)
    large = [r for r in rows if r.init == LARGE]
    default = [r for r in rows if r.init == DEFAULT]
    q = int(rows[0].question_epoch)
    answers = []
    if large:
        answers.append((DECAY_DOMINATED, _decay_evidence(large, lam, q)))
    answers.append((SHRINK, _shrink_answer(rows, config, lam)))
    answers.append((TAIL_OFF, _tail_off_answer(theory, config, lam)))
    if large and default:
        answers.append((INIT, _init_answer(large, default, lam, q)))
    if config.sweep is not None:
        answers.append((LEVEL_OFF, _level_off_answer(theory, config)))
    if budget is not None and not budget.empty:
        answers.append((BALANCE, _balance_answer(budget)))
    answers.append((MECHANISM, _cost_test(costs, config) + _mechanism(rows, q)))
    return answers


def _decay_evidence(large: list[TheoryRow], lam: float, q: int) -> str:
    def after_first_epoch(r: TheoryRow) -> str:
        return (
            f"it stayed below the decay term in {r.decay_dominated_epochs:.3g} of {q} epochs, "
            f"its share along w median {r.radial_ratio_median:.2g}"
        )

    return (
        _decay_dominated(large, lam, q) + " Evidence: at the initial weights the full-batch "
        "data-gradient term per step is "
        + _per_layer(large, lambda r: f"{r.ratio_start:.3g}× the decay term")
        + "; after the first epoch "
        + _per_layer(large, after_first_epoch)
        + ". The size of the gradient does not decide it: only its share along w changes the "
        "norm."
    )


def _shrink_answer(rows: list[TheoryRow], config, lam: float) -> str:
    first = rows[0]
    return (
        f"Theory: {first.theory_factor:.6f} per epoch (exp form "
        f"{first.theory_factor_exp:.6f}; η = {config.eta:g}, λ = {lam:g}, "
        f"{int(first.epochs)} epochs). " + "; ".join(_shrink_sentence(r) for r in rows) + "."
    )


def _decay_dominated(large: list[TheoryRow], lam: float, q: int) -> str:
    """Yes for a layer whose norm barely moves without decay: its norm dynamics are decay's."""

    def verdict(r: TheoryRow) -> str:
        decayed, control = math.log(r.l2_change_question), math.log(r.l2_change_question_control)
        answer = "yes" if abs(control) < 0.1 * abs(decayed) else "no"
        return (
            f"{answer} for {_layer(r)} (over {q} epochs its norm changed "
            f"×{r.l2_change_question:.3g} with λ = {lam:g} and "
            f"×{r.l2_change_question_control:.4g} with λ = 0)"
        )

    return "; ".join(verdict(r) for r in large).capitalize() + "."


def _shrink_sentence(r: TheoryRow) -> str:
    if not r.small_epochs:
        return (
            f"{r.init} {_layer(r)}: no small-gradient epochs (first-epoch factor "
            f"{r.first_epoch_factor:.4f})"
        )
    return (
        f"{r.init} {_layer(r)}: measured {r.measured_factor:.6f} over "
        f"{int(r.small_epochs)} seed-epochs (relative deviation "
        f"{r.relative_deviation:+.1e}); the data term's share along w "
        f"({r.radial_ratio_small:+.3f}) gives {r.theory_factor_with_gradient:.6f} to first "
        f"order ({_share(r.first_order_share_of_gap)} of the gap), and with the mini-batch "
        f"term η²E‖g_B‖²/‖W‖² {r.second_order_factor:.6f} to second order "
        f"({_share(r.second_order_share_of_gap)} of the gap; residual "
        f"{r.second_order_residual:+.1e})"
    )


def _share(value: float) -> str:
    return "none" if math.isnan(value) else f"{value:.0%}"


def _tail_rows(theory: list[TheoryRow], config, lam: float) -> list[TheoryRow]:
    """The large init's decaying layers in the question's setting and the book's, at lambda."""
    settings = [config.eta] + ([config.book.eta] if config.book is not None else [])
    rows = [
        r
        for r in theory
        if r.init == LARGE and r.lam == lam and r.eta in settings and r.first_epoch_factor < 1
    ]
    return sorted(rows, key=lambda r: (r.eta, r.layer))


def _tail_off_answer(theory: list[TheoryRow], config, lam: float) -> str:
    rows = _tail_rows(theory, config, lam)
    n_w = round(1 / theory[0].inv_n_weights)
    crossed = [r for r in rows if r.tail_off_seeds]
    if crossed:
        far = [r for r in crossed if r.tail_off_rms / r.inv_sqrt_n_weights > NEAR]
        plain = (
            ("No: " if far else "Yes: ")
            + "; ".join(
                f"at η = {r.eta:g} {_layer(r)} tails off at RMS {r.tail_off_rms:.3g}, "
                f"{r.tail_off_rms / r.inv_sqrt_n_weights:.3g}× 1/√n_w"
                for r in crossed
            )
            + ". "
        )
    else:
        plain = "Not within the runs: no decaying layer's shrink fell below the cut. "
    fraction = config.tail_off_fraction
    evidence = (
        f"1/√n_w = {theory[0].inv_sqrt_n_weights:.4g} for n_w = {n_w} weights. The "
        f"tail-off is where the trend ({config.trend_epochs}-epoch moving mean) of each "
        f"epoch's log-shrink, as a share of pure decay's, falls below {fraction:.0%}: "
        + "; ".join(_tail_sentence(r, fraction) for r in rows)
        + "."
    )
    growing = [
        r
        for r in theory
        if r.init == LARGE and r.lam == lam and r.eta == config.eta and r.first_epoch_factor >= 1
    ]
    if growing:
        evidence += (
            " "
            + "; ".join(
                f"{_layer(r)} never decays: it grew ×{r.first_epoch_factor:.3g} in the first epoch "
                f"(RMS {r.rms_start:.3g} → {r.rms_end:.3g})"
                for r in growing
            )
            + "."
        )
    return plain + evidence


def _tail_sentence(r: TheoryRow, fraction: float) -> str:
    setting = f"η = {r.eta:g}, {int(r.epochs)} epochs, {_layer(r)}"
    if not r.tail_off_seeds:
        return (
            f"{setting}: not below {fraction:.0%} (the last epoch's log-shrink is "
            f"{r.shrink_rate_end:.0%} of the theory's; RMS {r.rms_start:.3g} → "
            f"{r.rms_end:.3g})"
        )
    band = (
        f" (seeds {r.tail_off_epoch_min:.3g}–{r.tail_off_epoch_max:.3g}, RMS "
        f"{r.tail_off_rms_min:.3g}–{r.tail_off_rms_max:.3g})"
        if r.seeds > 1
        else ""
    )
    return (
        f"{setting}: at epoch {r.tail_off_epoch:.3g} with RMS {r.tail_off_rms:.3g}{band}, "
        f"{r.tail_off_rms / r.inv_sqrt_n_in:.3g}× 1/√n_in; at the end the log-shrink is "
        f"{r.shrink_rate_end:.0%} of the theory's and the RMS {r.rms_end:.3g}"
    )


def _init_answer(large: list[TheoryRow], default: list[TheoryRow], lam: float, q: int) -> str:
    return (
        f"The N(0, 1/n_in) start ends with the best validation accuracy after {q} epochs: "
        f"{default[0].validation_accuracy_question:.2%}, against "
        f"{large[0].validation_accuracy_question:.2%} from the large start with λ = {lam:g} "
        f"and {_fmt(large[0].validation_accuracy_question_control, '.2%')} from the large "
        f"start without decay. The default initialiser starts each layer at RMS 1/√n_in ("
        + _per_layer(default, lambda r: f"{r.inv_sqrt_n_in:.3g}")
        + "), where the data term outweighs decay from the start ("
        + _per_layer(default, lambda r: f"ratio {r.ratio_start:.3g}")
        + "). At the end of the run the RMS weights are "
        + _per_layer(large, lambda r: f"large {r.rms_end:.3g}")
        + " vs "
        + _per_layer(default, lambda r: f"default {r.rms_end:.3g}")
        + f"; after {q} epochs the weight variances from the large start are "
        + _per_layer(
            large, lambda r: f"{r.var_question:.3g} (the question: {_fmt(r.reported_variance)})"
        )
        + "."
    )


def _level_off_answer(theory: list[TheoryRow], config) -> str:
    """The sweep: the slope of ln RMS on ln lambda per init and layer, against 0 (a fixed
    1/sqrt(n_w) scale) and the balance's r = -1 + noise / (2 eta lambda / n)."""
    eta = config.sweep.eta
    rows = sorted((r for r in theory if r.eta == eta), key=lambda r: (r.init, r.layer, r.lam))
    fits = equilibrium_slopes(rows)
    if not fits:
        return (
            f"Not measured: fewer than two λ levelled off within {config.sweep.epochs} "
            f"epochs at η = {eta:g} (levelled: the last {config.trend_epochs} epochs' shrink "
            f"within {config.level_off_rate:.0%} of the decay rate of zero)."
        )
    moves = [f for f in fits if abs(f.equilibrium_slope) > 0.05]
    plain = (
        "Yes, it depends on λ, which a fixed 1/√n_w scale (slope 0) does not allow and the "
        "balance (λ/n)W = −∂L/∂W along W does: "
        if moves
        else "No, the scale barely moves with λ, as a fixed scale predicts: "
    )
    plain += "; ".join(
        f"{f.init} layer {f.layer}: RMS ∝ λ^{f.equilibrium_slope:+.2f}"
        + (f" ± {f.equilibrium_slope_se:.2f}" if not math.isnan(f.equilibrium_slope_se) else "")
        + f" over λ = {f.equilibrium_lambdas.replace(' ', ', ')}"
        for f in fits
    )
    lambdas = ", ".join(f"{lam:g}" for lam in sorted({r.lam for r in rows}))
    by_layer = [list(part) for _, part in groupby(rows, key=lambda r: (r.init, r.layer))]
    seeds = len(config.sweep.seeds or config.seeds)
    evidence = (
        f". Sweep at η = {eta:g}, {config.sweep.epochs} epochs, {seeds} seed"
        f"{'s (seed means; the figure shades their range)' if seeds > 1 else ''}; a layer has "
        "levelled off "
        f"when the trend of its last {config.trend_epochs} epochs' shrink is within "
        f"{config.level_off_rate:.0%} of the decay rate of zero (* below: not levelled). "
        f"RMS at the end for λ = {lambdas}: "
        + "; ".join(_level_sentence(part) for part in by_layer)
        + "."
    )
    return plain + evidence


WIDE_GAP = 0.2  # the gaps listed one by one: |r - b| at least this
PARTS = {  # the gap's parts (dynamics.budget.closes), in words
    "epoch_end": "reading r at the epoch's end instead of along it",
    "fitted_batches": "the full batch instead of the fresh batch each step uses",
    "fluctuation": "the step's fluctuation along W",
    "drift": "the layer not quite levelled",
    "batch_noise": "the mini-batch term at the end instead of along the epoch",
}


def _balance_answer(budget: pd.DataFrame) -> str:
    """Which of the gap's parts (``dynamics.budget``) is largest, row by row, and how well
    the balance holds on the trajectory itself (fresh - its balance = fluctuation + drift)."""
    parts = budget[list(PARTS)]
    largest = parts.abs().idxmax(axis=1)
    counts = largest.value_counts()
    drifting = budget.loc[budget["drift"].abs().idxmax()]
    worst = budget.loc[budget["gap"].abs().idxmax()]
    eta, seeds = float(budget["eta"].iloc[0]), int(budget["seeds"].min())
    epoch = int(budget["epoch"].max())
    plain = (
        "The balance holds on the trajectory; the stage's reading of r misses it. Stepped "
        "through one more epoch, the fresh batches' mean share along W equals the balance's r "
        "up to the fluctuation the balance leaves out (at most "
        f"{budget['fluctuation'].abs().max():.1g}) and the drift of a layer still levelling "
        f"(at most {abs(drifting['drift']):.2g}, {drifting['init']} layer "
        f"{int(drifting['layer'])} at λ = {drifting['lambda']:g}). The stage reads r once per "
        "epoch, the full batch at an epoch's end, and along an epoch that reading swings with "
        f"sd {budget['along_sd'].min():.2g}–{budget['along_sd'].max():.2g}: "
        + ", ".join(
            f"{PARTS[str(key)]} is the largest part of the gap in {int(count)}"
            for key, count in counts.items()
        )
        + f" of the {len(budget)} rows. "
    )
    evidence = (
        f"Each model of the sweep at η = {eta:g} ({seeds} seed{'s' if seeds > 1 else ''}, seed "
        f"means) took one more epoch (epoch {epoch}) step by step from its final weights; the "
        "gap r − b at the final weights splits exactly into "
        + ", ".join(f"{key.replace('_', ' ')} ({words})" for key, words in PARTS.items())
        + f"; the identity's largest error is {budget['identity_error'].max():.1e} in ln‖W‖. "
        f"The largest gap, {worst['init']} layer {int(worst['layer'])} at λ = "
        f"{worst['lambda']:g}: r {worst['snapshot']:+.2f} against b "
        f"{worst['snapshot_balance']:+.2f}, gap {worst['gap']:+.2f} = "
        + " + ".join(f"{worst[key]:+.2f}" for key in PARTS)
        + f"; along the epoch the full-batch r has mean {worst['along']:+.2f} and sd "
        f"{worst['along_sd']:.2f} over its points, so one reading at an epoch's end is a noisy "
        f"sample of it. Every row with |gap| ≥ {WIDE_GAP:g}, its gap and largest part: "
        + "; ".join(
            f"{row['init']} layer {int(row['layer'])} λ = {row['lambda']:g}: {row['gap']:+.2f} "
            f"({largest[index].replace('_', ' ')} {row[largest[index]]:+.2f})"
            for index, row in budget.iterrows()
            if abs(row["gap"]) >= WIDE_GAP
        )
        + "."
    )
    return plain + evidence


def _level_sentence(part: list[TheoryRow]) -> str:
    """One init and layer across the sweep: the RMS per lambda, its range in units of
    1/sqrt(n_w), and the measured share along W against the balance's where levelled."""
    first = part[0]
    values = ", ".join(
        f"{r.equilibrium_rms:.3g}" + ("" if r.equilibrium_levelled else "*") for r in part
    )
    rms = pd.Series([r.equilibrium_rms for r in part])
    scale = rms / first.inv_sqrt_n_weights
    gap = pd.Series(
        [
            r.equilibrium_radial_ratio - r.equilibrium_balance_radial_ratio
            for r in part
            if r.equilibrium_levelled
        ],
        dtype=float,
    )
    balance = (
        f"; r minus the balance's r from {gap.min():+.2f} to {gap.max():+.2f}" if len(gap) else ""
    )
    return (
        f"{first.init} layer {int(first.layer)}: {values} ({scale.min():.3g}–"
        f"{scale.max():.3g}× 1/√n_w, {rms.min() / first.inv_sqrt_n_in:.3g}–"
        f"{rms.max() / first.inv_sqrt_n_in:.3g}× 1/√n_in{balance}{_unlevelled(part)})"
    )


def _unlevelled(part: list[TheoryRow]) -> str:
    """When each lambda not levelled in its run would level off, from its measured rate."""
    late = [r for r in part if not r.equilibrium_levelled]
    if not late:
        return ""
    return "; " + "; ".join(
        f"λ = {r.lam:g} not levelled in {int(r.epochs)} epochs (rate {r.equilibrium_rate:+.2f}"
        + (
            f", at its measured decline levelled by epoch {r.equilibrium_level_epoch:.0f})"
            if not math.isnan(r.equilibrium_level_epoch)
            else ", not declining: no level-off epoch can be read from it)"
        )
        for r in late
    )


def _cost_test(costs: pd.DataFrame | None, config) -> str:
    """The causal test (``cost_test``): for an init where one layer shrinks while another
    grows (the question's contrast), what share of the growth in ln||W|| the same runs keep
    under the other cost; inits where every layer grows (from a small start) in a sentence of
    their own. Empty without the test."""
    if costs is None or costs.empty:
        return ""
    own = costs[costs["cost"] == config.model.cost]
    other = costs[costs["cost"] != config.model.cost]
    pairs = []
    for row in own[own["grows_every_seed"].astype(bool)].itertuples():
        twin = other[(other["init"] == row.init) & (other["layer"] == row.layer)]
        if not twin.empty:
            pairs.append((row, twin.iloc[0]))
    if not pairs:
        return ""
    shrinking = set(own[own["l2_change"] < 1]["init"])
    contrast = [(row, twin) for row, twin in pairs if row.init in shrinking]
    rest = [(row, twin) for row, twin in pairs if row.init not in shrinking]
    other_cost = str(pairs[0][1].cost).replace("_", "-")
    own_cost = config.model.cost.replace("_", "-")
    q, n_seeds = int(pairs[0][0].question_epoch), int(pairs[0][0].seeds)
    same = f"same inits, seeds, mini-batch order, η, λ, {q} epochs, {n_seeds} seeds"

    def change(row) -> str:
        return (
            f"×{row.l2_change:.3g} (seeds {row.l2_change_min:.3g}–{row.l2_change_max:.3g}, "
            f"median r {row.radial_ratio_median:+.2g})"
        )

    def both(part) -> str:
        return "; ".join(
            f"{row.init} layer {int(row.layer)}: {change(row)} under {own_cost}, "
            f"{change(twin)} under {other_cost} (it keeps {_kept(row, twin):.0%} of its "
            "growth in ln‖W‖)"
            for row, twin in part
        )

    text = ""
    if contrast:
        kept = max(_kept(row, twin) for row, twin in contrast)
        text += (
            "Tested causally, "
            + (
                "the cost is what grows it"
                if kept <= 0
                else "the cost explains most of the growth"
                if kept < MOSTLY
                else "the cost explains the growth only in part"
            )
            + f": trained again with the {other_cost} cost ({same}), "
            + both(contrast)
            + ". "
        )
    if rest:
        text += (
            f"From the {' and '.join(dict.fromkeys(row.init for row, _ in rest))} init every "
            "layer grows under both costs (it starts "
            "below its level): " + both(rest) + ". "
        )
    accuracy = {row.init: (row, twin) for row, twin in pairs}
    return (
        text
        + f"Validation accuracy at epoch {q}: "
        + "; ".join(
            f"{init} {row.validation_accuracy:.2%} ({own_cost}) vs "
            f"{twin.validation_accuracy:.2%} ({other_cost})"
            for init, (row, twin) in accuracy.items()
        )
        + ". The same-weights counterfactual below is the supporting number. "
    )


MOSTLY = 0.25  # "explains most of the growth": the other cost keeps less than this share


def _kept(row, twin) -> float:
    """The share of a layer's growth in ln||W|| that remains under the other cost (<= 0:
    it shrinks there)."""
    return math.log(twin.l2_change) / math.log(row.l2_change)


def _mechanism(rows: list[TheoryRow], q: int) -> str:
    """r < -1 grows a layer. Under cross-entropy the output delta is a - y, with no sigma'(z)
    factor; the quadratic cost's delta (a - y) sigma'(z) at the same weights says whether that
    missing factor is what pushes the growing layer outward."""
    growing = [r for r in rows if r.radial_ratio_median < -1]
    if growing:
        explained = all(r.radial_ratio_quadratic_median > -1 for r in growing)
        answer = (
            ("Yes: " if explained else "No: ")
            + "; ".join(
                f"{r.init} {_layer(r)} grows (median r {r.radial_ratio_median:+.2g} under "
                f"cross-entropy), and with the quadratic cost's σ′ factor the same weights give "
                f"median r {r.radial_ratio_quadratic_median:+.2g}"
                for r in growing
            )
            + (
                ", so the missing σ′ factor of the cross-entropy output is what pushes it outward. "
                if explained
                else ", so the missing σ′ factor does not explain the growth alone. "
            )
        )
    else:
        answer = "No layer grows (median r ≥ −1 everywhere). "
    return (
        answer + "Per step, ‖W‖ changes by −(ηλ/n)‖W‖(1 + r), r being the data term's share "
        f"along w relative to the decay term: a layer grows while r < −1. Over {q} epochs ‖W‖ "
        "changed by a factor "
        + "; ".join(
            f"{r.init} {_layer(r)}: {r.l2_change_question:.3g} (λ = 0 control "
            f"{_fmt(r.l2_change_question_control)}; r < −1 in {r.outward_epochs:.3g} of "
            f"{q} epochs; mean σ′(z) of its units {r.saturation_mean_dsigma_start:.3g} → "
            f"{r.saturation_mean_dsigma_end:.3g}, share with |z| > 4 "
            f"{r.saturation_share_z4_start:.0%} → {r.saturation_share_z4_end:.0%}; output "
            f"error ‖a − y‖ {r.output_error_start:.3g} → {r.output_error_end:.3g} by the "
            f"end of the run)"
            for r in rows
        )
        + "."
    )
