"""Nielsen's initialisers, seeded per model so that a stack equals its models trained alone.

- ``large``:   weights and biases ~ N(0, 1)           (network2's large_weight_initializer)
- ``default``: weights ~ N(0, 1/n_in), biases ~ N(0, 1) (network2's default_weight_initializer)

Draws come from numpy's PCG64 seeded with ``[seed, INIT_STREAM]`` in float64 (biases of
every layer, then weights, as network2 draws them) and are then cast, so float32 and
float64 runs start from the same point up to rounding.
"""

from __future__ import annotations

import numpy as np
import torch

from .network import StackedMLP

INIT_STREAM = 0  # stream ids keep initialisation and shuffling independent
SHUFFLE_STREAM = 1
INITIALISERS = ("large", "default")


def init_model(sizes: list[int], init: str, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Float64 weights (n_out, n_in) and biases (n_out,) of one model."""
    if init not in INITIALISERS:
        raise ValueError(f"unknown initialiser {init!r}; allowed: {list(INITIALISERS)}")
    rng = np.random.default_rng([seed, INIT_STREAM])
    biases = [rng.standard_normal(n_out) for n_out in sizes[1:]]
    weights = [rng.standard_normal((n_out, n_in)) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    if init == "default":
        weights = [w / np.sqrt(w.shape[1]) for w in weights]
    return weights, biases


def init_stack(
    sizes: list[int], inits: list[str], seeds: list[int], dtype: torch.dtype
) -> StackedMLP:
    """A stack of len(seeds) models, model k drawn with ``inits[k]`` and ``seeds[k]``."""
    models = [init_model(sizes, init, seed) for init, seed in zip(inits, seeds, strict=True)]
    layers = range(len(sizes) - 1)
    return StackedMLP(
        [torch.as_tensor(np.stack([m[0][l] for m in models])).to(dtype) for l in layers],
        [torch.as_tensor(np.stack([m[1][l] for m in models])).to(dtype) for l in layers],
    )


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order in which one model visits the n training samples in ``epoch`` (0-based).

    A pure function of (seed, epoch): a resumed run sees the same mini-batches.
    """
    return np.random.default_rng([seed, SHUFFLE_STREAM, epoch]).permutation(n)
