"""Mini-batch SGD with Nielsen's L2 update, for a stack of K independent models at once.

For model k with learning rate eta_k, penalty lambda_k, training-set size n and a
mini-batch B of size m, one step is (network2.py, biases not decayed):

    W -> (1 - eta_k * lambda_k / n) * W - (eta_k / m) * sum_{x in B} dC_x/dW
    b -> b - (eta_k / m) * sum_{x in B} dC_x/db

i.e. gradient descent on J_lambda(w) = (1/n) sum_x C_x + (lambda / 2n) sum_weights w^2.
The decay is exact in every dtype: while training, W = s V with a float64 scale s per model
and layer (``scaled``), so 1 - eta*lambda/n is never rounded to the weights' dtype.
With ``optimizer="adam"`` the same objective is minimised by Adam instead (``adam_step``).
Gradients come from explicit backpropagation with batched matrix products (no autograd).
Models whose seeds give the same mini-batch order share each mini-batch (m, n_in), and the
first layer of the whole stack is then one matrix product, (m, n_in) @ (n_in, K * n_out);
otherwise each model's mini-batch is gathered as (K, m, n_in).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from ..model.costs import Cost
from ..model.init import epoch_order
from ..model.network import StackedMLP
from .delayed import StepFactors, shared_batch_steps
from .scaled import Scales, check_decay, safe_steps


OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class SGDSettings:
    """Hyper-parameters of a stack: one entry per model for eta, lambda and seed."""

    eta: list[float]
    lam: list[float]
    seeds: list[int]
    batch_size: int
    epochs: int
    optimizer: str = "sgd"  # "sgd" (Nielsen's update) or "adam" (eta is Adam's learning rate)

    def __post_init__(self) -> None:
        if not len(self.eta) == len(self.lam) == len(self.seeds):
            raise ValueError("eta, lam and seeds need one entry per model")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; allowed: {list(OPTIMIZERS)}")


class EpochCallback(Protocol):
    def __call__(self, epoch: int, net: StackedMLP) -> bool | list[bool] | None:
        """Called after each epoch (1-based). Return True to stop every model, or one flag
        per model to stop (freeze) just those; None or False keeps training."""


@dataclass
class TrainOutcome:
    net: StackedMLP
    epochs_run: int  # epochs of the longest-running model
    diverged: list[bool] = field(default_factory=list)
    model_epochs: list[int] = field(
        default_factory=list
    )  # epochs each model trained before it stopped
    exact_weights: list[torch.Tensor] = field(
        default_factory=list
    )  # s V per layer in float64, before rounding


def _stop_flags(answer, k: int) -> torch.Tensor:
    """A callback's answer as (K,) bool."""
    if answer is None or isinstance(answer, bool):
        return torch.full((k,), bool(answer))
    flags = torch.as_tensor(answer, dtype=torch.bool).reshape(-1)
    if flags.numel() != k:
        raise ValueError(f"callback returned {flags.numel()} stop flags for {k} models")
    return flags


def backprop(
    net: StackedMLP,
    xb: torch.Tensor,
    yb: torch.Tensor,
    cost: Cost,
    scale: torch.Tensor,
    scales: list[torch.Tensor] | None = None,
):
    """Yield ``(layer, delta, a_in)`` from the last layer to the first.

    delta = scale * dC_x/dz for the layer's pre-activations, (K, m, n_out); a_in is the
    layer's input, (K, m, n_in), or (m, n_in) for a mini-batch shared by all models. The
    gradient of sum_x scale*C_x is ``weight_gradient(delta, a_in)`` for the weights and
    the sum of delta over samples for the biases. The earlier layer's delta is
    computed before yielding, so the caller may update this layer's parameters in place.
    With ``scales`` ((K, 1, 1) per layer) the weights are scales[l] * net.weights[l].
    """
    activations, _ = net.forward(xb, scales)
    yield from backward(net, activations, cost.delta(activations[-1], yb) * scale, scales)


def backward(
    net: StackedMLP,
    activations: list[torch.Tensor],
    delta: torch.Tensor,
    scales: list[torch.Tensor] | None = None,
):
    """``backprop`` from given activations (``net.forward``'s) and the output layer's delta:
    yields ``(layer, delta, a_in)`` with delta_{l-1} = (W_l^T delta_l) * sigma'(z_{l-1})."""
    for layer in reversed(range(len(net.weights))):
        a_in = activations[layer]
        next_delta = None
        if layer > 0:
            back = delta if scales is None else delta * scales[layer]
            next_delta = torch.bmm(back, net.weights[layer]) * a_in * (1 - a_in)
        yield layer, delta, a_in
        delta = next_delta


