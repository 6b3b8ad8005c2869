"""What the dynamics stage measures of every model after each epoch, in one pass over the data.

Per layer and step, the *decay term* is (eta*lambda/n) ||W||; the *data term* its companion
eta ||g||, g = dL/dW the full-batch gradient (L = (1/n) sum_x C_x; the drift that competes
with decay); the *mini-batch term* eta sqrt(E||g_B||^2), g_B a mini-batch's mean gradient
(``gradient_moments``; it also carries the mini-batch noise). ``radial_ratio`` =
eta <g, W/||W||> / decay term is the signed share of the data term along W, the only part
that changes ||W|| to first order (> 0 shrinks it, as the decay does; < 0 grows it).
"""

from __future__ import annotations

import math

import torch

from ..data.dataset import Dataset
from ..model.costs import Cost, get_cost
from ..model.network import StackedMLP
from ..train.metrics import LossSums, evaluate, layer_statistics, split_losses, weight_penalty
from ..train.sgd import backward, weight_gradient

SATURATED = (
    math.exp(-4) / (1 + math.exp(-4)) ** 2
)  # sigma'(4): |z| > 4 exactly where sigma'(z) < this
CHUNK = 10_000  # images per product: bounded memory, wide products


class TrainingPass:
    """Float64 sums over the training images of one stack, (K,) per layer unless stated."""

    def __init__(self, net: StackedMLP) -> None:
        zeros = lambda: [torch.zeros(net.n_models, dtype=torch.float64) for _ in net.weights]
        self.losses = LossSums()
        self.gradients = [
            torch.zeros_like(w, dtype=torch.float64) for w in net.weights
        ]  # (K, n_out, n_in)
        self.squares = zeros()  # sum_x ||dC_x/dW||^2
        self.quadratic = [torch.zeros_like(w, dtype=torch.float64) for w in net.weights]
        self.slopes, self.saturated = zeros(), zeros()
        self.error = torch.zeros(net.n_models, dtype=torch.float64)


@torch.no_grad()
def training_pass(
    net: StackedMLP, data: Dataset, cost: Cost, quadratic_images: int, chunk: int = CHUNK
) -> TrainingPass:
    """One forward pass over the training split and two backward passes: the training cost's
    (its full gradient and per-sample squared gradient norms, over every image) and the
    quadratic cost's (its gradient, over the first ``quadratic_images``), with the saturation
    of each layer's units and the output error ||a_L - y||."""
    sums = TrainingPass(net)
    quadratic = get_cost("quadratic")
    x_all, y_all = data.train.x, data.train.y
    for start in range(0, len(x_all), chunk):
        x, y = (
            x_all[start : start + chunk].to(net.dtype),
            y_all[start : start + chunk].to(net.dtype),
        )
        activations, z = net.forward(x)
        output = activations[-1]
        sums.losses.add(cost, z, output, y, data.train.labels[start : start + chunk])
        sums.error += (output.to(torch.float64) - y.to(torch.float64)).norm(dim=-1).sum(-1)
        for layer, a in enumerate(activations[1:]):
            slope = a * (1 - a)
            sums.slopes[layer] += slope.to(torch.float64).mean(-1).sum(-1)
            sums.saturated[layer] += (slope < SATURATED).to(torch.float64).mean(-1).sum(-1)
        for layer, delta, a_in in backward(net, activations, cost.delta(output, y)):
            sums.gradients[layer] += weight_gradient(delta, a_in).to(torch.float64)
            # dC_x/dW = delta_x a_x^T has rank one: ||dC_x/dW||^2 = ||delta_x||^2 ||a_x||^2
            sums.squares[layer] += (
                delta.to(torch.float64).square().sum(-1) * a_in.to(torch.float64).square().sum(-1)
            ).sum(-1)
        keep = min(len(x), quadratic_images - start)
        if keep > 0:
            head = [a[..., :keep, :] for a in activations]
            for layer, delta, a_in in backward(net, head, quadratic.delta(head[-1], y[:keep])):
                sums.quadratic[layer] += weight_gradient(delta, a_in).to(torch.float64)
    return sums


