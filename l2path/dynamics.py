"""Nielsen's weight-decay exercise: how each layer's weights evolve under the L2 update.

With n training samples, mini-batch size m, rate eta and penalty lambda, one step is
(network2.py; biases are not decayed)

    W -> (1 - eta*lambda/n) W - (eta/m) sum_{x in B} dC_x/dW.

Per layer and per step, the *decay term* is (eta*lambda/n) ||W||, the *data-gradient term*
its companion (eta/m) ||sum_{x in B} dC_x/dW||. We record the latter two ways: its
full-batch expectation eta ||dL/dW|| (L = (1/n) sum_x C_x; the drift that competes with
decay, column ``data_term``) and its mean size over sampled mini-batches (``batch_term``,
which also carries the mini-batch noise). Their ratios to the decay term are ``ratio`` and
``batch_ratio``. ``radial_ratio`` = eta <dL/dW, W/||W||> / decay term is the signed share of
the data term along W, the only part that changes ||W|| to first order (> 0 shrinks it,
as the decay does; < 0 grows it). While the gradient term is negligible along W an epoch of s = ceil(n/m) steps
multiplies every weight by

    (1 - eta*lambda/n)^s  ~  exp(-eta*lambda/m)   (s ~ n/m),

so each layer's L2 norm shrinks by that factor per epoch. ``theory_table`` compares the
measured per-epoch factor with it over the epochs where |radial_ratio| < small_gradient_ratio,
finds the epoch where the decay tails off (an epoch shrinks the layer by less than
tail_off_fraction of the theory, in log terms) and sets the RMS weight there against
1/sqrt(n_w), 1/n_w (n_w = all weights of the network) and 1/sqrt(n_in) (the ``default``
initialiser's scale for the layer).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import torch

from .model.costs import Cost, get_cost
from .data.dataset import Dataset
from .model.init import init_stack
from .train.metrics import data_gradients, evaluate
from .model.network import DTYPES, StackedMLP
from .train.sgd import SGDSettings, backprop, train_sgd, weight_gradient

GRADIENT_STREAM = 2  # the sampled mini-batches of batch_term: independent of init and shuffling


@dataclass(frozen=True)
class Model:
    init: str
    seed: int
    lam: float


def layer_names(sizes: list[int]) -> list[str]:
    return [f"layer{layer}" for layer in range(1, len(sizes))]


@torch.no_grad()
def mean_batch_gradient_norms(net: StackedMLP, x: torch.Tensor, y: torch.Tensor, cost: Cost,
                              batches: np.ndarray) -> list[torch.Tensor]:
    """Mean over mini-batches B (rows of ``batches``, (count, m) sample indices) of
    ||(1/m) sum_{x in B} dC_x/dW|| per layer, each (K,)."""
    sums = [torch.zeros(net.n_models, dtype=torch.float64) for _ in net.weights]
    m = batches.shape[1]
    for rows in batches:
        xb, yb = x[rows].to(net.dtype), y[rows].to(net.dtype)
        for layer, delta, a_in in backprop(net, xb, yb, cost, torch.tensor(1.0 / m, dtype=net.dtype)):
            sums[layer] += weight_gradient(delta, a_in).to(torch.float64).flatten(1).norm(dim=1)
    return [total / len(batches) for total in sums]


@torch.no_grad()
def gradient_moments(net: StackedMLP, x: torch.Tensor, y: torch.Tensor, cost: Cost, m: int,
                     chunk: int = 10_000) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per layer, the full-batch gradient g = dL/dW, (K, n_out, n_in), and E||g_B||^2, (K,),
    the expected squared norm of a mini-batch gradient g_B = (1/m) sum_{x in B} dC_x/dW over
    batches of m samples drawn without replacement (each of an epoch's shuffled batches is one):

        E||g_B||^2 = ||g||^2 + (n - m) / (m (n - 1)) * (S - ||g||^2),   S = (1/n) sum_x ||dC_x/dW||^2,

    the variance of a mean sampled without replacement, exact. dC_x/dW = delta_x a_x^T has
    rank one, so ||dC_x/dW|| = ||delta_x|| ||a_x||; every sum is taken in float64."""
    n = len(x)
    gradients = [torch.zeros_like(w) for w in net.weights]
    squares = [torch.zeros(net.n_models, dtype=torch.float64) for _ in net.weights]
    one = torch.tensor(1.0, dtype=net.dtype)
    for start in range(0, n, chunk):
        xb, yb = x[start:start + chunk].to(net.dtype), y[start:start + chunk].to(net.dtype)
        for layer, delta, a_in in backprop(net, xb, yb, cost, one):
            gradients[layer] += weight_gradient(delta, a_in) / n
            per_sample = delta.to(torch.float64).square().sum(-1) * a_in.to(torch.float64).square().sum(-1)
            squares[layer] += per_sample.sum(-1) / n
    expected = []
    for g, s in zip(gradients, squares):
        mean_square = g.to(torch.float64).flatten(1).square().sum(1)
        expected.append(mean_square + (n - m) / (m * (n - 1)) * (s - mean_square))
    return gradients, expected