def weight_gradient(delta: torch.Tensor, a_in: torch.Tensor) -> torch.Tensor:
    """sum_x delta_x a_in_x^T per model, (K, n_out, n_in); a_in is (K, m, n_in) or shared
    (m, n_in)."""
    if a_in.dim() == 3:
        return torch.bmm(delta.transpose(1, 2), a_in)
    k, m, n_out = delta.shape
    return torch.mm(delta.transpose(1, 2).reshape(k * n_out, m), a_in).view(k, n_out, -1)


def _subtract_weight_gradient(w: torch.Tensor, delta: torch.Tensor, a_in: torch.Tensor) -> None:
    """w -= weight_gradient(delta, a_in), fused into one matrix product."""
    if a_in.dim() == 3:
        w.baddbmm_(delta.transpose(1, 2), a_in, alpha=-1.0)
    else:
        k, m, n_out = delta.shape
        w.view(k * n_out, -1).addmm_(delta.transpose(1, 2).reshape(k * n_out, m), a_in, alpha=-1.0)


def sgd_step(
    net: StackedMLP,
    xb: torch.Tensor,
    yb: torch.Tensor,
    cost: Cost,
    rate: torch.Tensor,
    before: list[torch.Tensor],
    inverse: list[torch.Tensor],
) -> None:
    """One in-place update of every model on its mini-batch, the weights held as W = s V.

    xb: (K, m, n_in) and yb: (K, m, n_out), one mini-batch per model, or (m, n_in) and
    (m, n_out) shared by all models (the fast path); rate = eta/m, (K, 1, 1). Per layer,
    ``before`` is s and ``inverse`` 1/s' with s' = (1 - eta*lambda/n) s, each (K, 1, 1)
    (``scaled.Scales.advance``): V -= (rate / s') G with G the mini-batch gradient sum,
    so that s' V' = (1 - eta*lambda/n) W - rate G.
    """
    for layer, delta, a_in in backprop(
        net, xb, yb, cost, rate, before
    ):  # delta already scaled by eta/m
        net.biases[layer].sub_(delta.sum(1))
        _subtract_weight_gradient(net.weights[layer], delta * inverse[layer], a_in)


@dataclass
class AdamState:
    """Adam's moment estimates for every parameter of a stack (Kingma and Ba, 2015)."""

    first: list[torch.Tensor]
    second: list[torch.Tensor]
    steps: int = 0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    @staticmethod
    def zeros_like(net: StackedMLP) -> "AdamState":
        params = net.weights + net.biases
        return AdamState(
            [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params]
        )

    def select(self, idx: torch.Tensor) -> "AdamState":
        """The moments of models ``idx`` (copies), same step count."""
        return AdamState(
            [t[idx] for t in self.first],
            [t[idx] for t in self.second],
            self.steps,
            self.beta1,
            self.beta2,
            self.eps,
        )

    def assign(self, idx: torch.Tensor, part: "AdamState") -> None:
        for mine, theirs in zip(self.first + self.second, part.first + part.second):
            mine[idx] = theirs
        self.steps = part.steps


def adam_step(
    net: StackedMLP,
    xb: torch.Tensor,
    yb: torch.Tensor,
    cost: Cost,
    l2: torch.Tensor,
    lr: torch.Tensor,
    state: AdamState,
) -> None:
    """One Adam step on the mini-batch objective (1/m) sum_x C_x + (lambda/2n) sum w^2.

    The L2 term enters the gradient (coupled weight decay, as torch.optim.Adam's
    ``weight_decay``): g_W = (1/m) sum dC_x/dW + (lambda/n) W; biases are not decayed.
    l2 = lambda/n and lr are (K, 1, 1); a model with lr = 0 does not move.
    """
    m = xb.shape[-2]
    layers = len(net.weights)
    state.steps += 1
    correction1 = 1 - state.beta1**state.steps
    correction2 = 1 - state.beta2**state.steps
    scale = torch.full_like(lr, 1.0 / m)
    for layer, delta, a_in in backprop(net, xb, yb, cost, scale):
        w, b = net.weights[layer], net.biases[layer]
        grads = {layer: weight_gradient(delta, a_in) + l2 * w, layers + layer: delta.sum(1)}
        for slot, grad in grads.items():
            param = w if slot < layers else b
            step = lr if slot < layers else lr.view(-1, 1)
            first, second = state.first[slot], state.second[slot]
            first.mul_(state.beta1).add_(grad, alpha=1 - state.beta1)
            second.mul_(state.beta2).addcmul_(grad, grad, value=1 - state.beta2)
            denominator = (second / correction2).sqrt_().add_(state.eps)
            param.sub_(step * (first / correction1) / denominator)


