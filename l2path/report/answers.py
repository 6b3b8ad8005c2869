"""Plain-words answers to the two questions of the study (docs/science.md), written from
the stages' tables: every number in a sentence is read from a table, none is typed here.

- ``continuation_answers``: question 1, from the monotonicity metrics (per schedule and
  quantity: steps, decreases, decreases beyond cold-start noise, between certified points),
  results/study.csv (certified points) and the hessian stage's tables (class of the start
  point of every non-monotone step, escapes, J on the segment between the step's points).
- ``dynamics_answers``: question 2 (a)-(d), from results/dynamics_theory.csv.
Each returns a list of (heading, paragraph) pairs.
"""
from __future__ import annotations

import math

import pandas as pd

SCHEDULE_WORDS = {"ascending": "Along the warm-started ascending chains (λ rising from point to point)",
                  "descending": "Along the descending chains (λ falling from point to point)",
                  "cold": "Across the cold starts (a fresh initialisation at every λ: independent points, "
                          "not a continuation)"}
# What a lambda-order decrease of the MSE is, in each schedule's own direction.
FALL_WORDS = {"ascending": "the in-sample MSE fell as λ rose", "descending": "the in-sample MSE rose as λ fell",
              "cold": "the in-sample MSE was lower at the larger of two neighbouring λ"}
HEADINGS = {"ascending": "λ continuation, ascending", "descending": "λ continuation, descending",
            "cold": "cold starts"}
LEMMA = ("The lemma the question is about: at global minimisers of J_λ = L + (λ/2n)‖w‖² the data loss L is "
         "non-decreasing in λ. Along a branch of local minima, dL/dλ = (λ/n²)·wᵀH⁻¹w ≥ 0 (H the Hessian of J_λ, "
         "w the weights with the biases set to zero). So the data loss (here the in-sample MSE, the trained "
         "quadratic cost) can fall as λ rises only on a saddle branch or by a jump between branches, or when the "
         "points are not converged: which of these happened is what the same-λ controls and the curvature test.")


def opening_answer(verdicts: dict, monotonicity: dict) -> str:
    """One or two sentences from metrics/verdicts.json: is the MSE monotone along the chains, and why not."""
    sentences = []
    for schedule in ("ascending", "descending"):
        if schedule not in verdicts:
            continue
        counts, steps = verdicts[schedule], monotonicity[schedule]["train_mse"]["steps"]
        fell = counts["nonmonotone_steps"]
        words = FALL_WORDS[schedule]
        if not fell:
            sentences.append(f"{SCHEDULE_WORDS[schedule]}, the in-sample MSE was monotone at all {steps} steps.")
            continue
        sentences.append(
            f"{SCHEDULE_WORDS[schedule]}, {words} at {fell} of {steps} steps: the same-λ controls got as low at "
            f"{counts['continued_optimisation']} of them (continued optimisation explains those), "
            f"{counts['within_noise']} are within noise, and {counts['beyond_noise_unexplained']} remain beyond "
            "noise and unexplained.")
    nonmonotone = sum(verdicts[s]["nonmonotone_steps"] for s in ("ascending", "descending") if s in verdicts)
    return ("Yes, it is non-monotone. " if nonmonotone else "No non-monotone step. ") + " ".join(sentences)


