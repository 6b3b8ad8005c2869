"""The norm's budget over one epoch, step by step: what closes the gap between a levelled
layer's measured share r and the second-order balance's.

One SGD step W' = s W - eta g_t (s = 1 - eta*lambda/n, g_t the mini-batch's mean gradient at
W_t, the batch the step uses) changes the squared norm exactly by

    X_t = ||W'||^2 / ||W_t||^2 - 1 = (s^2 - 1) - 2 s d r_t + noise_t,

d = eta*lambda/n the decay per step, r_t = eta <g_t, W_t> / (d ||W_t||^2) the fresh batch's
share along W (in decay units, as ``records.radial_ratio``) and noise_t = eta^2 ||g_t||^2 /
||W_t||^2. The log-norm moves by l_t = ln(1 + X_t) / 2 = X_t / 2 + J_t, J_t = l_t - X_t / 2
(about -X_t^2 / 4: the fluctuation of the step along W, which a balance of E||W'||^2 leaves
out). Averaged over an epoch (bars) this is the identity

    mean r_t = b(mean noise_t) + mean J_t / (s d) - mean l_t / (s d),
    b(noise) = ((s^2 - 1) / 2 + noise / 2) / (s d)  ~  -1 + noise / (2 d),

b the balance's r (``equilibrium``) and the last term the drift of a layer not quite
levelled. The stage reads r and the noise at an epoch's end, with the full-batch gradient
and E||g_B||^2 over batches drawn at that point (``snapshot``). So the gap it sees splits,
exactly, into

    r_snap - b_snap = (r_snap - r_along)       the epoch's end against points along it
                    + (r_along - r_fresh)      full batch against the fresh batch at the same
                                               weights: the weights were just fitted to the
                                               batches already seen
                    + jensen + drift           (the identity above)
                    + (b_fresh - b_snap)       the mini-batch term along the epoch against
                                               at its end,

r_along the full-batch share at ``along_points`` points of the epoch and r_fresh = mean r_t.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..data.dataset import Dataset
from ..model.costs import Cost
from ..model.init import epoch_order
from ..model.network import StackedMLP
from ..train.sgd import backprop, weight_gradient
from .plan import Model
from .records import gradient_moments


@dataclass
class StepTerms:
    """Per layer, (steps, K) float64 arrays over the steps of an epoch, before each step."""

    squares: list[np.ndarray]  # ||W_t||^2
    along: list[np.ndarray]  # <g_t, W_t>
    gradient_squares: list[np.ndarray]  # ||g_t||^2
    end_squares: list[np.ndarray]  # (K,) ||W||^2 after the last step


def balance(noise: np.ndarray | float, s: np.ndarray | float, d: np.ndarray | float):
    """The r at which E||W'||^2 = ||W||^2: ((s^2 - 1) / 2 + noise / 2) / (s d)."""
    return ((s * s - 1) / 2 + np.asarray(noise) / 2) / (s * d)


def epoch_budget(terms: StepTerms, layer: int, eta: np.ndarray, lam: np.ndarray, n: int) -> dict:
    """The identity's terms for one layer, each (K,): ``fresh`` (mean r_t), ``fresh_balance``
    (b of the mean noise), ``jensen``, ``drift`` and ``log_change`` (sum of l_t, the epoch's
    change of ln||W|| by the steps' terms) and ``measured_log_change`` (from the norms)."""
    d = eta * lam / n
    s = 1 - d
    squares = terms.squares[layer]
    r = eta * terms.along[layer] / (d * squares)
    noise = eta**2 * terms.gradient_squares[layer] / squares
    x = (s * s - 1) - 2 * s * d * r + noise
    steps = np.log1p(x) / 2
    return {
        "fresh": r.mean(0),
        "fresh_balance": balance(noise.mean(0), s, d),
        "jensen": (steps - x / 2).mean(0) / (s * d),
        "drift": -steps.mean(0) / (s * d),
        "log_change": steps.sum(0),
        "measured_log_change": np.log(terms.end_squares[layer] / squares[0]) / 2,
    }