def epoch_indices(seeds: list, epoch: int, n: int) -> torch.Tensor:
    """(K, n) sample order of every model in ``epoch`` (0-based)."""
    return torch.as_tensor(np.stack([epoch_order(seed, epoch, n) for seed in seeds]))


_GATHER_STEPS = 256  # mini-batches gathered at once: fewer small copies, bounded memory


@dataclass
class _Rates:
    """Per-model update coefficients of the models being trained."""

    decay: (
        torch.Tensor
    )  # (K,) float64: 1 - eta * lambda / n (SGD), never rounded to the weights' dtype
    eta: torch.Tensor  # (K,) float64
    l2: torch.Tensor  # (K, 1, 1): lambda / n (Adam)

    def select(self, idx: torch.Tensor) -> "_Rates":
        return _Rates(self.decay[idx], self.eta[idx], self.l2[idx])

    def per_step(self, batch_sizes: list[int]) -> torch.Tensor:
        """(steps, K) float64: eta / m_t for mini-batches of the given sizes."""
        return self.eta / torch.tensor(batch_sizes, dtype=torch.float64).unsqueeze(1)


def _rates(settings: SGDSettings, n: int, dtype: torch.dtype) -> _Rates:
    lam = torch.tensor(settings.lam, dtype=torch.float64)
    eta = torch.tensor(settings.eta, dtype=torch.float64)
    return _Rates(1 - eta * lam / n, eta, (lam / n).to(dtype).view(-1, 1, 1))


def _train_epoch(
    net: StackedMLP,
    x: torch.Tensor,
    y: torch.Tensor,
    cost: Cost,
    rates: _Rates,
    order: torch.Tensor,
    batch_size: int,
    adam: AdamState | None,
    scales: Scales | None,
) -> None:
    """One pass over the data in ``order`` ((K, n) sample indices) for every model of ``net``
    (SGD: its weights held as W = s V, renormalised at least every ``scaled.safe_steps``)."""
    if all(torch.equal(order[0], row) for row in order[1:]):
        order = order[0]  # one order for every model: mini-batches are shared (n,) -> fast path
    n = order.shape[-1]
    steps = _GATHER_STEPS if scales is None else min(_GATHER_STEPS, safe_steps(rates.decay))
    chunk = batch_size * steps
    for chunk_start in range(0, n, chunk):
        idx = order[..., chunk_start : chunk_start + chunk]
        if adam is not None:
            xs, ys = x[idx], y[idx]  # (c, n_in) shared, or (K, c, n_in) per model
            lr = rates.eta.to(net.dtype).view(-1, 1, 1)
            for start in range(0, idx.shape[-1], batch_size):
                adam_step(
                    net,
                    xs[..., start : start + batch_size, :],
                    ys[..., start : start + batch_size, :],
                    cost,
                    rates.l2,
                    lr,
                    adam,
                )
            continue
        c = idx.shape[-1]
        sizes = [min(batch_size, c - start) for start in range(0, c, batch_size)]
        before, after_inverse = scales.advance(rates.decay, len(sizes))
        step_rates = rates.per_step(sizes)
        if idx.dim() == 1:
            factors = StepFactors.build(
                step_rates, before, after_inverse, batch_size, net.sizes[1], net.dtype
            )
            shared_batch_steps(net, x, y, idx, cost, batch_size, factors)
        else:
            _own_batch_steps(
                net, x[idx], y[idx], cost, batch_size, step_rates, before, after_inverse
            )
        scales.renormalise(net)


