"""Question 2, Nielsen's weight-decay exercise: the answers (a)-(d), the level-off scale and
the mechanism, each opening with a plain answer and its number, then the evidence.

Read from results/dynamics_theory.csv (``l2path.dynamics.theory``): the question's rows are
the main setting's (eta, first lambda > 0); the book's and the sweep's rows add the tail-off
at eta = 0.5 and the level-off across lambda.
"""
from __future__ import annotations

import math

import pandas as pd

from ..dynamics.equilibrium import slopes

NEAR = 3.0  # "near 1/sqrt(n_w)": within this factor of it


def _fmt(value: float, spec: str = ".3g") -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def _layer(r: dict) -> str:
    return f"layer {int(r['layer'])}"


def _per_layer(part: pd.DataFrame, text) -> str:
    return "; ".join(f"{_layer(r)}: {text(r)}" for r in part.to_dict("records"))


def dynamics_answers(theory: pd.DataFrame, config) -> list[tuple[str, str]]:
    """``config``: the ``dynamics`` params section that produced ``theory``."""
    lam = next(value for value in config.lambdas if value > 0)
    rows = theory[(theory["eta"] == config.eta) & (theory["lambda"] == lam)]
    large, default = rows[rows["init"] == "large"], rows[rows["init"] == "default"]
    q = int(rows["question_epoch"].iloc[0])
    answers = []
    if len(large):
        answers.append(("(a) Are the first epochs dominated by decay? (large N(0,1) init)", (
            _decay_dominated(large, lam, q) + " Evidence: at the initial weights the full-batch data-gradient term "
            "per step is " + _per_layer(large, lambda r: f"{r['ratio_start']:.3g}× the decay term") + "; after the "
            "first epoch " + _per_layer(large, lambda r: f"it stayed below the decay term in "
                                        f"{r['decay_dominated_epochs']:.3g} of {q} epochs, its share along w "
                                        f"median {r['radial_ratio_median']:.2g}")
            + ". The size of the gradient does not decide it: only its share along w changes the norm.")))
    answers.append(("(b) Per-epoch shrink (1 − ηλ/n)^(n/m) ≈ exp(−ηλ/m) while gradients are small", (
        f"Theory: {rows['theory_factor'].iloc[0]:.6f} per epoch (exp form {rows['theory_factor_exp'].iloc[0]:.6f}; "
        f"η = {config.eta:g}, λ = {lam:g}, {int(rows['epochs'].iloc[0])} epochs). "
        + "; ".join(_shrink_sentence(r) for r in rows.to_dict("records")) + ".")))
    answers.append(("(c) Does decay tail off near RMS 1/√n_w?", _tail_off_answer(theory, config, lam)))
    if len(large) and len(default):
        answers.append(("(d) How does this relate to the N(0, 1/n_in) initialisation?", _init_answer(large, default, lam, q)))
    if config.sweep is not None:
        answers.append(("(e) At what scale does each layer level off, and does it depend on λ?",
                        _level_off_answer(theory, config)))
    answers.append(("Why one layer shrinks while another grows", _mechanism(rows, q)))
    return answers


def _decay_dominated(large: pd.DataFrame, lam: float, q: int) -> str:
    """Yes for a layer whose norm barely moves without decay: its norm dynamics are decay's."""
    def verdict(r) -> str:
        decayed, control = math.log(r["l2_change_question"]), math.log(r["l2_change_question_control"])
        answer = "yes" if abs(control) < 0.1 * abs(decayed) else "no"
        return (f"{answer} for {_layer(r)} (over {q} epochs its norm changed ×{r['l2_change_question']:.3g} with "
                f"λ = {lam:g} and ×{r['l2_change_question_control']:.4g} with λ = 0)")
    return "; ".join(verdict(r) for r in large.to_dict("records")).capitalize() + "."


def _shrink_sentence(r: dict) -> str:
    if not r["small_epochs"]:
        return (f"{r['init']} {_layer(r)}: no small-gradient epochs (first-epoch factor "
                f"{r['first_epoch_factor']:.4f})")
    return (f"{r['init']} {_layer(r)}: measured {r['measured_factor']:.6f} over {int(r['small_epochs'])} "
            f"seed-epochs (relative deviation {r['relative_deviation']:+.1e}); the data term's share along w "
            f"({r['radial_ratio_small']:+.3f}) gives {r['theory_factor_with_gradient']:.6f} to first order "
            f"({_share(r['first_order_share_of_gap'])} of the gap), and with the mini-batch term "
            f"η²E‖g_B‖²/‖W‖² {r['second_order_factor']:.6f} to second order ({_share(r['second_order_share_of_gap'])} "
            f"of the gap; residual {r['second_order_residual']:+.1e})")


def _share(value: float) -> str:
    return "none" if math.isnan(value) else f"{value:.0%}"