@torch.no_grad()
def step_through_epoch(
    net: StackedMLP,
    data: Dataset,
    cost: Cost,
    eta: list[float],
    lam: list[float],
    batch_size: int,
    order: np.ndarray,
    along_points: int,
) -> tuple[StepTerms, list[np.ndarray]]:
    """Train a copy of ``net`` (float64) one epoch in ``order`` with Nielsen's step, the
    models side by side on shared mini-batches, recording each step's terms; and the
    full-batch share r (per layer, (along_points, K)) at ``along_points`` evenly spaced points
    of the epoch, its start and its end included."""
    net = net.to(torch.float64).clone()  # ``to`` keeps a float64 stack's own tensors
    n = len(data.train)
    x, y = data.train.x.to(torch.float64), data.train.y.to(torch.float64)
    eta_t = torch.tensor(eta, dtype=torch.float64).view(-1, 1, 1)
    lam_t = torch.tensor(lam, dtype=torch.float64).view(-1, 1, 1)
    s = 1 - eta_t * lam_t / n
    starts = list(range(0, n, batch_size))
    sample_at = set(np.linspace(0, len(starts), along_points).round().astype(int).tolist())
    layers = range(len(net.weights))
    rows = {key: [[] for _ in layers] for key in ("squares", "along", "gradient_squares")}
    full_along: list[list[np.ndarray]] = [[] for _ in layers]
    index = torch.as_tensor(order)
    for step, start in enumerate(starts):
        if step in sample_at:
            for layer, share in enumerate(
                full_batch_share(net.to(torch.float32), data, cost, eta, lam)
            ):
                full_along[layer].append(share)
        batch = index[start : start + batch_size]
        scale = torch.full((net.n_models, 1, 1), 1.0 / len(batch), dtype=torch.float64)
        for layer, delta, a_in in backprop(net, x[batch], y[batch], cost, scale):
            w = net.weights[layer]
            g = weight_gradient(delta, a_in)
            rows["squares"][layer].append(w.square().sum((1, 2)).numpy())
            rows["along"][layer].append((g * w).sum((1, 2)).numpy())
            rows["gradient_squares"][layer].append(g.square().sum((1, 2)).numpy())
            w.mul_(s).sub_(eta_t * g)
            net.biases[layer].sub_(eta_t.view(-1, 1) * delta.sum(1))
    if len(starts) in sample_at:  # the epoch's end, after its last step
        for layer, share in enumerate(
            full_batch_share(net.to(torch.float32), data, cost, eta, lam)
        ):
            full_along[layer].append(share)
    terms = StepTerms(
        **{key: [np.stack(values) for values in per_layer] for key, per_layer in rows.items()},
        end_squares=[w.square().sum((1, 2)).numpy() for w in net.weights],
    )
    return terms, [np.stack(values) for values in full_along]


def full_batch_share(
    net: StackedMLP, data: Dataset, cost: Cost, eta: list[float], lam: list[float]
) -> list[np.ndarray]:
    """Per layer, (K,): r = eta <g, W> / ((eta lambda / n) ||W||^2) with the full-batch g
    (summed in float64 over chunks of products in the net's dtype: the steps run in float64,
    these passes at the training's float32, twice as fast)."""
    gradients, _ = gradient_moments(net, data, cost, 1)
    n = len(data.train)
    decay = np.asarray(eta) * np.asarray(lam) / n
    return [
        (np.asarray(eta) * (g.flatten(1) * w.flatten(1).double()).sum(1).numpy())
        / (decay * w.flatten(1).double().square().sum(1).numpy())
        for g, w in zip(gradients, net.weights)
    ]