def curvature_answer(continuation: dict, steps: pd.DataFrame | None = None) -> str:
    """What the certified continuation found (metrics/continuation.json), and for each step whose
    polished end points still show the drop, its verdict (results/continuation_steps.csv)."""
    classes, verdicts = continuation["classes"], continuation["verdicts"]
    text = (f"Certified continuation (J_λ on the first {continuation['n_sub']} training images, λ/n as in the "
            f"study): {continuation['certified_points']} of {continuation['points']} points certified "
            f"({classes['minimum']} minima, {classes['saddle']} saddles, {classes['degenerate']} degenerate), "
            f"{_plural(continuation['folds'], 'fold')} located{_escapes(continuation)}; of the {continuation['nonmonotone_steps']} "
            f"non-monotone ascending steps, {verdicts['saddle_branch']} lie on a saddle branch, "
            f"{verdicts['branch_jump']} jump between branches of minima ({_jumps(continuation)}), "
            f"{verdicts['one_branch_of_minima']} stay on one branch of "
            f"minima and {continuation['undecided']} are undecided. Polished to critical points, the two ends of "
            f"a step still show the drop in {continuation['drops_reproduced']} of the "
            f"{continuation['nonmonotone_steps']} steps")
    kept = steps[steps["drop_reproduced"].astype(bool)] if steps is not None and len(steps) else None
    if kept is not None and len(kept):
        text += ": " + "; ".join(_step_evidence(row) for row in kept.itertuples())
    return text + "."


def _escapes(continuation: dict) -> str:
    if not continuation["escapes"]:
        return ""
    return (f", and at {_plural(continuation['escapes'], 'certified saddle')} the escape along negative curvature "
            f"ended below the unperturbed control polish at {continuation['escapes_lowering']}")


def _jumps(continuation: dict) -> str:
    """How the jumps were found: at a fold, or as a switch to another branch of minima."""
    jumps = continuation["jumps"]
    return (f"{jumps['fold']} at a fold located within the step, {jumps['switch']} where the end is a certified "
            f"minimum off the start's continuing branch, {jumps['switch_lowering']} of these with a lower data loss")


def _step_evidence(row) -> str:
    text = f"seed {row.seed}, λ {row.lambda_from:g} → {row.lambda_to:g}, {row.curvature_verdict}"
    if row.curvature_verdict == "branch jump" and row.jump_kind == "fold":
        text += f" (fold in λ ∈ ({row.fold_low:.4g}, {row.fold_high:.4g}), following the branch {row.fold_side})"
    elif row.curvature_verdict == "undecided":
        text += f" ({row.reason})"
    return text


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _steps_sentence(schedule: str, counts: dict) -> str:
    mse = counts["train_mse"]
    sentence = (f"{SCHEDULE_WORDS.get(schedule, schedule)}, {FALL_WORDS.get(schedule, 'the MSE fell')} at "
                f"{mse['decreases']} of {_plural(mse['steps'], 'step')} ({mse['decreases_beyond_noise']} of them beyond "
                f"the within-stage noise of their two ends; {mse['decreases_between_certified']} between two "
                f"certified points)")
    if mse["decreases"]:
        sentence += (f"; they form {_plural(mse['runs'], 'run')} of consecutive drops (the longest "
                     f"{mse['longest_run']} steps), {mse['runs_beyond_noise']} with a cumulative drop beyond noise")
    objective = counts.get("objective")
    if objective is not None:
        sentence += f"; the objective J_λ fell at {objective['decreases']} of its steps"
    if mse["decreases"]:
        sentence += (f". The largest single drop was {mse['largest_decrease']:.3g}, the largest drop between any "
                     f"two λ of a path {mse['largest_drop_any_pair']:.3g}")
    return sentence + "."


def _better_under_old_lambda(part: pd.DataFrame, interpolation: pd.DataFrame | None) -> str:
    """How many steps ended at a point that is lower under the *previous* lambda's objective:
    then the previous point was not a minimum of its own J_lambda (the next stage simply
    went on optimising it)."""
    if interpolation is None or interpolation.empty:
        return ""
    under_from = interpolation[interpolation["objective_lambda"] == "from"].sort_values("t")
    ends = under_from.groupby(["start", "end"])["objective"].agg(["first", "last"])
    keys = list(zip(part["start"], part["end"]))
    found = ends.reindex(keys).dropna()
    lower = int((found["last"] < found["first"]).sum())
    return (f" At {lower} of these {len(found)} steps the new point is lower than the old one under the old λ's "
            f"objective itself (J_λk(θ_k+1) < J_λk(θ_k)), so the old point was not a minimum of its own "
            f"objective: the next stage went on optimising it.")