SATURATED = math.exp(-4) / (1 + math.exp(-4)) ** 2  # sigma'(4): |z| > 4 exactly where sigma'(z) < this


@torch.no_grad()
def saturation(net: StackedMLP, x: torch.Tensor, y: torch.Tensor,
               chunk: int = 10_000) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
    """Per layer, its units' mean sigma'(z) = a (1 - a) and the share of |z| > 4 over samples and
    units, and the mean output error ||a_L - y|| over samples; each (K,), float64. A saturated
    unit passes back little gradient: layer l's deltas carry sigma'(z_l) (the output layer's
    do not under the cross-entropy cost, whose delta is a_L - y)."""
    n = len(x)
    slopes = [torch.zeros(net.n_models, dtype=torch.float64) for _ in net.weights]
    saturated = [torch.zeros(net.n_models, dtype=torch.float64) for _ in net.weights]
    error = torch.zeros(net.n_models, dtype=torch.float64)
    for start in range(0, n, chunk):
        xb, yb = x[start:start + chunk].to(net.dtype), y[start:start + chunk].to(net.dtype)
        activations, _ = net.forward(xb)
        for layer, a in enumerate(activations[1:]):
            slope = (a * (1 - a)).to(torch.float64)
            slopes[layer] += slope.mean(-1).sum(-1) / n
            saturated[layer] += (slope < SATURATED).to(torch.float64).mean(-1).sum(-1) / n
        error += (activations[-1].to(torch.float64) - yb.to(torch.float64)).norm(dim=-1).sum(-1) / n
    return list(zip(slopes, saturated)), error


def sampled_batches(seed: int, epoch: int, n: int, m: int, count: int) -> np.ndarray:
    """(count, m) sample indices, drawn without replacement within each batch."""
    rng = np.random.default_rng([seed, GRADIENT_STREAM, epoch])
    return np.stack([rng.choice(n, size=m, replace=False) for _ in range(count)])


def epoch_records(net: StackedMLP, data: Dataset, cost: Cost, models: list[Model], eta: float,
                  batches: np.ndarray, mechanism_images: int) -> list[dict[str, float]]:
    """One record per model: ``train.metrics.evaluate``'s keys plus, per layer, max |w|, the
    data-gradient, mini-batch-gradient (mean size over ``batches``, and the exact RMS over all
    batches, ``gradient_moments``) and decay terms of one step and their ratios, the radial
    ratio under the quadratic cost too, and the saturation of the layer's units; and the
    output error (``saturation``). The last three are means over the first
    ``mechanism_images`` training images (each a full pass costs as much as the records'
    other passes together)."""
    n = len(data.train)
    lam = torch.tensor([model.lam for model in models], dtype=torch.float64)
    records = evaluate(net, data, cost, lam.tolist())
    full, squares = gradient_moments(net, data.train.x, data.train.y, cost, batches.shape[1])
    batch = mean_batch_gradient_norms(net, data.train.x, data.train.y, cost, batches)
    x, y = data.train.x[:mechanism_images], data.train.y[:mechanism_images]
    quadratic, _ = data_gradients(net, x, y, get_cost("quadratic"))
    saturations, output_error = saturation(net, x, y)
    for layer, w in enumerate(net.weights):
        name = f"layer{layer + 1}"
        flat = w.to(torch.float64).flatten(1)
        decay = eta * lam / n * flat.norm(dim=1)
        data_term = eta * full[layer].to(torch.float64).flatten(1).norm(dim=1)
        batch_term = eta * batch[layer]
        columns = {"max_abs": flat.abs().max(1).values, "data_term": data_term, "batch_term": batch_term,
                   "batch_term_rms": eta * squares[layer].sqrt(), "decay_term": decay, "ratio": data_term / decay,
                   "batch_ratio": batch_term / decay, "radial_ratio": _radial(full[layer], flat, eta) / decay,
                   # the same with the quadratic cost's gradient at the same weights: its output delta
                   # (a - y) sigma'(z) carries the sigma' factor that cross-entropy's lacks
                   "radial_ratio_quadratic": _radial(quadratic[layer], flat, eta) / decay,
                   "saturation_mean_dsigma": saturations[layer][0], "saturation_share_z4": saturations[layer][1]}
        for k, record in enumerate(records):
            for key, values in columns.items():
                value = float(values[k])
                record[f"{name}_{key}"] = value if math.isfinite(value) else math.nan
    for k, record in enumerate(records):
        record["output_error"] = float(output_error[k])
    return records


