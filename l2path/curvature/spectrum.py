"""Spectral estimates of a symmetric operator H (p x p) from matrix-vector products only.

- ``extreme_eigenpairs``: the k largest or smallest eigenvalues by implicitly restarted
  Lanczos (scipy's ``eigsh``, ARPACK), each with its Ritz residual ||H v - theta v|| (v of
  unit norm, computed afresh) and a converged flag: residual <= tol * scale.
- ``lanczos``: m steps of Lanczos with full re-orthogonalisation -> tridiagonal T and its
  basis; an optional ``stop(alpha, beta, next_beta)`` ends it early.
- ``lanczos_extreme``: the k largest or smallest Ritz pairs of plain Lanczos (no restarts),
  stopping as soon as all k are converged or after ``max_steps``, each with its explicit
  residual. With full re-orthogonalisation, H Q = Q T + b q e_m^T, so the Ritz pair
  (theta_i, Q s_i) has residual |b * s_i[m-1]|: convergence is checked after every step at no
  cost in products. ARPACK's restarted "SA" mode can stall at the bottom of a Hessian
  spectrum crowded near zero, and for one eigenvalue its first restart cycle already costs
  ncv = 20 products; plain Lanczos costs exactly one product per step.
- ``slq_density``: stochastic Lanczos quadrature (Ubaru, Chen and Saad 2017). For a
  Rademacher probe z (||z||^2 = p), T's eigenvalues theta_j and the squared first
  components tau_j of its eigenvectors give a quadrature of the spectral measure:
  (1/p) sum_i f(lambda_i) ~ sum_j tau_j f(theta_j), exact for polynomials of degree
  < 2m. Averaged over probes; the spread over probes gives the standard error.
- ``hutchinson_trace``: tr(H) ~ mean of z^T H z over Rademacher probes, with its standard
  error (sample sd / sqrt(probes)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse.linalg
from scipy.sparse.linalg import ArpackNoConvergence
from threadpoolctl import threadpool_limits


@dataclass
class Eigenpairs:
    values: np.ndarray  # (k,) ascending
    vectors: np.ndarray  # (p, k), unit columns
    residuals: np.ndarray  # (k,) ||H v - theta v||
    converged: np.ndarray  # (k,) bool


def ritz_residuals(op, values: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    return np.array(
        [
            np.linalg.norm(op.matvec(vectors[:, j]) - values[j] * vectors[:, j])
            for j in range(len(values))
        ]
    )


def extreme_eigenpairs(
    op,
    k: int,
    which: str,
    tol: float,
    scale: float | None = None,
    maxiter: int | None = None,
    seed: int = 0,
) -> Eigenpairs:
    """The k algebraically largest (``which="LA"``) or smallest (``"SA"``) eigenpairs.

    Converged means residual <= tol * scale, scale = |largest eigenvalue found| unless given.
    ARPACK stopping early returns the pairs it has (fewer than k, flagged by their residuals).
    """
    start = np.random.default_rng(seed).standard_normal(op.shape[0])
    try:
        values, vectors = scipy.sparse.linalg.eigsh(
            op, k=k, which=which, tol=tol, maxiter=maxiter, v0=start
        )
    except ArpackNoConvergence as stopped:
        values, vectors = stopped.eigenvalues, stopped.eigenvectors
    order = np.argsort(values)
    values, vectors = values[order], vectors[:, order]
    vectors = vectors / np.linalg.norm(vectors, axis=0, keepdims=True)
    residuals = ritz_residuals(op, values, vectors)
    scale = scale if scale is not None else (np.abs(values).max() if len(values) else 1.0)
    return Eigenpairs(values, vectors, residuals, residuals <= tol * scale)


def lanczos(
    op, start: np.ndarray, steps: int, stop=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Diagonal alpha (m,), off-diagonal beta (m-1,) of the Lanczos tridiagonal of op from
    ``start``, and the orthonormal basis (m, p), with full re-orthogonalisation (m <= p;
    stops early on an invariant subspace, or when ``stop(alpha, beta, next_beta)`` is true)."""
    # numpy's BLAS threads keep spinning after the small re-orthogonalisation products and
    # steal the cores torch needs for the next product: 2x slower per step on 2 cores
    with threadpool_limits(limits=1, user_api="blas"):
        return _lanczos(op, start, steps, stop)