def snapshot(
    net: StackedMLP, data: Dataset, cost: Cost, eta: list[float], lam: list[float], m: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per layer, (K,): the stage's reading at these weights, the full-batch share r and
    the balance b of noise = eta^2 E||g_B||^2 / ||W||^2 (batches of m drawn here), from
    float32 products summed in float64 as the stage's own records."""
    net = net.to(torch.float32)
    gradients, batch_squares = gradient_moments(net, data, cost, m)
    n = len(data.train)
    eta_a, lam_a = np.asarray(eta), np.asarray(lam)
    d = eta_a * lam_a / n
    shares, balances = [], []
    for g, batch_square, w in zip(gradients, batch_squares, net.weights):
        flat = w.flatten(1).double()
        squares = flat.square().sum(1).numpy()
        shares.append(eta_a * (g.flatten(1) * flat).sum(1).numpy() / (d * squares))
        balances.append(balance(eta_a**2 * batch_square.numpy() / squares, 1 - d, d))
    return shares, balances


def gap_terms(
    net: StackedMLP,
    data: Dataset,
    cost: Cost,
    eta: list[float],
    lam: list[float],
    batch_size: int,
    seed: int,
    epoch: int,
    along_points: int,
) -> list[list[dict]]:
    """For each layer and model of ``net`` (a stack sharing ``seed``), the gap's split (module
    docstring) over epoch ``epoch`` (0-based, the order ``init.epoch_order`` gives it):
    snapshot, along (and its sd over the points), fresh, balances, jensen, drift, and the
    identity's check
    ``identity_error`` = log_change - measured_log_change."""
    n = len(data.train)
    r_snap, b_snap = snapshot(net, data, cost, eta, lam, batch_size)
    terms, along = step_through_epoch(
        net, data, cost, eta, lam, batch_size, epoch_order(seed, epoch, n), along_points
    )
    eta_a, lam_a = np.asarray(eta), np.asarray(lam)
    result = []
    for layer in range(len(net.weights)):
        budget = epoch_budget(terms, layer, eta_a, lam_a, n)
        rows = []
        for k in range(net.n_models):
            row = {
                "snapshot": float(r_snap[layer][k]),
                "snapshot_balance": float(b_snap[layer][k]),
                "along": float(along[layer][:, k].mean()),
                "along_sd": float(along[layer][:, k].std(ddof=1)),
                **{key: float(values[k]) for key, values in budget.items()},
            }
            row["identity_error"] = row["log_change"] - row["measured_log_change"]
            row["gap"] = row["snapshot"] - row["snapshot_balance"]
            rows.append(row)
        result.append(rows)
    return result


def closes(row: dict) -> dict[str, float]:
    """The gap's named parts (they sum to ``row['gap']`` exactly)."""
    return {
        "epoch_end": row["snapshot"] - row["along"],
        "fitted_batches": row["along"] - row["fresh"],
        "fluctuation": row["jensen"],
        "drift": row["drift"],
        "batch_noise": row["fresh_balance"] - row["snapshot_balance"],
    }


def budget_table(
    final: dict[Model, StackedMLP],
    epochs: dict[Model, int],
    data: Dataset,
    cost: Cost,
    eta: float,
    batch_size: int,
    along_points: int,
) -> pd.DataFrame:
    """One row per (init, lambda, layer) of the decayed stage-cost models at ``eta``, seed
    means: each model's next epoch (the one after its run) stepped through from its final
    weights (``gap_terms``), the gap and its parts (``closes``), and the largest
    |identity_error| over seeds. ``epochs``: each model's run length (``plan.model_epochs``)."""
    chosen = [m for m in final if m.eta == eta and m.lam > 0 and not m.cost]
    groups: dict[tuple[int, int], list[Model]] = {}
    for model in sorted(chosen):
        groups.setdefault((model.seed, epochs[model]), []).append(model)
    rows = []
    for (seed, run), models in groups.items():
        net = StackedMLP.stack([final[model] for model in models])
        lams = [model.lam for model in models]
        split = gap_terms(
            net, data, cost, [eta] * len(models), lams, batch_size, seed, run, along_points
        )
        for layer, per_model in enumerate(split, start=1):
            for model, row in zip(models, per_model):
                rows.append(
                    {
                        "init": model.init,
                        "lambda": model.lam,
                        "layer": layer,
                        "seed": seed,
                        "epoch": run + 1,
                        **row,
                        **closes(row),
                    }
                )
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows)
    keys = ["init", "lambda", "layer"]
    means = frame.drop(columns=["seed"]).groupby(keys, sort=True).mean().reset_index()
    means["seeds"] = frame.groupby(keys, sort=True)["seed"].nunique().to_numpy()
    means["identity_error"] = (
        frame.groupby(keys, sort=True)["identity_error"].apply(lambda e: e.abs().max()).to_numpy()
    )
    means.insert(0, "eta", eta)
    return means
