"""The distance between two points of a one-hidden-layer network modulo its symmetries.

Three transformations leave the network's function and the penalty, and so J, unchanged:
- permuting the hidden units (W_1's rows, b_1, W_2's columns together);
- flipping a unit's sign: (W_1[j], b_1[j], W_2[:, j]) -> (-W_1[j], -b_1[j], -W_2[:, j]) with
  b_2 -> b_2 + W_2[:, j], since v s(z) = v - v s(-z) for the sigmoid s;
- moving a dead unit's bias (``chain.flat``: W_1[j] = 0 and W_2[:, j] = 0), a flat direction.
So two minima are one when, with every unit flipped to its canonical sign (the entry of largest
|value| of W_1[j], or of W_2[:, j] where W_1[j] = 0, positive), dead units' biases set to 0, and
the permutation that matches their units best, their parameters coincide:

    aligned_distance(a, b) = min over permutations P of ||a~ - P b~||,

the best P from a linear assignment on the squared distances between the units' vectors
(W_1[j], b_1[j], W_2[:, j]) (``scipy.optimize.linear_sum_assignment``, Hungarian, h^3); the
output biases b_2 (after the flips) are not permuted.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize

from .flat import dead_units


def _units(theta: np.ndarray, sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Each hidden unit's vector (W_1[j], b_1[j], W_2[:, j]) as rows (h, d + 1 + o) in its
    canonical sign, dead units' biases zeroed; and b_2 (o,) after the flips."""
    d, h, o = sizes
    w1 = theta[: d * h].reshape(h, d)
    w2 = theta[d * h : d * h + o * h].reshape(o, h).T  # (h, o): unit j's outgoing weights
    b1 = theta[d * h + o * h : d * h + o * h + h].copy()
    b1[list(dead_units(theta, sizes))] = 0.0
    units = np.hstack([w1, b1[:, None], w2])
    lead = np.where(np.abs(w1).max(axis=1) > 0, _largest(w1), _largest(w2))
    flip = lead < 0
    b2 = theta[-o:] + w2[flip].sum(axis=0)
    units[flip] *= -1
    return units, b2


def _largest(rows: np.ndarray) -> np.ndarray:
    """Per row, its entry of largest absolute value (signed)."""
    return rows[np.arange(len(rows)), np.abs(rows).argmax(axis=1)]


def aligned_distance(a: np.ndarray, b: np.ndarray, sizes: list[int]) -> float:
    """The module's distance between theta a and theta b ((p,) each, ``objective``'s layout)."""
    units_a, out_a = _units(np.asarray(a, dtype=np.float64), sizes)
    units_b, out_b = _units(np.asarray(b, dtype=np.float64), sizes)
    cost = ((units_a[:, None, :] - units_b[None, :, :]) ** 2).sum(axis=2)
    rows, columns = scipy.optimize.linear_sum_assignment(cost)
    return float(np.sqrt(cost[rows, columns].sum() + ((out_a - out_b) ** 2).sum()))
