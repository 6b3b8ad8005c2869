"""Per-model evaluation of a stack: objective, losses, accuracy and weight statistics.

With n training samples, data loss L = (1/n) sum_x C_x (the training cost), penalty
R = (1/2n) sum_weights w^2 (biases excluded) and objective J_lambda = L + lambda * R,
i.e. J_lambda(w) = (1/n) sum_x C_x(w) + (lambda / 2n) sum_weights w^2.
MSE is always (1/count) sum_x 0.5 * ||a(x) - y(x)||^2, whatever the training cost.
"""

from __future__ import annotations

import torch

from ..model.costs import Cost
from ..data.dataset import Dataset, Split
from ..model.network import StackedMLP
from .sgd import backprop, weight_gradient

LAYER_STATS = ("sum", "l1", "l2", "var", "rms")


@torch.no_grad()
def split_losses(
    net: StackedMLP, split: Split, cost: Cost, chunk: int = 10_000
) -> dict[str, torch.Tensor]:
    """Mean cost, mean MSE and accuracy of every model on a split, each (K,) float64.

    The split is cast chunk by chunk to the network's dtype (a float64 net is evaluated in float64).
    """
    totals = LossSums()
    for start in range(0, len(split), chunk):
        x, y = (
            split.x[start : start + chunk].to(net.dtype),
            split.y[start : start + chunk].to(net.dtype),
        )
        activations, z = net.forward(x)
        totals.add(cost, z, activations[-1], y, split.labels[start : start + chunk])
    return totals.means(len(split))


class LossSums:
    """Running float64 sums of the cost, the MSE and the correct answers over chunks, (K,) each."""

    def __init__(self) -> None:
        self.loss = self.mse = self.correct = 0.0

    def add(
        self, cost: Cost, z: torch.Tensor, a: torch.Tensor, y: torch.Tensor, labels: torch.Tensor
    ) -> None:
        """z, a: the output layer's pre-activations and activations, (K, c, n_out); y (c, n_out)."""
        self.loss = self.loss + cost.per_sample(z, a, y).to(torch.float64).sum(1)
        self.mse = self.mse + 0.5 * (a - y).to(torch.float64).square().sum((1, 2))
        self.correct = self.correct + (a.argmax(-1) == labels).to(torch.float64).sum(1)

    def means(self, count: int) -> dict[str, torch.Tensor]:
        return {
            "loss": self.loss / count,
            "mse": self.mse / count,
            "accuracy": self.correct / count,
        }


@torch.no_grad()
def weight_penalty(net: StackedMLP) -> torch.Tensor:
    """(K,) sum of squared weights (biases excluded), float64."""
    return sum(w.to(torch.float64).square().sum((1, 2)) for w in net.weights)


@torch.no_grad()
def data_gradients(
    net: StackedMLP, x: torch.Tensor, y: torch.Tensor, cost: Cost, chunk: int = 10_000
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """dL/dW, (K, n_out, n_in), and dL/db, (K, n_out), per layer for every model of the stack,
    L = (1/n) sum_x C_x over all of x (n, n_in) (shared by the models), in the net's dtype."""
    n = len(x)
    weights, biases = (
        [torch.zeros_like(w) for w in net.weights],
        [torch.zeros_like(b) for b in net.biases],
    )
    scale = torch.tensor(1.0 / n, dtype=net.dtype)
    for start in range(0, n, chunk):
        xb, yb = x[start : start + chunk].to(net.dtype), y[start : start + chunk].to(net.dtype)
        for layer, delta, a_in in backprop(net, xb, yb, cost, scale):
            weights[layer] += weight_gradient(delta, a_in)
            biases[layer] += delta.sum(1)
    return weights, biases


@torch.no_grad()
def gradient_norms(
    net: StackedMLP, x: torch.Tensor, y: torch.Tensor, cost: Cost, lams: list[float]
) -> torch.Tensor:
    """(K,) ||grad J_lambda_k|| of each model, J = L + (lambda_k / 2n) sum_weights w^2, in the
    net's dtype (pass a float64 stack and data for a float64 norm). One pass for the whole
    stack: its first layer is one wide product, several times faster than model by model."""
    weights, biases = data_gradients(net, x, y, cost)
    decay = torch.tensor(lams, dtype=net.dtype).view(-1, 1, 1) / len(x)
    squares = sum((g + decay * w).square().sum((1, 2)) for g, w in zip(weights, net.weights))
    squares = squares + sum(g.square().sum(1) for g in biases)
    return squares.to(torch.float64).sqrt()


@torch.no_grad()
def layer_statistics(net: StackedMLP) -> dict[str, torch.Tensor]:
    """Per layer l (1-based) the weights' sum, L1 norm, L2 norm, variance and RMS, each (K,).

    Variance is the population variance over the layer's weights; RMS = sqrt(mean w^2).
    """
    stats = {}
    for layer, w in enumerate(net.weights, start=1):
        flat = w.to(torch.float64).reshape(net.n_models, -1)
        stats[f"layer{layer}_weight_sum"] = flat.sum(1)
        stats[f"layer{layer}_weight_l1"] = flat.abs().sum(1)
        stats[f"layer{layer}_weight_l2"] = flat.square().sum(1).sqrt()
        stats[f"layer{layer}_weight_var"] = flat.var(1, unbiased=False)
        stats[f"layer{layer}_weight_rms"] = flat.square().mean(1).sqrt()
    return stats


def evaluate(
    net: StackedMLP,
    data: Dataset,
    cost: Cost,
    lam: list[float],
    train: dict[str, torch.Tensor] | None = None,
) -> list[dict[str, float]]:
    """One record per model: objective, data_loss, train/validation/test MSE and accuracy,
    weight_l2 (whole network) and the per-layer statistics. ``train``: the training split's
    ``split_losses`` where the caller has them already."""
    n = len(data.train)
    train = split_losses(net, data.train, cost) if train is None else train
    validation = split_losses(net, data.validation, cost)
    test = split_losses(net, data.test, cost)
    squares = weight_penalty(net)
    lam_t = torch.tensor(lam, dtype=torch.float64)
    columns = {
        "objective": train["loss"] + lam_t * squares / (2 * n),
        "data_loss": train["loss"],
        "train_mse": train["mse"],
        "train_accuracy": train["accuracy"],
        "validation_mse": validation["mse"],
        "validation_accuracy": validation["accuracy"],
        "test_mse": test["mse"],
        "test_accuracy": test["accuracy"],
        "weight_l2": squares.sqrt(),
        **layer_statistics(net),
    }
    return [{key: float(values[k]) for key, values in columns.items()} for k in range(net.n_models)]
