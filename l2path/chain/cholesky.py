"""Solves with a dense Cholesky factor by two triangular solves.

``scipy.linalg.cho_solve`` (LAPACK potrs) takes about twice as long for one right-hand side as
the two triangular solves it stands for (27 ms against 12.5 ms at p = 4,180 on one core of the
AMD EPYC of docs/benchmarks.md; the same for a block of 38 columns), and shift-invert Lanczos,
inverse iteration and the preconditioned GMRES of the arclength solve one vector at a time.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.linalg


def cholesky_solver(factor: tuple[np.ndarray, bool]) -> Callable[[np.ndarray], np.ndarray]:
    """x = A^{-1} b from ``scipy.linalg.cho_factor``'s (c, lower): A = R^T R with R the upper
    triangle of c (lower False), or A = L L^T with L its lower triangle; b of shape (p,) or
    (p, k)."""
    c, lower = factor

    def solve(rhs: np.ndarray) -> np.ndarray:
        first = scipy.linalg.solve_triangular(
            c, rhs, trans=0 if lower else 1, lower=lower, check_finite=False
        )
        return scipy.linalg.solve_triangular(
            c, first, trans=1 if lower else 0, lower=lower, check_finite=False
        )

    return solve
