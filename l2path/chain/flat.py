"""Where a degenerate point's flat directions live: which parameters carry its eigenvectors of
eigenvalues in [-delta, delta], and which symmetry explains them.

For a [d, h, o] network (theta = [W_1, W_2, b_1, b_2], ``objective``'s layout) the usual cause
is a **dead hidden unit** j: its input weights W_1[j] and output weights W_2[:, j] are ~0, so
it feeds the output nothing and its bias b_1[j] is an exactly flat direction (biases are not
decayed). The flat subspace is described through its projector's diagonal (which does not
depend on the basis LAPACK picks inside it): each hidden bias it carries by more than half is
named with its unit, the remaining dimensions by the parameter block holding most of the rest;
a unit is *dead* when both its weight vectors are below ``dead_tol`` times the largest weight,
or times 1 where every weight is smaller (the collapsed point w ~ 1e-10: every unit dead).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import scipy.linalg


@dataclass(frozen=True)
class FlatDirections:
    count: int  # eigenvalues in [-delta, delta]
    dead_units: tuple[int, ...]  # hidden units with W_1[j] ~ 0 and W_2[:, j] ~ 0
    blocks: tuple[str, ...]  # per flat vector: its main block, e.g. "b1[4] (dead)", "W1"

    def describe(self) -> str:
        """One line, e.g. "3 flat: b1[4] (dead), b1[9] (dead), b1[17] (dead)"."""
        if not self.count:
            return "none flat"
        counts = Counter(self.blocks)
        parts = [name if k == 1 else f"{k} x {name}" for name, k in counts.items()]
        return f"{self.count} flat: " + ", ".join(parts)


def _blocks(sizes: list[int]) -> list[tuple[str, int, int]]:
    """(name, start, stop) of each parameter block of theta."""
    names, start, out = [], 0, []
    for layer, (i, o) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        names.append((f"W{layer}", i * o))
    for layer, o in enumerate(sizes[1:], start=1):
        names.append((f"b{layer}", o))
    for name, count in names:
        out.append((name, start, start + count))
        start += count
    return out


def dead_units(theta: np.ndarray, sizes: list[int], dead_tol: float = 1e-6) -> tuple[int, ...]:
    """Hidden units (of a [d, h, o] network) whose input and output weights are all below
    ``dead_tol`` times the largest |weight| (at least 1)."""
    d, h, o = sizes
    w1 = theta[: d * h].reshape(h, d)
    w2 = theta[d * h : d * h + o * h].reshape(o, h)
    scale = dead_tol * max(np.abs(theta[: d * h + o * h]).max(), 1.0)
    return tuple(
        j
        for j in range(h)
        if np.abs(w1[j]).max(initial=0) <= scale and np.abs(w2[:, j]).max(initial=0) <= scale
    )


def flat_directions(
    matrix: np.ndarray,
    delta: float,
    theta: np.ndarray,
    sizes: list[int],
    low: tuple[np.ndarray, np.ndarray] | None = None,
) -> FlatDirections:
    """The flat eigenvectors of ``matrix`` (H, (p, p)) at ``theta`` ((p,)) and their blocks;
    ``low``: H's eigenpairs below delta already computed (``chain.witness.low_eigenpairs``)."""
    if low is None:
        values, vectors = scipy.linalg.eigh(matrix, subset_by_value=(-delta, delta), driver="evr")
    else:
        flat = np.abs(low[0]) <= delta
        values, vectors = low[0][flat], low[1][:, flat]
    dead = dead_units(theta, sizes)
    # the flat subspace's projector diagonal: rotation-invariant within the subspace
    mass = (vectors**2).sum(axis=1)
    names = []
    for name, start, stop in _blocks(sizes):
        if name == "b1":  # a bias carried whole by the subspace: a unit's exact flat direction
            for unit in np.flatnonzero(mass[start:stop] > 0.5):
                names.append(f"b1[{unit}]" + (" (dead)" if unit in dead else ""))
                mass[start + unit] = 0.0
    blocks = _blocks(sizes)
    for _ in range(len(values) - len(names)):  # the rest: by the block holding most of it
        name, start, stop = max(blocks, key=lambda b: mass[b[1] : b[2]].sum())
        names.append(name)
        mass[start:stop] = 0.0
    return FlatDirections(len(values), dead, tuple(names))
