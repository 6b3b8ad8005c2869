"""The distance between two points of a one-hidden-layer network modulo its symmetries.

Permuting the hidden units (W_1's rows, b_1, W_2's columns together) leaves the network's
function, and so J, unchanged; a dead unit's bias (``chain.flat``: W_1[j] = 0 and W_2[:, j] = 0)
moves along an exactly flat direction. So two minima are one when, after the permutation that
matches their units best and with dead units' biases set to 0, their parameters coincide:

    aligned_distance(a, b) = min over permutations P of ||a~ - P b~||,

a~, b~ with dead biases zeroed; the best P solves a linear assignment on the squared distances
between units' vectors (W_1[j], b_1[j], W_2[:, j]) (``scipy.optimize.linear_sum_assignment``,
Hungarian, h^3). The output biases b_2 are not permuted.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize

from .flat import dead_units


def _units(theta: np.ndarray, sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Each hidden unit's vector (W_1[j], b_1[j], W_2[:, j]) as rows (h, d + 1 + o), dead units'
    biases zeroed; and b_2 (o,)."""
    d, h, o = sizes
    w1 = theta[: d * h].reshape(h, d)
    w2 = theta[d * h : d * h + o * h].reshape(o, h)
    b1 = theta[d * h + o * h : d * h + o * h + h].copy()
    b1[list(dead_units(theta, sizes))] = 0.0
    return np.hstack([w1, b1[:, None], w2.T]), theta[-o:]


def aligned_distance(a: np.ndarray, b: np.ndarray, sizes: list[int]) -> float:
    """The module's distance between theta a and theta b ((p,) each, ``objective``'s layout)."""
    units_a, out_a = _units(np.asarray(a, dtype=np.float64), sizes)
    units_b, out_b = _units(np.asarray(b, dtype=np.float64), sizes)
    cost = ((units_a[:, None, :] - units_b[None, :, :]) ** 2).sum(axis=2)
    rows, columns = scipy.optimize.linear_sum_assignment(cost)
    return float(np.sqrt(cost[rows, columns].sum() + ((out_a - out_b) ** 2).sum()))