def _saddle_sentence(schedule: str, saddle_steps: pd.DataFrame, interpolation: pd.DataFrame | None = None) -> str | None:
    part = saddle_steps[saddle_steps["schedule"] == schedule]
    if part.empty:
        return None
    classes = part["start_class"].value_counts()
    lowered = int(part["start_escape_lower"].astype(bool).sum())
    text = f"Of the {_plural(len(part), 'non-monotone step')} of the {schedule} chains, "
    if classes.get("not analysed", 0) == len(part):  # hessian.select: none; the continuation stage judges them
        text += "none was classed by the per-point Hessian analysis (hessian.select: none)"
    else:
        text += (f"{classes.get('saddle', 0)} started from a saddle point, {classes.get('minimum', 0)} from a "
                 f"minimum and {classes.get('not critical', 0)} from a point that is not a certified critical "
                 f"point (its gradient norm is above the certificate tolerance, so no claim about saddles can be "
                 f"made there)")
    if classes.get("saddle", 0):
        text += f"; stepping along the negative curvature and re-optimising lowered J_λ at {lowered} of the saddles"
    barriers = part[["barrier_under_lambda_from", "barrier_under_lambda_to"]].max(axis=1)
    text += (f". On the straight line between consecutive points, {int((barriers > 0).sum())} of these steps "
             f"cross a barrier in J_λ.")
    return text + _better_under_old_lambda(part, interpolation)


def _curvature_sentence(hessian: pd.DataFrame) -> str:
    classes = hessian["class"].value_counts()
    negative = int((hessian["lambda_min"] < 0).sum())
    return (f"The Hessian of J_λ was analysed at {_plural(len(hessian), 'point')}: "
            f"{classes.get('minimum', 0)} minima, {classes.get('saddle', 0)} saddles, "
            f"{classes.get('not critical', 0)} not critical. λ_max ranged over "
            f"{hessian['lambda_max'].min():.3g} to {hessian['lambda_max'].max():.3g}; {negative} points have a "
            f"negative smallest eigenvalue (from {hessian['lambda_min'].min():.3g} to "
            f"{hessian['lambda_min'].max():.3g}), i.e. directions of negative curvature exist even where the point "
            f"is not certified critical.")


def continuation_answers(monotonicity: dict, study: pd.DataFrame, hessian: pd.DataFrame | None,
                         saddle_steps: pd.DataFrame | None,
                         interpolation: pd.DataFrame | None = None) -> list[tuple[str, str]]:
    """Question 1: does in-sample MSE rise with lambda along each schedule, and were the
    drops at saddle points?"""
    answers = []
    certified = int(study["certified"].astype(bool).sum())
    for schedule, counts in monotonicity.items():
        text = _steps_sentence(schedule, counts)
        if saddle_steps is not None:
            extra = _saddle_sentence(schedule, saddle_steps, interpolation)
            text += f" {extra}" if extra else ""
        answers.append((HEADINGS.get(schedule, schedule), text))
    summary = (f"{certified} of {_plural(len(study), 'point')} of the study were certified critical points "
               f"(full-batch ‖∇J_λ‖ under the tolerance); the others stopped on the SGD plateau rule, "
               f"with ‖∇J_λ‖ from {study['grad_norm'].min():.2g} to {study['grad_norm'].max():.2g}.")
    if hessian is not None and len(hessian):
        summary += " " + _curvature_sentence(hessian)
    answers.append(("Convergence and curvature", summary))
    return answers