def expected_batch_square(
    gradient: torch.Tensor, squares: torch.Tensor, n: int, m: int
) -> torch.Tensor:
    """E||g_B||^2, (K,), for batches of m of the n samples drawn without replacement (each of an
    epoch's shuffled batches is one), from g = dL/dW (K, ...) and S = (1/n) sum_x ||dC_x/dW||^2:

        E||g_B||^2 = ||g||^2 + (n - m) / (m (n - 1)) * (S - ||g||^2),

    the variance of a mean sampled without replacement, exact."""
    mean_square = gradient.flatten(1).square().sum(1)
    return mean_square + (n - m) / (m * (n - 1)) * (squares - mean_square)


def gradient_moments(
    net: StackedMLP, data: Dataset, cost: Cost, m: int, chunk: int = CHUNK
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per layer, the full-batch gradient g = dL/dW, (K, n_out, n_in) float64, and E||g_B||^2,
    (K,)."""
    sums = training_pass(net, data, cost, quadratic_images=0, chunk=chunk)
    n = len(data.train)
    gradients = [g / n for g in sums.gradients]
    return gradients, [
        expected_batch_square(g, s / n, n, m) for g, s in zip(gradients, sums.squares)
    ]


def epoch_records(
    net: StackedMLP,
    data: Dataset,
    cost: Cost,
    eta: list[float],
    lam: list[float],
    batch_size: int,
    quadratic_images: int,
    chunk: int = CHUNK,
) -> list[dict[str, float]]:
    """One record per model of the stack: ``train.metrics.evaluate``'s keys and, per layer
    (``layer<l>_``): max |w|, the data, mini-batch and decay terms of one step and their ratios
    to the decay term, the radial ratio under the training cost and under the quadratic cost at
    the same weights (whose output delta (a - y) sigma'(z) carries the sigma' factor that
    cross-entropy's lacks; over the first ``quadratic_images``), the mean sigma'(z) of the
    layer's units and their share with |z| > 4; and the output error ``output_error``."""
    n = len(data.train)
    sums = training_pass(net, data, cost, quadratic_images, chunk)
    records = evaluate(net, data, cost, lam, train=sums.losses.means(n))
    eta_t, lam_t = torch.tensor(eta, dtype=torch.float64), torch.tensor(lam, dtype=torch.float64)
    for layer, w in enumerate(net.weights):
        flat = w.to(torch.float64).flatten(1)
        gradient = sums.gradients[layer] / n
        decay = eta_t * lam_t / n * flat.norm(dim=1)
        data_term = eta_t * gradient.flatten(1).norm(dim=1)
        batch_term = (
            eta_t * expected_batch_square(gradient, sums.squares[layer] / n, n, batch_size).sqrt()
        )
        columns = {
            "max_abs": flat.abs().max(1).values,
            "data_term": data_term,
            "batch_term_rms": batch_term,
            "decay_term": decay,
            "ratio": data_term / decay,
            "batch_ratio": batch_term / decay,
            "radial_ratio": radial(gradient, flat, eta_t) / decay,
            "radial_ratio_quadratic": radial(
                sums.quadratic[layer] / min(n, quadratic_images), flat, eta_t
            )
            / decay,
            "saturation_mean_dsigma": sums.slopes[layer] / n,
            "saturation_share_z4": sums.saturated[layer] / n,
        }
        for k, record in enumerate(records):
            for key, values in columns.items():
                value = float(values[k])
                record[f"layer{layer + 1}_{key}"] = value if math.isfinite(value) else math.nan
    for k, record in enumerate(records):
        record["output_error"] = float(sums.error[k] / n)
    return records


def radial(gradient: torch.Tensor, flat: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
    """eta <dL/dW, W/||W||>, (K,): the part of the data term along W, the only part that changes
    ||W|| to first order."""
    return eta * (gradient.flatten(1) * flat).sum(1) / flat.norm(dim=1)


def weight_records(net: StackedMLP, data: Dataset, cost: Cost) -> list[dict[str, float]]:
    """The cheap part of ``epoch_records``, one record per model: validation and test MSE and
    accuracy, weight_l2 and the per-layer weight statistics (no pass over the training split)."""
    columns = {
        f"{name}_{key}": values
        for name, split in (("validation", data.validation), ("test", data.test))
        for key, values in split_losses(net, split, cost).items()
        if key != "loss"
    }
    columns.update({"weight_l2": weight_penalty(net).sqrt(), **layer_statistics(net)})
    return [{key: float(values[k]) for key, values in columns.items()} for k in range(net.n_models)]
