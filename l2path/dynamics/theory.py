"""The measured per-epoch decay against the theory, one row per (eta, init, lambda > 0, layer).

An epoch of s = ceil(n/m) steps of pure decay multiplies every weight by

    (1 - eta*lambda/n)^s  ~  exp(-eta*lambda/m)   (s ~ n/m),

so each layer's L2 norm shrinks by that factor per epoch. ``theory_table`` compares the
measured per-epoch factor with it over the epochs where |radial_ratio| < small_gradient_ratio
(``records``), with the first-order correction (the data term's share along W) and the
second-order one (the mini-batch term), and adds each row's tail-off (``tail_off``) and
level-off (``equilibrium``). The question's figures (variances, accuracies, the changes
of the norm with and without decay) are read after ``question_epochs`` epochs.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .equilibrium import level_off
from .summary import TheoryRow
from .tail_off import tail_off


def theory_factors(eta: float, lam: float, n: int, m: int) -> tuple[float, float]:
    """Per-epoch shrink factor of pure decay: exact (1 - eta*lam/n)^ceil(n/m), and
    exp(-eta*lam/m)."""
    return (1 - eta * lam / n) ** math.ceil(n / m), math.exp(-eta * lam / m)


def second_order_factor(
    eta: float, lam: float, n: int, m: int, share: np.ndarray, noise: np.ndarray
) -> float:
    """The per-epoch factor of ||W|| to second order, geometric mean over epochs.

    One step W' = d W - eta g_B, d = 1 - eta*lam/n, has, in expectation over the batch,

        E||W'||^2 / ||W||^2 = d^2 - 2 d (eta*lam/n) r + eta^2 E||g_B||^2 / ||W||^2,

    r = eta <g, W/||W||> / ((eta*lam/n) ||W||) the data term's share along W (``share``, per
    epoch) and eta^2 E||g_B||^2 / ||W||^2 the mini-batch term (``noise``, per epoch). An epoch of
    ceil(n/m) steps multiplies ||W|| by that to the power ceil(n/m)/2; to first order in eta
    this is (1 - eta*lam/n)^(ceil(n/m)(1 + r)), the first-order prediction."""
    if not len(share):
        return math.nan
    d = 1 - eta * lam / n
    per_step = d * d - 2 * d * (eta * lam / n) * np.asarray(share) + np.asarray(noise)
    return float(np.exp(math.ceil(n / m) / 2 * np.log(per_step).mean()))


def per_seed(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Rows epoch, columns seed."""
    return frame.pivot(index="epoch", columns="seed", values=column).sort_index()


def _at(frame: pd.DataFrame, column: str, epoch: int) -> float:
    """Seed mean of ``column`` at ``epoch`` (NaN without such rows)."""
    return float(per_seed(frame, column).loc[epoch].mean()) if len(frame) else math.nan


def _change(frame: pd.DataFrame, column: str, epoch: int) -> float:
    """Seed mean of column[epoch] / column[0] (NaN without rows)."""
    if not len(frame):
        return math.nan
    values = per_seed(frame, column)
    return float((values.loc[epoch] / values.loc[0]).mean())


def _decay_fit(config, n: int, exact: float, lam: float, eta: float, l2, signed, noise) -> dict:
    """The measured factor over the small-gradient epochs and the first- and second-order
    predictions."""
    shrink = (l2 / l2.shift(1)).iloc[1:]
    radial = signed.abs()
    small = (
        (radial < config.small_gradient_ratio) & (radial.shift(1) < config.small_gradient_ratio)
    ).iloc[1:]
    mask = small.to_numpy()
    small_shrinks = shrink.to_numpy()[mask]
    measured = float(np.exp(np.log(small_shrinks).mean())) if len(small_shrinks) else math.nan
    # d||W|| per step = -(eta*lam/n) ||W|| (1 + radial_ratio): the epoch's share, both ends averaged
    share = ((signed + signed.shift(1)) / 2).iloc[1:].to_numpy()[mask]
    share_mean = float(share.mean()) if len(share) else math.nan
    noise_small = ((noise + noise.shift(1)) / 2).iloc[1:].to_numpy()[mask]
    second = second_order_factor(eta, lam, n, config.batch_size, share, noise_small)
    gap = math.log(measured / exact)
    gap = gap if abs(gap) > 1e-12 else math.nan  # no gap to share out
    return {
        "measured_factor": measured,
        "relative_deviation": measured / exact - 1,
        "radial_ratio_small": share_mean,
        "theory_factor_with_gradient": exact ** (1 + share_mean),
        "first_order_share_of_gap": share_mean * math.log(exact) / gap,
        "second_order_factor": second,
        "second_order_share_of_gap": math.log(second / exact) / gap,
        "second_order_residual": measured / second - 1,
        "small_epochs": len(small_shrinks),
        "first_epoch_factor": float(shrink.iloc[0].mean()),
        # the last epoch's log-shrink as a share of the theory's (1: pure decay)
        "shrink_rate_end": float((np.log(shrink.iloc[-1]) / math.log(exact)).mean()),
    }


def stage_cost_rows(frame: pd.DataFrame, config) -> pd.DataFrame:
    """The rows of the models trained with the stage's cost (``dynamics.model.cost``): the
    ``other_cost`` models are only the mechanism's comparison (``cost_test``)."""
    return frame[frame["cost"] == config.model.cost]