def _lanczos(op, start, steps, stop):
    basis = [start / np.linalg.norm(start)]
    alpha, beta = [], []
    for j in range(min(steps, op.shape[0])):
        w = op.matvec(basis[j])
        alpha.append(float(basis[j] @ w))
        q = np.array(basis)
        w = w - q.T @ (q @ w)
        w = w - q.T @ (q @ w)  # twice is enough (Giraud et al.)
        norm = float(np.linalg.norm(w))
        if j + 1 == steps or norm < 1e-12 * max(1.0, abs(alpha[-1])):
            break
        if stop is not None and stop(np.array(alpha), np.array(beta), norm):
            break
        beta.append(norm)
        basis.append(w / norm)
    return np.array(alpha), np.array(beta[: len(alpha) - 1]), np.array(basis[: len(alpha)])


def _wanted(count: int, k: int, which: str) -> slice:
    """Positions of the k wanted Ritz values among ``count`` ascending ones."""
    if which not in ("LA", "SA"):
        raise ValueError(f"which must be 'LA' or 'SA', not {which!r}")
    return slice(max(count - k, 0), count) if which == "LA" else slice(0, min(k, count))


def lanczos_extreme(
    op, k: int, which: str, tol: float, max_steps: int, scale: float | None = None, seed: int = 0
) -> Eigenpairs:
    """The k algebraically largest (``which="LA"``) or smallest (``"SA"``) Ritz pairs of plain
    Lanczos from a random start. Stops after the first step at which every wanted pair's
    residual estimate |b * s_i[m-1]| <= tol * scale, or after ``max_steps`` products; then
    computes the explicit residuals ||H v - theta v|| (k more products). Converged means the
    explicit residual <= tol * scale; scale = max |theta| of the final Ritz values unless given.
    """

    def converged(alpha, beta, next_beta):
        if len(alpha) < k:
            return False
        theta, vectors = scipy.linalg.eigh_tridiagonal(alpha, beta)
        wanted = _wanted(len(theta), k, which)
        bound = tol * (scale if scale is not None else np.abs(theta).max())
        return bool((np.abs(next_beta * vectors[-1, wanted]) <= bound).all())

    start = np.random.default_rng(seed).standard_normal(op.shape[0])
    alpha, beta, basis = lanczos(op, start, max_steps, stop=converged)
    theta, vectors = scipy.linalg.eigh_tridiagonal(alpha, beta)
    wanted = _wanted(len(theta), k, which)
    values = theta[wanted]
    ritz = basis.T @ vectors[:, wanted]
    ritz = ritz / np.linalg.norm(ritz, axis=0, keepdims=True)
    residuals = ritz_residuals(op, values, ritz)
    bound = tol * (scale if scale is not None else np.abs(theta).max())
    return Eigenpairs(values, ritz, residuals, residuals <= bound)


@dataclass
class Density:
    nodes: np.ndarray  # (probes, m) Ritz values per probe
    weights: np.ndarray  # (probes, m) quadrature weights per probe (each row sums to 1)

    def fraction_below(self, threshold: float) -> tuple[float, float]:
        """Estimated fraction of eigenvalues < threshold, and its standard error over probes."""
        per_probe = np.where(self.nodes < threshold, self.weights, 0.0).sum(1)
        return float(per_probe.mean()), _stderr(per_probe)

    def trace(self) -> tuple[float, float]:
        """tr(H) = p * sum_j tau_j theta_j per probe: estimate and standard error."""
        p = self.size
        per_probe = p * (self.weights * self.nodes).sum(1)
        return float(per_probe.mean()), _stderr(per_probe)

    size: int = 0


def _stderr(samples: np.ndarray) -> float:
    return float(samples.std(ddof=1) / math.sqrt(len(samples))) if len(samples) > 1 else math.inf


def slq_density(op, probes: int, steps: int, seed: int = 0) -> Density:
    rng = np.random.default_rng(seed)
    p = op.shape[0]
    nodes = np.full((probes, steps), np.nan)
    weights = np.zeros((probes, steps))
    for i in range(probes):
        z = rng.choice([-1.0, 1.0], size=p)
        alpha, beta, _ = lanczos(op, z, steps)
        theta, vectors = scipy.linalg.eigh_tridiagonal(alpha, beta)
        nodes[i, : len(theta)] = theta
        weights[i, : len(theta)] = vectors[0] ** 2
    nodes = np.where(np.isnan(nodes), 0.0, nodes)
    return Density(nodes, weights, size=p)


def hutchinson_trace(op, probes: int, seed: int = 0) -> tuple[float, float]:
    """tr(H) estimate and its standard error from Rademacher probes z^T H z."""
    rng = np.random.default_rng(seed)
    samples = np.array(
        [
            z @ op.matvec(z)
            for z in (rng.choice([-1.0, 1.0], size=op.shape[0]) for _ in range(probes))
        ]
    )
    return float(samples.mean()), _stderr(samples)