def _radial(gradient: torch.Tensor, flat: torch.Tensor, eta: float) -> torch.Tensor:
    """eta <dL/dW, W/||W||>, (K,): the part of the data term along W, the only part that changes
    ||W|| to first order."""
    return eta * (gradient.to(torch.float64).flatten(1) * flat).sum(1) / flat.norm(dim=1)


def _rename_weight_stats(record: dict[str, float]) -> dict[str, float]:
    """``layerL_weight_l2`` (metrics.layer_statistics) -> ``layerL_l2``: one naming per table."""
    return {key.replace("_weight_", "_"): value for key, value in record.items()}


@dataclass
class DynamicsResult:
    epochs: pd.DataFrame                # one row per (init, seed, lambda, epoch)
    final: dict[Model, StackedMLP]      # each model's weights after the last epoch (a stack of one)


def run_dynamics(config, data: Dataset, on_epoch: Callable[[Model, dict], None] | None = None) -> DynamicsResult:
    """Train every (init, lambda) pair for every seed with Nielsen's SGD and record each
    epoch, epoch 0 being the initial weights.

    ``config`` is the ``dynamics`` params section (``l2path.config.Dynamics``); the models
    of one seed form one stack sharing that seed's mini-batch order (the fast path of
    ``sgd.train_sgd``), each equal to training it alone.
    """
    cost = get_cost(config.model.cost)
    dtype = DTYPES[config.model.dtype]
    rows, final = [], {}
    n, m = len(data.train), config.batch_size
    for seed in config.seeds:
        models = [Model(init, seed, lam) for init in config.inits for lam in config.lambdas]
        net = init_stack(config.model.sizes, [model.init for model in models], [seed] * len(models), dtype)
        settings = SGDSettings(eta=[config.eta] * len(models), lam=[model.lam for model in models],
                               seeds=[seed] * len(models), batch_size=m, epochs=config.epochs)
        clock = {"last": time.perf_counter()}

        def record(epoch: int, trained: StackedMLP) -> bool:
            seconds = time.perf_counter() - clock["last"]
            batches = sampled_batches(seed, epoch, n, m, config.gradient_batches)
            for model, values in zip(models, epoch_records(trained, data, cost, models, config.eta, batches,
                                                                   config.mechanism_images)):
                row = {"init": model.init, "seed": seed, "lambda": model.lam, "epoch": epoch,
                       "seconds": seconds if epoch else 0.0, **_rename_weight_stats(values)}
                rows.append(row)
                if on_epoch is not None:
                    on_epoch(model, row)
            clock["last"] = time.perf_counter()
            return False

        record(0, net)
        trained = train_sgd(net, data.train.x, data.train.y, cost, settings, callbacks=[record]).net
        final.update({model: trained.model(k) for k, model in enumerate(models)})
    return DynamicsResult(pd.DataFrame(rows), final)


def theory_factors(eta: float, lam: float, n: int, m: int) -> tuple[float, float]:
    """Per-epoch shrink factor of pure decay: exact (1 - eta*lam/n)^ceil(n/m), and exp(-eta*lam/m)."""
    return (1 - eta * lam / n) ** math.ceil(n / m), math.exp(-eta * lam / m)


def second_order_factor(eta: float, lam: float, n: int, m: int, share: np.ndarray, noise: np.ndarray) -> float:
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