def _tail_rows(theory: pd.DataFrame, config, lam: float) -> pd.DataFrame:
    """The large init's decaying layers in the question's setting and the book's, at lambda."""
    settings = [config.eta] + ([config.book.eta] if config.book is not None else [])
    rows = theory[(theory["init"] == "large") & (theory["lambda"] == lam) & theory["eta"].isin(settings)
                  & (theory["first_epoch_factor"] < 1)]
    return rows.sort_values(["eta", "layer"])


def _tail_off_answer(theory: pd.DataFrame, config, lam: float) -> str:
    rows = _tail_rows(theory, config, lam)
    n_w = round(1 / theory["inv_n_weights"].iloc[0])
    crossed = [r for r in rows.to_dict("records") if r["tail_off_seeds"]]
    if crossed:
        far = [r for r in crossed if r["tail_off_rms"] / r["inv_sqrt_n_weights"] > NEAR]
        plain = ("No: " if far else "Yes: ") + "; ".join(
            f"at η = {r['eta']:g} {_layer(r)} tails off at RMS {r['tail_off_rms']:.3g}, "
            f"{r['tail_off_rms'] / r['inv_sqrt_n_weights']:.3g}× 1/√n_w" for r in crossed) + ". "
    else:
        plain = "Not within the runs: no decaying layer's shrink fell below the cut. "
    fraction = config.tail_off_fraction
    evidence = (f"1/√n_w = {theory['inv_sqrt_n_weights'].iloc[0]:.4g} for n_w = {n_w} weights. The tail-off is where "
                f"the trend ({config.trend_epochs}-epoch moving mean) of each epoch's log-shrink, as a share of pure "
                f"decay's, falls below {fraction:.0%}: "
                + "; ".join(_tail_sentence(r, fraction) for r in rows.to_dict("records")) + ".")
    growing = theory[(theory["init"] == "large") & (theory["lambda"] == lam) & (theory["eta"] == config.eta)
                     & (theory["first_epoch_factor"] >= 1)]
    if len(growing):
        evidence += " " + "; ".join(f"{_layer(r)} never decays: it grew ×{r['first_epoch_factor']:.3g} in the first "
                                    f"epoch (RMS {r['rms_start']:.3g} → {r['rms_end']:.3g})"
                                    for r in growing.to_dict("records")) + "."
    return plain + evidence


def _tail_sentence(r: dict, fraction: float) -> str:
    setting = f"η = {r['eta']:g}, {int(r['epochs'])} epochs, {_layer(r)}"
    if not r["tail_off_seeds"]:
        return (f"{setting}: not below {fraction:.0%} (the last epoch's log-shrink is {r['shrink_rate_end']:.0%} of "
                f"the theory's; RMS {r['rms_start']:.3g} → {r['rms_end']:.3g})")
    band = (f" (seeds {r['tail_off_epoch_min']:.3g}–{r['tail_off_epoch_max']:.3g}, RMS "
            f"{r['tail_off_rms_min']:.3g}–{r['tail_off_rms_max']:.3g})" if r["seeds"] > 1 else "")
    return (f"{setting}: at epoch {r['tail_off_epoch']:.3g} with RMS {r['tail_off_rms']:.3g}{band}, "
            f"{r['tail_off_rms'] / r['inv_sqrt_n_in']:.3g}× 1/√n_in; at the end the log-shrink is "
            f"{r['shrink_rate_end']:.0%} of the theory's and the RMS {r['rms_end']:.3g}")


def _init_answer(large: pd.DataFrame, default: pd.DataFrame, lam: float, q: int) -> str:
    return (f"The N(0, 1/n_in) start ends with the best validation accuracy after {q} epochs: "
            f"{default['validation_accuracy_question'].iloc[0]:.2%}, against "
            f"{large['validation_accuracy_question'].iloc[0]:.2%} from the large start with λ = {lam:g} and "
            f"{_fmt(large['validation_accuracy_question_control'].iloc[0], '.2%')} from the large start without "
            f"decay. The default initialiser starts each layer at RMS 1/√n_in ("
            + _per_layer(default, lambda r: f"{r['inv_sqrt_n_in']:.3g}") + "), where the data term outweighs decay "
            "from the start (" + _per_layer(default, lambda r: f"ratio {r['ratio_start']:.3g}") + "). At the end of "
            "the run the RMS weights are " + _per_layer(large, lambda r: f"large {r['rms_end']:.3g}") + " vs "
            + _per_layer(default, lambda r: f"default {r['rms_end']:.3g}") + f"; after {q} epochs the weight "
            "variances from the large start are " + _per_layer(large, lambda r: f"{r['var_question']:.3g} (the "
                                                               f"question: {_fmt(r['reported_variance'])})") + ".")


