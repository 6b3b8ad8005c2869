"""Exact weight decay: the weights of layer l of model k held as W = s * V, s a float64 scale.

Nielsen's step is W -> d W - r G with d = 1 - eta*lambda/n, r = eta/m and G the mini-batch
gradient sum. Done in float32, d itself rounds to the float32 grid, whose spacing below 1 is
6e-8: at eta = 0.5, n = 50,000, lambda = 2^-8 and 2^-7 both give d = 1 - 2^-24, and
W - (1 - d) W rounds back to W wherever (1 - d) is under half an ulp. Holding W = s V with s
in float64 (as scikit-learn's SGD keeps ``wscale``) makes the decay exact:

    s' = d s                     (a float64 product: relative error 1e-16 per step)
    V' = V - (r / s') G          (so that s' V' = d s V - r G, Nielsen's step)

and it replaces a pass over every weight per step by one multiplication per model.
``renormalise`` moves the scale's power of two into V (V * 2^e and s / 2^e are exact), so
that s stays in [0.5, 1) and r / s' stays well inside the float range; ``safe_steps`` says
how many steps may pass between renormalisations. Biases are not decayed and not scaled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..model.network import StackedMLP

_SCALE_RANGE_BITS = (
    23  # renormalise before |s| leaves [2^-23, 2^23]: r / s' stays far from overflow
)


def check_decay(decay: torch.Tensor) -> None:
    """Refuse a decay factor d = 1 - eta*lambda/n within 2^-20 of zero: such a step forgets
    the weights entirely, and W = s V cannot carry s = 0."""
    tiny = decay.abs() < 2.0**-20
    if tiny.any():
        raise ValueError(
            f"decay factor 1 - eta*lambda/n = {float(decay[tiny][0]):.3g} is (nearly) zero: every "
            "step would forget the weights; choose another eta or lambda"
        )


def safe_steps(decay: torch.Tensor) -> int:
    """Steps after which every |s| (in [0.5, 1] after a renormalisation) is still within
    [2^-23, 2^23], given the per-step factors ``decay`` (K,) float64; at least 1."""
    rate = float(decay.abs().log().abs().max()) if len(decay) else 0.0
    if rate == 0.0:
        return 1 << 30
    return max(1, math.floor((_SCALE_RANGE_BITS - 1) * math.log(2) / rate))


@dataclass
class Scales:
    """One (K,) float64 scale per layer: W_l = values[l].view(K, 1, 1) * V_l."""

    values: list[torch.Tensor]

    @classmethod
    def ones(cls, net: StackedMLP) -> "Scales":
        return cls([torch.ones(net.n_models, dtype=torch.float64) for _ in net.weights])

    def select(self, idx: torch.Tensor) -> "Scales":
        return Scales([s[idx] for s in self.values])

    def assign(self, idx: torch.Tensor, part: "Scales") -> None:
        for mine, theirs in zip(self.values, part.values):
            mine[idx] = theirs

    def advance(
        self, decay: torch.Tensor, steps: int
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Tables for the next ``steps`` steps, and the scales moved past them.

        Per layer, in float64: ``before[l][t]`` = s before step t and ``after_inverse[l][t]``
        = 1 / s after step t, each (steps, K); s after step t is s * decay^(t+1) (one
        cumulative product per chunk, not a pass per step).
        """
        powers = torch.cat(
            [torch.ones(1, len(decay), dtype=torch.float64), decay.expand(steps, -1).cumprod(0)]
        )  # decay^t, t = 0..steps
        before, after_inverse = [], []
        for layer, s in enumerate(self.values):
            path = s * powers  # (steps + 1, K)
            before.append(path[:-1])
            after_inverse.append(1.0 / path[1:])
            self.values[layer] = path[-1].clone()
        return before, after_inverse

    def renormalise(self, net: StackedMLP) -> None:
        """s = f 2^e with f in [0.5, 1): V *= 2^e and s = f, both exact (a power of two)."""
        for layer, s in enumerate(self.values):
            fraction, exponent = torch.frexp(s)
            power = torch.ldexp(torch.ones_like(s), exponent).to(net.dtype).view(-1, 1, 1)
            net.weights[layer].mul_(power)
            self.values[layer] = fraction

    def weights(self, net: StackedMLP, dtype: torch.dtype | None = None) -> list[torch.Tensor]:
        """W = s V per layer, computed in float64 and returned in ``dtype`` (the net's by
        default)."""
        return [
            (s.view(-1, 1, 1) * v.to(torch.float64)).to(dtype or net.dtype)
            for s, v in zip(self.values, net.weights)
        ]