def _fmt(value: float, spec: str = ".3g") -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def dynamics_answers(theory: pd.DataFrame, epochs: int) -> list[tuple[str, str]]:
    """Question 2 (a)-(d), Nielsen's weight-decay exercise: each a plain answer with its number
    first, then the evidence."""
    answers = []
    lam = theory["lambda"].iloc[0]
    rows = theory[theory["lambda"] == lam]
    large, default = rows[rows["init"] == "large"], rows[rows["init"] == "default"]

    def per_layer(part: pd.DataFrame, text) -> str:
        return "; ".join(f"layer {int(r['layer'])}: {text(r)}" for r in part.to_dict("records"))

    if len(large):
        answers.append(("(a) Are the first epochs dominated by decay? (large N(0,1) init)", (
            _decay_dominated(large, lam) + " Evidence: at the initial weights the full-batch data-gradient term "
            "per step is " + per_layer(large, lambda r: f"{r['ratio_start']:.3g}× the decay term") + "; after the "
            "first epoch " + per_layer(large, lambda r: f"it stayed below the decay term in "
                                       f"{r['decay_dominated_epochs']:.3g} of {epochs} epochs, its share along w "
                                       f"median {r['radial_ratio_median']:.2g}")
            + ". The size of the gradient does not decide it: only its share along w changes the norm.")))
    answers.append(("(b) Per-epoch shrink (1 − ηλ/n)^(n/m) ≈ exp(−ηλ/m) while gradients are small", (
        f"Theory: {rows['theory_factor'].iloc[0]:.6f} per epoch (exp form {rows['theory_factor_exp'].iloc[0]:.6f}). "
        + "; ".join(_shrink_sentence(r) for r in rows.to_dict("records")) + ".")))
    answers.append(("(c) Does decay tail off near RMS 1/√n_w?", (
        f"1/√n_w = {rows['inv_sqrt_n_weights'].iloc[0]:.4g} and 1/n_w = {rows['inv_n_weights'].iloc[0]:.3g} "
        f"for n_w = {round(1 / rows['inv_n_weights'].iloc[0])} weights. "
        + "; ".join(f"{r['init']} layer {int(r['layer'])}: " + _tail_sentence(r, epochs)
                    for r in rows.to_dict("records")) + ".")))
    if len(large) and len(default):
        answers.append(("(d) How does this relate to the N(0, 1/n_in) initialisation?", (
            f"The N(0, 1/n_in) start ends with the best validation accuracy: "
            f"{default['validation_accuracy_end'].iloc[0]:.2%}, against {large['validation_accuracy_end'].iloc[0]:.2%} "
            f"from the large start with λ = {lam:g} and {_fmt(large['validation_accuracy_end_control'].iloc[0], '.2%')}"
            f" from the large start without decay. The default initialiser starts each layer at RMS 1/√n_in ("
            + per_layer(default, lambda r: f"{r['inv_sqrt_n_in']:.3g}") + "), where the data term outweighs decay "
            "from the start (" + per_layer(default, lambda r: f"ratio {r['ratio_start']:.3g}") + "). After "
            f"{epochs} epochs the RMS weights are "
            + per_layer(large, lambda r: f"large {r['rms_end']:.3g}") + " vs "
            + per_layer(default, lambda r: f"default {r['rms_end']:.3g}") + "; the weight variances from the large "
            "start are " + per_layer(large, lambda r: f"{r['var_end']:.3g} (the question: "
                                     f"{_fmt(r['reported_variance'])})") + ".")))
    answers.append(("Why one layer shrinks while another grows", _mechanism(rows, epochs)))
    return answers


def _decay_dominated(large: pd.DataFrame, lam: float) -> str:
    """Yes for a layer whose norm barely moves without decay: its norm dynamics are decay's."""
    def verdict(r) -> str:
        decayed, control = math.log(r["l2_change"]), math.log(r["l2_change_control"])
        answer = "yes" if abs(control) < 0.1 * abs(decayed) else "no"
        return (f"{answer} for layer {int(r['layer'])} (its norm changed ×{r['l2_change']:.3g} with λ = {lam:g} "
                f"and ×{r['l2_change_control']:.4g} with λ = 0)")
    return "; ".join(verdict(r) for r in large.to_dict("records")).capitalize() + "."