def _level_off_answer(theory: pd.DataFrame, config) -> str:
    """The sweep: the slope of ln RMS on ln lambda per init and layer, against 0 (a fixed
    1/sqrt(n_w) scale) and the balance's r = -1 + noise / (2 eta lambda / n)."""
    eta = config.sweep.eta
    rows = theory[theory["eta"] == eta].sort_values(["init", "layer", "lambda"])
    fits = slopes(rows)
    if not len(fits):
        return (f"Not measured: fewer than two λ levelled off within {config.sweep.epochs} epochs at η = {eta:g} "
                f"(levelled: the last {config.trend_epochs} epochs' shrink within "
                f"{config.level_off_rate:.0%} of the decay rate of zero).")
    moves = [f for f in fits.to_dict("records") if abs(f["equilibrium_slope"]) > 0.05]
    plain = ("Yes, it depends on λ, which a fixed 1/√n_w scale (slope 0) does not allow and the balance "
             "(λ/n)W = −∂L/∂W along W does: " if moves else
             "No, the scale barely moves with λ, as a fixed scale predicts: ")
    plain += "; ".join(f"{f['init']} layer {f['layer']}: RMS ∝ λ^{f['equilibrium_slope']:+.2f}"
                       + (f" ± {f['equilibrium_slope_se']:.2f}" if not math.isnan(f["equilibrium_slope_se"]) else "")
                       + f" over λ = {f['equilibrium_lambdas'].replace(' ', ', ')}" for f in fits.to_dict("records"))
    evidence = (f". Sweep at η = {eta:g}, {config.sweep.epochs} epochs; a layer has levelled off when the trend of "
                f"its last {config.trend_epochs} epochs' shrink is within {config.level_off_rate:.0%} of the decay rate "
                "of zero (* below: not levelled). RMS at the end for λ = "
                + ", ".join(f"{lam:g}" for lam in sorted(rows["lambda"].unique())) + ": "
                + "; ".join(_level_sentence(part) for _, part in rows.groupby(["init", "layer"], sort=False)) + ".")
    return plain + evidence


def _level_sentence(part: pd.DataFrame) -> str:
    """One init and layer across the sweep: the RMS per lambda, its range in units of
    1/sqrt(n_w), and the measured share along W against the balance's where levelled."""
    first = part.iloc[0]
    values = ", ".join(f"{r['equilibrium_rms']:.3g}" + ("" if r["equilibrium_levelled"] else "*")
                       for r in part.to_dict("records"))
    scale = part["equilibrium_rms"] / first["inv_sqrt_n_weights"]
    level = part[part["equilibrium_levelled"].astype(bool)]
    gap = level["equilibrium_radial_ratio"] - level["equilibrium_balance_radial_ratio"]
    balance = (f"; r minus the balance's r from {gap.min():+.2f} to {gap.max():+.2f}" if len(level) else "")
    return (f"{first['init']} layer {int(first['layer'])}: {values} ({scale.min():.3g}–{scale.max():.3g}× 1/√n_w, "
            f"{part['equilibrium_rms'].min() / first['inv_sqrt_n_in']:.3g}–"
            f"{part['equilibrium_rms'].max() / first['inv_sqrt_n_in']:.3g}× 1/√n_in{balance})")


def _mechanism(rows: pd.DataFrame, q: int) -> str:
    """r < -1 grows a layer. Under cross-entropy the output delta is a - y, with no sigma'(z)
    factor; the quadratic cost's delta (a - y) sigma'(z) at the same weights says whether that
    missing factor is what pushes the growing layer outward."""
    growing = [r for r in rows.to_dict("records") if r["radial_ratio_median"] < -1]
    if growing:
        explained = all(r["radial_ratio_quadratic_median"] > -1 for r in growing)
        answer = ("Yes: " if explained else "No: ") + "; ".join(
            f"{r['init']} {_layer(r)} grows (median r {r['radial_ratio_median']:+.2g} under cross-entropy), "
            f"and with the quadratic cost's σ′ factor the same weights give median r "
            f"{r['radial_ratio_quadratic_median']:+.2g}" for r in growing) + (
            ", so the missing σ′ factor of the cross-entropy output is what pushes it outward. " if explained else
            ", so the missing σ′ factor does not explain the growth alone. ")
    else:
        answer = "No layer grows (median r ≥ −1 everywhere). "
    return (
        answer + f"Per step, ‖W‖ changes by −(ηλ/n)‖W‖(1 + r), r being the data term's share along w relative to "
        f"the decay term: a layer grows while r < −1. Over {q} epochs ‖W‖ changed by a factor "
        + "; ".join(f"{r['init']} {_layer(r)}: {r['l2_change_question']:.3g} (λ = 0 control "
                    f"{_fmt(r['l2_change_question_control'])}; r < −1 in {r['outward_epochs']:.3g} of {q} epochs; "
                    f"mean σ′(z) of its units {r['saturation_mean_dsigma_start']:.3g} → "
                    f"{r['saturation_mean_dsigma_end']:.3g}, share with |z| > 4 {r['saturation_share_z4_start']:.0%} → "
                    f"{r['saturation_share_z4_end']:.0%}; output error ‖a − y‖ {r['output_error_start']:.3g} → "
                    f"{r['output_error_end']:.3g} by the end of the run)" for r in rows.to_dict("records")) + ".")
