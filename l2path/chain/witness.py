"""A point's class from its dense Hessian, each class with its witness, never from signs that
rounding decides.

An eigenvalue that is zero up to rounding (a flat direction: a dead unit's bias, a symmetry)
comes out of a factorisation as a tiny number of either sign, so "LDL^T found a negative pivot"
proves nothing. Every claim here clears a stated margin:

    delta = 2 gamma_{p+1} tr|H| + a,

the rounding bound of a factorisation of H (the first-order bound on ||R||_F^2 of
``curvature.inertia``) plus the products' error estimate a (the asymmetry of the assembled H).

- **minimum**: the Cholesky certificate of ``curvature.inertia`` (lambda_min(H) >= lower bound >
  a, proved); witness: ``lower_bound``.
- **saddle**: a unit vector v (the bottom eigenvector) whose Rayleigh quotient, with its own
  rounding bound e = gamma_p |v|^T |H| |v|, satisfies v^T H v + e < -delta: then lambda_min(H)
  <= v^T H v < -delta, a negative eigenvalue below the margin (Courant-Fischer). Witness:
  ``witness_value`` = v^T H v, with ``witness`` = v. The count of eigenvalues below -delta is
  the number of negative pivots of LDL^T(H + delta I) (Sylvester's law of inertia).
- **degenerate**: neither: no eigenvalue proved below -delta, and H not proved positive
  definite. ``flat`` counts the eigenvalues in [-delta, delta]: the negative pivots of
  LDL^T(H - delta I) less those of LDL^T(H + delta I).

Shapes: H is (p, p), symmetric, float64. Cost: one Cholesky, where it fails a Cholesky of
H + delta I (an LDL^T only where that fails too), an LDL^T of H - delta I and the
eigenpairs below delta by one tridiagonal reduction (``low_eigenpairs``; they give the witness and
``chain.flat`` its flat directions: p = 4,180 at n_sub = 128, about 13 s on one core).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

from ..curvature.classes import PointClass
from ..curvature.inertia import DefinitenessCertificate, DenseHessian, gamma, inertia


@dataclass(frozen=True)
class ClassWitness:
    curvature_class: PointClass
    delta: float  # the margin of the module: rounding bound + products' error
    below: int  # eigenvalues < -delta (LDL^T of H + delta I); 0 when proved a minimum
    flat: int  # eigenvalues in [-delta, delta]; 0 when proved a minimum
    lower_bound: float  # minimum: lambda_min(H) >= this, proved; NaN otherwise
    witness_value: float  # v^T H v of the bottom eigenvector (NaN when proved a minimum)
    witness_error: float  # its rounding bound gamma_p |v|^T |H| |v|
    witness: np.ndarray | None = field(default=None, repr=False, compare=False)  # v, (p,)
    # the eigenpairs below delta (values (k,), vectors (p, k)); None when proved a minimum
    low: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)


def margin(hessian: DenseHessian) -> float:
    """delta of the module: 2 gamma_{p+1} tr|H| + the products' asymmetry."""
    h = hessian.matrix
    return 2 * gamma(len(h) + 1) * float(np.abs(np.diag(h)).sum()) + hessian.asymmetry


