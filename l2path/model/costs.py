"""Per-sample costs of the sigmoid output layer and their output-layer errors.

Conventions (Nielsen, ch. 3): ``a = sigmoid(z)`` is the output activation, ``y`` the
one-hot target, sums run over the output units of one sample.

- ``quadratic``:     C_x = 0.5 * ||a - y||^2,                  delta = (a - y) * a * (1 - a)
- ``cross_entropy``: C_x = sum -y ln a - (1 - y) ln(1 - a),   delta = a - y

``delta`` is dC_x/dz for the output pre-activation z. Cross-entropy is evaluated from z
as ``y * softplus(-z) + (1 - y) * softplus(z)``, the same value without log(0).
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch.nn.functional import softplus


class Cost(Protocol):
    name: str

    def per_sample(self, z: torch.Tensor, a: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """C_x for each sample: shape ``z.shape[:-1]``."""

    def delta(self, a: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """dC_x/dz, same shape as ``a``."""


class Quadratic:
    name = "quadratic"

    def per_sample(self, z, a, y):
        return 0.5 * (a - y).square().sum(-1)

    def delta(self, a, y):
        return torch.ops.aten.sigmoid_backward(a - y, a)  # (a - y) * a * (1 - a), fused


class CrossEntropy:
    name = "cross_entropy"

    def per_sample(self, z, a, y):
        return (y * softplus(-z) + (1 - y) * softplus(z)).sum(-1)

    def delta(self, a, y):
        return a - y


COSTS: dict[str, Cost] = {"quadratic": Quadratic(), "cross_entropy": CrossEntropy()}


def get_cost(name: str) -> Cost:
    try:
        return COSTS[name]
    except KeyError:
        raise ValueError(f"unknown cost {name!r}; allowed: {sorted(COSTS)}") from None