def _shrink_sentence(r: dict) -> str:
    if not r["small_epochs"]:
        return (f"{r['init']} layer {int(r['layer'])}: no small-gradient epochs (first-epoch factor "
                f"{r['first_epoch_factor']:.4f})")
    return (f"{r['init']} layer {int(r['layer'])}: measured {r['measured_factor']:.6f} over {int(r['small_epochs'])} "
            f"seed-epochs (relative deviation {r['relative_deviation']:+.1e}); the data term's share along w "
            f"({r['radial_ratio_small']:+.3f}) gives {r['theory_factor_with_gradient']:.6f} to first order "
            f"({_share(r['first_order_share_of_gap'])} of the gap), and with the mini-batch term "
            f"η²E‖g_B‖²/‖W‖² {r['second_order_factor']:.6f} to second order ({_share(r['second_order_share_of_gap'])} "
            f"of the gap; residual {r['second_order_residual']:+.1e})")


def _share(value: float) -> str:
    return "none" if math.isnan(value) else f"{value:.0%}"


def _tail_sentence(r: dict, epochs: int) -> str:
    if r["first_epoch_factor"] >= 1:
        return (f"never in a decay phase: it grew ×{r['first_epoch_factor']:.3g} in the first epoch "
                f"(RMS {r['rms_start']:.3g} → {r['rms_end']:.3g} over the run)")
    if not math.isnan(r["tail_off_epoch"]):
        return (f"tails off at epoch {r['tail_off_epoch']:.3g} with RMS {r['tail_off_rms']:.3g} "
                f"({r['tail_off_rms'] * math.sqrt(1 / r['inv_n_weights']):.3g}× 1/√n_w, "
                f"{r['tail_off_rms'] / r['inv_sqrt_n_in']:.3g}× 1/√n_in)")
    return (f"not below the cut within {epochs} epochs, but slowing: the last epoch's log-shrink is "
            f"{r['shrink_rate_end']:.0%} of the theory's (RMS {r['rms_start']:.3g} → {r['rms_end']:.3g}; pure decay "
            f"would need {r['epochs_to_inv_sqrt_n_weights']:.0f} epochs to bring it to 1/√n_w)")


def _mechanism(rows: pd.DataFrame, epochs: int) -> str:
    """r < -1 grows a layer. Under cross-entropy the output delta is a - y, with no sigma'(z)
    factor; the quadratic cost's delta (a - y) sigma'(z) at the same weights says whether that
    missing factor is what pushes the growing layer outward."""
    growing = [r for r in rows.to_dict("records") if r["radial_ratio_median"] < -1]
    if growing:
        explained = all(r["radial_ratio_quadratic_median"] > -1 for r in growing)
        answer = ("Yes: " if explained else "No: ") + "; ".join(
            f"{r['init']} layer {int(r['layer'])} grows (median r {r['radial_ratio_median']:+.2g} under cross-entropy), "
            f"and with the quadratic cost's σ′ factor the same weights give median r "
            f"{r['radial_ratio_quadratic_median']:+.2g}" for r in growing) + (
            ", so the missing σ′ factor of the cross-entropy output is what pushes it outward. " if explained else
            ", so the missing σ′ factor does not explain the growth alone. ")
    else:
        answer = "No layer grows (median r ≥ −1 everywhere). "
    return (
        answer + "Per step, ‖W‖ changes by −(ηλ/n)‖W‖(1 + r), r being the data term's share along w relative to "
        "the decay term: a layer grows while r < −1. Over the run, ‖W‖ changed by a factor "
        + "; ".join(f"{r['init']} layer {int(r['layer'])}: {r['l2_change']:.3g} (λ = 0 control "
                    f"{_fmt(r['l2_change_control'])}; r < −1 in {r['outward_epochs']:.3g} of {epochs} epochs; "
                    f"mean σ′(z) of its units {r['saturation_mean_dsigma_start']:.3g} → "
                    f"{r['saturation_mean_dsigma_end']:.3g}, share with |z| > 4 {r['saturation_share_z4_start']:.0%} → "
                    f"{r['saturation_share_z4_end']:.0%}; output error ‖a − y‖ {r['output_error_start']:.3g} → "
                    f"{r['output_error_end']:.3g})" for r in rows.to_dict("records")) + ".")