def low_eigenpairs(
    matrix: np.ndarray, delta: float, below: int = -1, flat: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The eigenpairs with eigenvalue <= delta (at least the smallest one), ascending, unit
    vectors as columns. With no eigenvalue below -delta (``below`` = 0, LDL^T's count) and
    ``flat`` in [-delta, delta], these are the max(flat, 1) smallest: block inverse iteration
    (``_inverse_iteration``) finds them, about 4 times faster than a tridiagonal reduction;
    otherwise, or where it does not converge, LAPACK's MRRR (one reduction for all of them)."""
    if below == 0:
        pairs = _inverse_iteration(matrix, -2 * delta, max(flat, 1), tol=0.01 * delta)
        if pairs is not None:
            return pairs
    values, vectors = scipy.linalg.eigh(
        matrix, subset_by_value=(-np.inf, delta), driver="evr", check_finite=False
    )
    if not len(values):  # every eigenvalue above delta: the smallest alone
        values, vectors = scipy.linalg.eigh(
            matrix, subset_by_index=[0, 0], driver="evr", check_finite=False
        )
    return values, vectors / np.linalg.norm(vectors, axis=0)


def _inverse_iteration(
    matrix: np.ndarray, shift: float, count: int, tol: float, iterations: int = 12, extra: int = 8
) -> tuple[np.ndarray, np.ndarray] | None:
    """The ``count`` eigenpairs nearest ``shift`` from below-free spectra: X <- (H - shift
    I)^{-1} X on count + ``extra`` orthonormal columns with Rayleigh-Ritz after each step, until
    every residual ||H v - theta v|| <= tol; None where H - shift I is not positive definite or
    ``iterations`` do not suffice. Each step shrinks the error by about
    (lambda_count - shift) / (lambda_{count + extra + 1} - shift): tiny where the wanted
    eigenvalues are flat and the rest are not."""
    p = len(matrix)
    shifted = matrix.copy()
    shifted[np.diag_indices(p)] -= shift
    try:
        factor = scipy.linalg.cho_factor(shifted, overwrite_a=True, check_finite=False)
    except np.linalg.LinAlgError:
        return None
    block = np.random.default_rng(0).standard_normal((p, min(p, count + extra)))
    for _ in range(iterations):
        block, _ = np.linalg.qr(scipy.linalg.cho_solve(factor, block, check_finite=False))
        product = matrix @ block
        values, rotation = np.linalg.eigh(block.T @ product)
        block, product = block @ rotation, product @ rotation
        residuals = np.linalg.norm(product[:, :count] - block[:, :count] * values[:count], axis=0)
        if residuals.max() <= tol:
            return values[:count], block[:, :count]
    return None


def eigenvalues_below(matrix: np.ndarray, bound: float) -> int:
    """The number of eigenvalues < ``bound``: the negative pivots of LDL^T(H - bound I)
    (Sylvester's law of inertia), or 0 where Cholesky of H - bound I completes first (at
    about 60 % of LDL^T's cost; it completes only when the shifted matrix is positive
    definite to rounding, as LDL^T would count it, and the flat eigenvalues this tells apart
    lie orders of magnitude inside the margin: docs/science.md)."""
    shifted = matrix.copy()
    shifted[np.diag_indices(len(matrix))] -= bound
    try:
        scipy.linalg.cholesky(shifted, overwrite_a=True, check_finite=False)
        return 0
    except np.linalg.LinAlgError:
        return inertia(matrix - bound * np.eye(len(matrix))).negative


def rayleigh(matrix: np.ndarray, vector: np.ndarray) -> tuple[float, float]:
    """v^T H v and its rounding bound gamma_p |v|^T |H| |v| (a p-term inner product twice)."""
    value = float(vector @ matrix @ vector)
    size = np.abs(vector)
    return value, 2 * gamma(len(vector)) * float(size @ np.abs(matrix) @ size)


def classify(hessian: DenseHessian, proof: DefinitenessCertificate) -> ClassWitness:
    """The class of the module from H and its Cholesky certificate (``certify_positive_definite``
    of the same H)."""
    delta = margin(hessian)
    if proof.proves_minimum:
        return ClassWitness(PointClass.MINIMUM, delta, 0, 0, proof.lower_bound, math.nan, 0.0)
    h = hessian.matrix
    below = eigenvalues_below(h, -delta)
    flat = inertia(h - delta * np.eye(len(h))).negative - below  # some lie below delta
    low = low_eigenpairs(h, delta, below, flat)
    vector = low[1][:, 0]
    value, error = rayleigh(h, vector)
    saddle = value + error < -delta
    kind = PointClass.SADDLE if saddle else PointClass.DEGENERATE
    return ClassWitness(kind, delta, below, flat, math.nan, value, error, vector, low)