def theory_table(frame: pd.DataFrame, config, n: int) -> pd.DataFrame:
    """``theory_rows`` as a table (results/dynamics_theory.csv)."""
    return pd.DataFrame([row.to_row() for row in theory_rows(frame, config, n)])


def theory_rows(frame: pd.DataFrame, config, n: int) -> list[TheoryRow]:
    """One row per (eta, init, lambda > 0, layer); seed means unless stated. The lambda = 0
    control of a row is the same (eta, init) without decay. Over the question's epochs
    1..q (q = min(question_epochs, the row's run)): the ratios' medians, the epochs ending
    with the data term below the decay term and with the data term pushing outward harder
    than decay pulls in (radial_ratio < -1), the norm's change with and without decay, the
    variance and accuracies at q (epochs with only the weight record, ``training.fully_recorded``,
    have no gradient terms and are left out of the medians and counts). Over the whole run: the
    decay fit (``_decay_fit``), the tail-off, the level-off, the RMS at the ends, the saturation
    and output error at the ends.
    A row whose seeds ran different lengths (a model shared with a longer setting) keeps the
    epochs that every seed ran."""
    sizes = config.model.sizes
    n_weights = sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))
    frame = stage_cost_rows(frame, config)
    rows = []
    for (eta, init, lam), part in frame[frame["lambda"] > 0].groupby(
        ["eta", "init", "lambda"], sort=False
    ):
        part = part[
            part["epoch"] <= part.groupby("seed")["epoch"].max().min()
        ]  # the epochs every seed ran
        control = frame[(frame["eta"] == eta) & (frame["init"] == init) & (frame["lambda"] == 0)]
        exact, approx = theory_factors(eta, lam, n, config.batch_size)
        last = int(part["epoch"].max())
        q = min(config.question_epochs, last)
        q_control = min(q, int(control["epoch"].max())) if len(control) else q
        for layer in range(1, len(sizes)):
            name = f"layer{layer}"
            l2, ratio, rms, signed = (
                per_seed(part, f"{name}_{key}") for key in ("l2", "ratio", "rms", "radial_ratio")
            )
            noise = (per_seed(part, f"{name}_batch_term_rms") / l2) ** 2
            window = slice(1, q)
            rms_start = float(rms.iloc[0].mean())
            row = {
                "eta": eta,
                "init": init,
                "lambda": lam,
                "layer": layer,
                "n_in": sizes[layer - 1],
                "epochs": last,
                "seeds": l2.shape[1],
                "question_epoch": q,
                "theory_factor": exact,
                "theory_factor_exp": approx,
                **_decay_fit(config, n, exact, lam, eta, l2, signed, noise),
                "ratio_start": float(ratio.iloc[0].mean()),
                "batch_ratio_start": float(per_seed(part, f"{name}_batch_ratio").iloc[0].mean()),
                "ratio_median": float(np.nanmedian(ratio.loc[window].to_numpy())),
                "radial_ratio_median": float(np.nanmedian(signed.loc[window].to_numpy())),
                "decay_dominated_epochs": float((ratio.loc[window] < 1).sum().mean()),
                "outward_epochs": float((signed.loc[window] < -1).sum().mean()),
                **tail_off(l2, rms, exact, config.tail_off_fraction, config.trend_epochs),
                **level_off(
                    l2,
                    rms,
                    signed,
                    noise,
                    exact,
                    eta,
                    lam,
                    n,
                    config.level_off_rate,
                    config.trend_epochs,
                ),
                "rms_start": rms_start,
                "rms_end": float(rms.iloc[-1].mean()),
                "var_question": _at(part, f"{name}_var", q),
                "reported_variance": (
                    config.reported_variances[layer - 1]
                    if layer - 1 < len(config.reported_variances)
                    else math.nan
                ),
                "inv_sqrt_n_weights": 1 / math.sqrt(n_weights),
                "inv_n_weights": 1 / n_weights,
                "inv_sqrt_n_in": 1 / math.sqrt(sizes[layer - 1]),
                "epochs_to_inv_sqrt_n_weights": (
                    math.log(rms_start * math.sqrt(n_weights)) / -math.log(exact)
                    if rms_start * math.sqrt(n_weights) > 1
                    else 0.0
                ),
                "l2_change_question": _change(part, f"{name}_l2", q),
                "l2_change_question_control": _change(control, f"{name}_l2", q_control),
                "validation_accuracy_question": _at(part, "validation_accuracy", q),
                "validation_accuracy_question_control": _at(
                    control, "validation_accuracy", q_control
                ),
                "radial_ratio_quadratic_median": float(
                    np.nanmedian(
                        per_seed(part, f"{name}_radial_ratio_quadratic").loc[window].to_numpy()
                    )
                ),
                **{
                    f"saturation_{key}_{end}": float(
                        per_seed(part, f"{name}_saturation_{key}").iloc[at].mean()
                    )
                    for key in ("mean_dsigma", "share_z4")
                    for end, at in (("start", 0), ("end", -1))
                },
                "output_error_start": float(per_seed(part, "output_error").iloc[0].mean()),
                "output_error_end": float(per_seed(part, "output_error").iloc[-1].mean()),
            }
            rows.append(TheoryRow.from_row(row))
    return rows