def _per_seed(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Rows epoch, columns seed."""
    return frame.pivot(index="epoch", columns="seed", values=column).sort_index()


def _tail_off_epoch(shrink: pd.Series, theory: float, fraction: float) -> float:
    """First epoch whose log shrink is less than ``fraction`` of the theory's (NaN if none)."""
    slow = shrink[np.log(shrink) > fraction * math.log(theory)]
    return float(slow.index[0]) if len(slow) else math.nan


def _nan_mean(values) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def theory_table(frame: pd.DataFrame, config, n: int) -> pd.DataFrame:
    """Measured decay against the theory, one row per (init, lambda > 0, layer); seed means
    unless stated. Columns: theory factors, the measured geometric-mean shrink over the
    small-gradient epochs (``small_epochs`` of them, pooled over seeds) and its relative
    deviation, and the first-order prediction with the data term's mean share along W over
    those epochs, r: d||W|| = -(eta*lam/n)||W||(1 + r) per step, so a factor theory^(1 + r);
    the ratios at the start and their medians, the number of epochs (after the first)
    ending with the data term below the decay term and with the data term pushing outward
    harder than decay pulls in (radial_ratio < -1), the tail-off epoch and RMS there, the reference scales, the
    L2 change over the run with and without decay."""
    sizes = config.model.sizes
    n_weights = sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))
    rows = []
    for init in config.inits:
        for lam in [lam for lam in config.lambdas if lam > 0]:
            part = frame[(frame["init"] == init) & (frame["lambda"] == lam)]
            control = frame[(frame["init"] == init) & (frame["lambda"] == 0)]
            exact, approx = theory_factors(config.eta, lam, n, config.batch_size)
            for layer, name in enumerate(layer_names(sizes)):
                l2, ratio, rms = (_per_seed(part, f"{name}_{key}") for key in ("l2", "ratio", "rms"))
                radial = _per_seed(part, f"{name}_radial_ratio").abs()
                shrink = (l2 / l2.shift(1)).iloc[1:]
                small = (radial < config.small_gradient_ratio) & (radial.shift(1) < config.small_gradient_ratio)
                small_mask = small.iloc[1:].to_numpy()
                small_shrinks = shrink.to_numpy()[small_mask]
                measured = float(np.exp(np.log(small_shrinks).mean())) if len(small_shrinks) else math.nan
                signed = _per_seed(part, f"{name}_radial_ratio")
                # d||W|| per step = -(eta*lam/n) ||W|| (1 + radial_ratio): the epoch's share, both ends averaged
                share = ((signed + signed.shift(1)) / 2).iloc[1:].to_numpy()[small_mask]
                share_mean = float(share.mean()) if len(share) else math.nan
                noise = (_per_seed(part, f"{name}_batch_term_rms") / l2) ** 2
                noise = ((noise + noise.shift(1)) / 2).iloc[1:].to_numpy()[small_mask]
                second = second_order_factor(config.eta, lam, n, config.batch_size, share, noise)
                gap = math.log(measured / exact)
                gap = gap if abs(gap) > 1e-12 else math.nan  # no gap to share out
                tail = [_tail_off_epoch(shrink[s], exact, config.tail_off_fraction) for s in shrink.columns]
                tail_rms = [float(rms[s].loc[t - 1]) for s, t in zip(shrink.columns, tail) if not math.isnan(t)]
                rms_start = float(rms.iloc[0].mean())
                row = {
                    "init": init, "lambda": lam, "layer": layer + 1, "n_in": sizes[layer],
                    "theory_factor": exact, "theory_factor_exp": approx,
                    "measured_factor": measured, "relative_deviation": measured / exact - 1,
                    "radial_ratio_small": share_mean, "theory_factor_with_gradient": exact ** (1 + share_mean),
                    "first_order_share_of_gap": share_mean * math.log(exact) / gap,
                    "second_order_factor": second, "second_order_share_of_gap": math.log(second / exact) / gap,
                    "second_order_residual": measured / second - 1,
                    "small_epochs": len(small_shrinks), "first_epoch_factor": float(shrink.iloc[0].mean()),
                    "ratio_start": float(ratio.iloc[0].mean()),
                    "batch_ratio_start": float(_per_seed(part, f"{name}_batch_ratio").iloc[0].mean()),
                    "ratio_median": float(np.median(ratio.iloc[1:].to_numpy())),
                    "radial_ratio_median": float(np.median(_per_seed(part, f"{name}_radial_ratio").iloc[1:].to_numpy())),
                    "decay_dominated_epochs": float((ratio.iloc[1:] < 1).sum().mean()),
                    "outward_epochs": float((signed.iloc[1:] < -1).sum().mean()),
                    "tail_off_epoch": _nan_mean(tail), "tail_off_rms": _nan_mean(tail_rms),
                    "rms_start": rms_start, "rms_end": float(rms.iloc[-1].mean()),
                    "var_end": float(_per_seed(part, f"{name}_var").iloc[-1].mean()),
                    "reported_variance": (config.reported_variances[layer] if layer < len(config.reported_variances)
                                          else math.nan),
                    # the last epoch's log-shrink as a share of the theory's (1: pure decay)
                    "shrink_rate_end": float((np.log(shrink.iloc[-1]) / math.log(exact)).mean()),
                    "inv_sqrt_n_weights": 1 / math.sqrt(n_weights), "inv_n_weights": 1 / n_weights,
                    "inv_sqrt_n_in": 1 / math.sqrt(sizes[layer]),
                    "epochs_to_inv_sqrt_n_weights": (math.log(rms_start * math.sqrt(n_weights)) / -math.log(exact)
                                                     if rms_start * math.sqrt(n_weights) > 1 else 0.0),
                    "l2_change": float((l2.iloc[-1] / l2.iloc[0]).mean()),
                    "l2_change_control": (float((_per_seed(control, f"{name}_l2").iloc[-1]
                                                 / _per_seed(control, f"{name}_l2").iloc[0]).mean())
                                          if len(control) else math.nan),
                    "validation_accuracy_end": float(_per_seed(part, "validation_accuracy").iloc[-1].mean()),
                    "validation_accuracy_end_control": (float(_per_seed(control, "validation_accuracy").iloc[-1].mean())
                                                        if len(control) else math.nan),
                    "radial_ratio_quadratic_median": float(np.median(
                        _per_seed(part, f"{name}_radial_ratio_quadratic").iloc[1:].to_numpy())),
                    **{f"saturation_{key}_{end}": float(_per_seed(part, f"{name}_saturation_{key}").iloc[at].mean())
                       for key in ("mean_dsigma", "share_z4") for end, at in (("start", 0), ("end", -1))},
                    "output_error_start": float(_per_seed(part, "output_error").iloc[0].mean()),
                    "output_error_end": float(_per_seed(part, "output_error").iloc[-1].mean()),
                }
                rows.append(row)
    return pd.DataFrame(rows)