def _own_batch_steps(
    net: StackedMLP,
    xs: torch.Tensor,
    ys: torch.Tensor,
    cost: Cost,
    batch_size: int,
    step_rates: torch.Tensor,
    before: list[torch.Tensor],
    after_inverse: list[torch.Tensor],
) -> None:
    """SGD steps when each model has its own mini-batches: xs (K, c, n_in), ys (K, c, n_out);
    tables (steps, K) float64 as from ``Scales.advance`` and ``_Rates.per_step``."""

    def column(table: torch.Tensor, t: int) -> torch.Tensor:
        return table[t].to(net.dtype).view(-1, 1, 1)

    for t, start in enumerate(range(0, xs.shape[1], batch_size)):
        sgd_step(
            net,
            xs[:, start : start + batch_size],
            ys[:, start : start + batch_size],
            cost,
            column(step_rates, t),
            [column(s, t) for s in before],
            [column(s, t) for s in after_inverse],
        )


def train_sgd(
    net: StackedMLP,
    x: torch.Tensor,
    y: torch.Tensor,
    cost: Cost,
    settings: SGDSettings,
    callbacks: list[EpochCallback] | tuple = (),
    start_epoch: int = 0,
) -> TrainOutcome:
    """Train the stack in place for ``settings.epochs`` epochs (fewer if a callback stops it).

    x: (n, n_in) and y: (n, n_out) are shared by all models; each model shuffles them with
    its own seed (``init.epoch_order``). The last mini-batch of an epoch may be smaller;
    its rate is eta/len(batch) as in network2.

    A model stops (its weights no longer change) when a callback flags it or its weights
    become non-finite (reported in ``diverged``); training ends when every model has
    stopped. Only the models still training are computed (the stack is compacted), and a
    model's result equals training it alone with the same stopping decisions.

    SGD trains the weights as W = s V (``scaled``); ``net`` receives W rounded to its dtype
    after every epoch (the callbacks see it), and ``exact_weights`` holds the final s V in
    float64, so the decay is exact within a run and rounded once at its end.
    """
    n, k = len(x), net.n_models
    if len(settings.eta) != k:
        raise ValueError(f"settings describe {len(settings.eta)} models, the stack has {k}")
    all_rates = _rates(settings, n, net.dtype)
    adam = AdamState.zeros_like(net) if settings.optimizer == "adam" else None
    scales = None if adam else Scales.ones(net)
    if scales is not None:
        check_decay(all_rates.decay)
    state = net.clone()  # V (and the biases) while training; net gets W = s V after each epoch
    active = torch.ones(k, dtype=torch.bool)
    model_epochs = [start_epoch] * k
    epochs_run = start_epoch
    for epoch in range(start_epoch, settings.epochs):
        idx = torch.nonzero(active).flatten()
        order = epoch_indices([settings.seeds[j] for j in idx.tolist()], epoch, n)
        if len(idx) == k:
            _train_epoch(state, x, y, cost, all_rates, order, settings.batch_size, adam, scales)
        else:
            sub, sub_adam = state.select(idx), adam.select(idx) if adam else None
            sub_scales = scales.select(idx) if scales else None
            _train_epoch(
                sub,
                x,
                y,
                cost,
                all_rates.select(idx),
                order,
                settings.batch_size,
                sub_adam,
                sub_scales,
            )
            state.assign(idx, sub)
            if adam:
                adam.assign(idx, sub_adam)
            if scales:
                scales.assign(idx, sub_scales)
        _write_back(net, state, scales)
        epochs_run = epoch + 1
        for j in idx.tolist():
            model_epochs[j] = epochs_run
        stop = ~net.is_finite()
        for callback in callbacks:
            stop |= _stop_flags(callback(epochs_run, net), k)
        active &= ~stop
        if not active.any():
            break
    exact = (
        scales.weights(state, torch.float64)
        if scales
        else [w.to(torch.float64) for w in state.weights]
    )
    return TrainOutcome(
        net,
        epochs_run,
        diverged=(~net.is_finite()).tolist(),
        model_epochs=model_epochs,
        exact_weights=exact,
    )


def _write_back(net: StackedMLP, state: StackedMLP, scales: Scales | None) -> None:
    """net's weights = s V rounded to net's dtype (V itself without scales), its biases =
    state's."""
    weights = scales.weights(state) if scales else state.weights
    for mine, theirs in zip(net.weights + net.biases, weights + state.biases):
        mine.copy_(theirs)
