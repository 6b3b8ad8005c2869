"""Plain-words answers to the two questions of the study (docs/science.md), written from
the stages' tables: every number in a sentence is read from a table, none is typed here.

- ``continuation_answers``: question 1, from the monotonicity metrics (per schedule and
  quantity: steps, decreases, decreases beyond cold-start noise, between certified points),
  results/study.csv (certified points) and the hessian stage's tables (class of the start
  point of every non-monotone step, escapes, J on the segment between the step's points).
Question 2's answers are in ``decay_answers``. Each returns a list of (heading, paragraph) pairs.
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
