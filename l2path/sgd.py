"""Mini-batch SGD with Nielsen's L2 update, for a stack of K independent models at once.

For model k with learning rate eta_k, penalty lambda_k, training-set size n and a
mini-batch B of size m, one step is (network2.py, biases not decayed):

    W -> (1 - eta_k * lambda_k / n) * W - (eta_k / m) * sum_{x in B} dC_x/dW
    b -> b - (eta_k / m) * sum_{x in B} dC_x/db

i.e. gradient descent on J_lambda(w) = (1/n) sum_x C_x + (lambda / 2n) sum_weights w^2.
Gradients come from explicit backpropagation with batched matrix products (no autograd):
every model has its own mini-batch order, so its inputs are gathered as (K, m, n_in).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np
import torch

from .costs import Cost
from .init import epoch_order
from .network import StackedMLP


@dataclass(frozen=True)
class SGDSettings:
    """Hyper-parameters of a stack: one entry per model for eta, lambda and seed."""

    eta: list[float]
    lam: list[float]
    seeds: list[int]
    batch_size: int
    epochs: int

    def __post_init__(self) -> None:
        if not len(self.eta) == len(self.lam) == len(self.seeds):
            raise ValueError("eta, lam and seeds need one entry per model")


class EpochCallback(Protocol):
    def __call__(self, epoch: int, net: StackedMLP) -> bool | list[bool] | None:
        """Called after each epoch (1-based). Return True to stop every model, or one flag
        per model to stop (freeze) just those; None or False keeps training."""


@dataclass
class TrainOutcome:
    net: StackedMLP
    epochs_run: int  # epochs of the longest-running model
    diverged: list[bool] = field(default_factory=list)
    model_epochs: list[int] = field(default_factory=list)  # epochs each model trained before it stopped


def _stop_flags(answer, k: int) -> torch.Tensor:
    """A callback's answer as (K,) bool."""
    if answer is None or isinstance(answer, bool):
        return torch.full((k,), bool(answer))
    flags = torch.as_tensor(answer, dtype=torch.bool).reshape(-1)
    if flags.numel() != k:
        raise ValueError(f"callback returned {flags.numel()} stop flags for {k} models")
    return flags


def _column(values: list[float], dtype: torch.dtype) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).to(dtype).view(-1, 1, 1)


def sgd_step(net: StackedMLP, xb: torch.Tensor, yb: torch.Tensor, cost: Cost,
             decay: torch.Tensor, rate: torch.Tensor) -> None:
    """One in-place update of every model on its mini-batch.

    xb: (K, m, n_in), yb: (K, m, n_out); decay = 1 - eta*lambda/n and rate = eta/m, both (K, 1, 1).
    """
    activations, _ = net.forward(xb)
    delta = cost.delta(activations[-1], yb) * rate  # (K, m, n_out), already scaled by eta/m
    for layer in reversed(range(len(net.weights))):
        w, b, a_in = net.weights[layer], net.biases[layer], activations[layer]
        next_delta = None
        if layer > 0:  # back-propagate with the weights as they were before this step
            next_delta = torch.bmm(delta, w) * a_in * (1 - a_in)
        b.sub_(delta.sum(1))
        w.mul_(decay).baddbmm_(delta.transpose(1, 2), a_in, alpha=-1.0)
        delta = next_delta


def epoch_indices(seeds: list[int], epoch: int, n: int) -> torch.Tensor:
    """(K, n) sample order of every model in ``epoch`` (0-based)."""
    return torch.as_tensor(np.stack([epoch_order(seed, epoch, n) for seed in seeds]))


def train_sgd(net: StackedMLP, x: torch.Tensor, y: torch.Tensor, cost: Cost, settings: SGDSettings,
              callbacks: list[EpochCallback] | tuple = (), start_epoch: int = 0) -> TrainOutcome:
    """Train the stack in place for ``settings.epochs`` epochs (fewer if a callback stops it).

    x: (n, n_in) and y: (n, n_out) are shared by all models; each model shuffles them with
    its own seed (``init.epoch_order``). The last mini-batch of an epoch may be smaller;
    its rate is eta/len(batch) as in network2.

    A model stops (is frozen: decay 1, rate 0, so its weights no longer change) when a
    callback flags it or its weights become non-finite (reported in ``diverged``); training
    ends when every model has stopped. A frozen model's result therefore equals training
    it alone with the same stopping decisions.
    """
    n, k = len(x), net.n_models
    if len(settings.eta) != k:
        raise ValueError(f"settings describe {len(settings.eta)} models, the stack has {k}")
    decay = 1 - _column(settings.eta, torch.float64) * _column(settings.lam, torch.float64) / n
    decay = decay.to(net.dtype)
    eta = _column(settings.eta, net.dtype)
    m = settings.batch_size
    epochs_run = start_epoch
    active = torch.ones(k, dtype=torch.bool)
    model_epochs = [start_epoch] * k
    for epoch in range(start_epoch, settings.epochs):
        order = epoch_indices(settings.seeds, epoch, n)
        for start in range(0, n, m):
            idx = order[:, start:start + m]
            flat = idx.reshape(-1)
            xb = x.index_select(0, flat).view(k, -1, x.shape[1])
            yb = y.index_select(0, flat).view(k, -1, y.shape[1])
            sgd_step(net, xb, yb, cost, decay, eta / idx.shape[1])
        epochs_run = epoch + 1
        for j in torch.nonzero(active).flatten().tolist():
            model_epochs[j] = epochs_run
        stop = ~net.is_finite()
        for callback in callbacks:
            stop |= _stop_flags(callback(epochs_run, net), k)
        active &= ~stop
        if not active.any():
            break
        frozen = (~active).view(-1, 1, 1)
        decay = torch.where(frozen, torch.ones_like(decay), decay)
        eta = torch.where(frozen, torch.zeros_like(eta), eta)
    return TrainOutcome(net, epochs_run, diverged=(~net.is_finite()).tolist(), model_epochs=model_epochs)
