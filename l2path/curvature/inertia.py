"""Inertia of a Hessian from its dense matrix: a proof of "minimum" that does not rest on
Lanczos having found the bottom of the spectrum.

Lanczos gives an accurate bottom Ritz pair (mu, v) with residual r, so *some* eigenvalue of H
lies within r of mu; it does not show that no eigenvalue lies below mu (the start vector may be
nearly orthogonal to the bottom eigenvector). A factorisation of the whole matrix does.

**The matrix.** ``dense_hessian`` assembles H column by column from p Hessian-vector products
(H e_i), float64, and symmetrises it, H_s = (H_c + H_c^T) / 2. The products' own rounding
shows as the asymmetry a = ||H_c - H_c^T||_F / 2, an estimate (not a bound) of ||H_c - H||.

**The certificate** (``certify_positive_definite``). Cholesky of A = fl(H_s - eps I) in
floating point (unit roundoff u = 2^-53). If it runs to completion, the computed factor R
satisfies R^T R = A + dA with |dA| <= gamma_{p+1} |R^T| |R|, gamma_k = k u / (1 - k u)
(Demmel 1989; Higham, *Accuracy and Stability of Numerical Algorithms*, thm. 10.5), and
|| |R^T||R| ||_2 <= ||R||_F^2, so A + dA is positive semi-definite and

    lambda_min(H_s) >= eps - gamma_{p+1} ||R||_F^2 - u max_i |h_ii - eps|  =: lower_bound,

the last term the rounding of the shift. A rigorous statement about the stored H_s; the point
is a *proved* minimum when lower_bound > 0 with a margin over the products' error estimate a.
If the factorisation breaks down, ``inertia`` (LDL^T, Bunch-Kaufman, Sylvester's law of
inertia) counts the negative, zero and positive eigenvalues of H_s.

Cost: p products and one p^3/3 factorisation (p = 23,860 parameters at [784, 30, 10]:
a 4.5 GB matrix and 1.9e12 flops), so it is run only on the points a verdict rests on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

UNIT_ROUNDOFF = 2.0**-53


def gamma(k: int) -> float:
    """gamma_k = k u / (1 - k u): the relative error bound of a k-term float64 inner product."""
    ku = k * UNIT_ROUNDOFF
    if ku >= 1:
        raise ValueError(f"gamma_{k} is undefined in float64 (k u >= 1)")
    return ku / (1 - ku)


@dataclass(frozen=True)
class DenseHessian:
    matrix: np.ndarray  # H_s, (p, p), symmetric
    asymmetry: float  # ||H_c - H_c^T||_F / 2: the products' rounding, estimated
    products: int  # Hessian-vector products spent (p)


def dense_hessian(op, block: int = 256) -> DenseHessian:
    """H from p products with unit vectors (``op``: a scipy LinearOperator, shape (p, p)),
    ``block`` columns at a time through ``op.matmat``."""
    p = op.shape[0]
    columns = np.empty((p, p))
    for start in range(0, p, block):
        stop = min(start + block, p)
        unit = np.zeros((p, stop - start))
        unit[np.arange(start, stop), np.arange(stop - start)] = 1.0
        columns[:, start:stop] = op.matmat(unit)
    asymmetry = float(np.linalg.norm(columns - columns.T)) / 2
    columns += columns.T
    columns *= 0.5
    return DenseHessian(columns, asymmetry, p)


@dataclass(frozen=True)
class Inertia:
    negative: int
    zero: int  # |d| <= tol: numerically singular directions
    positive: int


def inertia(matrix: np.ndarray, tol: float = 0.0) -> Inertia:
    """Counts of eigenvalues < -tol, within tol of 0, > tol, from the LDL^T factorisation (the
    block-diagonal D has the inertia of the matrix: Sylvester's law)."""
    _, d, _ = scipy.linalg.ldl(matrix, lower=True)
    eigenvalues = _block_diagonal_eigenvalues(d)
    return Inertia(
        int((eigenvalues < -tol).sum()),
        int((np.abs(eigenvalues) <= tol).sum()),
        int((eigenvalues > tol).sum()),
    )


def _block_diagonal_eigenvalues(d: np.ndarray) -> np.ndarray:
    """Eigenvalues of a block diagonal of 1x1 and 2x2 blocks (Bunch-Kaufman's D)."""
    values, i, p = [], 0, len(d)
    while i < p:
        if i + 1 < p and d[i + 1, i] != 0.0:
            values.extend(np.linalg.eigvalsh(d[i : i + 2, i : i + 2]))
            i += 2
        else:
            values.append(d[i, i])
            i += 1
    return np.asarray(values)


@dataclass(frozen=True)
class DefinitenessCertificate:
    shift: float  # eps
    factorised: bool  # Cholesky of H_s - eps I ran to completion
    lower_bound: float  # lambda_min(H_s) >= lower_bound (NaN when not factorised)
    rounding: float  # gamma_{p+1} ||R||_F^2 + u max |h_ii - eps|
    product_error: float  # the asymmetry estimate of ||H_c - H||
    inertia: Inertia | None  # counted when the factorisation broke down
    factor: np.ndarray | None = field(default=None, repr=False, compare=False)  # R of H_s - eps I

    @property
    def proves_minimum(self) -> bool:
        """lambda_min(H_s) > 0, with the bound above the products' estimated error."""
        return self.factorised and self.lower_bound > self.product_error


def certify_positive_definite(
    hessian: DenseHessian, shift: float | None = None, count_inertia: bool = True
) -> DefinitenessCertificate:
    """The certificate of the module docstring. ``shift`` = eps defaults to twice the rounding
    term estimated before factorising (gamma_{p+1} tr|H_s| bounds ||R||_F^2 to first order), so
    a success proves lambda_min(H_s) > 0 whenever the spectrum clears the rounding.
    ``count_inertia=False``: no LDL^T where Cholesky breaks down (``inertia`` None), for a
    caller that counts with its own margin (``chain.witness``)."""
    h = hessian.matrix
    p = len(h)
    diagonal = np.diag(h)
    if shift is None:
        shift = 2 * gamma(p + 1) * float(np.abs(diagonal).sum())
    shifted = h.copy()  # one copy: at full size a matrix is 4.5 GB
    shifted[np.diag_indices(p)] -= shift
    try:
        factor = scipy.linalg.cholesky(shifted, lower=False, overwrite_a=True)
    except np.linalg.LinAlgError:
        counts = inertia(h) if count_inertia else None
        return DefinitenessCertificate(shift, False, math.nan, math.nan, hessian.asymmetry, counts)
    frobenius_squared = float(np.square(factor).sum()) * (1 + p * UNIT_ROUNDOFF)
    rounding = gamma(p + 1) * frobenius_squared + UNIT_ROUNDOFF * float(
        np.abs(diagonal - shift).max()
    )
    return DefinitenessCertificate(
        shift, True, shift - rounding, rounding, hessian.asymmetry, None, factor
    )