def plot_tables(frame: pd.DataFrame, theory: pd.DataFrame, config) -> dict[str, pd.DataFrame]:
    """Seed means per epoch for DVC plots, one table per quantity, columns
    ``<init>_lambda<lambda>_<layer>``: ``rms`` (with ``..._theory``: the start RMS times the
    theory factor per epoch), ``ratio`` (data-gradient / decay term) and ``accuracy``."""
    means = frame.drop(columns=["seed"]).groupby(["init", "lambda", "epoch"]).mean(numeric_only=True)
    tables = {"rms": {}, "ratio": {}, "accuracy": {}}
    for (init, lam), part in means.groupby(level=[0, 1]):
        part = part.droplevel([0, 1])
        tag = f"{init}_lambda{lam:g}"
        tables["accuracy"][tag] = part["validation_accuracy"]
        for name in layer_names(config.model.sizes):
            tables["rms"][f"{tag}_{name}"] = part[f"{name}_rms"]
            if lam > 0:
                tables["ratio"][f"{tag}_{name}"] = part[f"{name}_ratio"]
                factor = theory[(theory["init"] == init) & (theory["lambda"] == lam)
                                & (theory["layer"] == int(name[5:]))]["theory_factor"].iloc[0]
                tables["rms"][f"{tag}_{name}_theory"] = part[f"{name}_rms"].iloc[0] * factor ** part.index.to_series()
    return {key: pd.DataFrame(columns).rename_axis("epoch").reset_index() for key, columns in tables.items()}


def metrics(theory: pd.DataFrame) -> dict:
    """The theory table as nested DVC metrics: init -> lambda -> layer -> numbers (NaN -> None)."""
    result: dict = {}
    for row in theory.to_dict("records"):
        numbers = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()
                   if k not in ("init", "lambda", "layer")}
        result.setdefault(row["init"], {}).setdefault(f"lambda{row['lambda']:g}", {})[f"layer{row['layer']}"] = numbers
    return result
