"""The inertia certificate (l2path/curvature/inertia.py) against numpy's eigvalsh, float64:
counts of negative eigenvalues, a lower bound on lambda_min that never exceeds the true one,
and a negative eigenvalue that Lanczos cannot see but the factorisation finds."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg
import torch

from l2path.curvature.certificate import classify_bottom
from l2path.curvature.inertia import (
    certify_positive_definite,
    dense_hessian,
    gamma,
    inertia,
)
from l2path.curvature.spectrum import lanczos_extreme
from l2path.model.costs import get_cost
from l2path.objective import Objective


def symmetric_with_spectrum(eigenvalues: np.ndarray, seed: int = 0) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(eigenvalues),) * 2))
    return (q * eigenvalues) @ q.T


def test_gamma_is_the_inner_product_bound():
    assert gamma(1) == pytest.approx(2.0**-53, rel=1e-15)
    assert gamma(1001) == pytest.approx(1001 * 2.0**-53, rel=1e-12)
    with pytest.raises(ValueError):
        gamma(2**53)


def test_dense_hessian_of_a_matrix_operator_is_the_matrix():
    matrix = symmetric_with_spectrum(np.linspace(-1.0, 2.0, 37))
    dense = dense_hessian(scipy.sparse.linalg.aslinearoperator(matrix), block=8)
    np.testing.assert_allclose(dense.matrix, matrix, rtol=0, atol=1e-14)
    assert dense.products == 37 and dense.asymmetry < 1e-14


@pytest.mark.parametrize("negatives", [0, 1, 4])
def test_inertia_counts_negative_eigenvalues_like_eigvalsh(negatives):
    eigenvalues = np.concatenate([-np.geomspace(1e-6, 1.0, negatives), np.geomspace(1e-5, 3.0, 30)])
    matrix = symmetric_with_spectrum(eigenvalues, seed=negatives)
    counts = inertia(matrix)
    reference = np.linalg.eigvalsh(matrix)
    assert counts.negative == int((reference < 0).sum()) == negatives
    assert counts.positive == 30 and counts.zero == 0


def test_a_positive_definite_matrix_is_proved_with_a_bound_below_its_bottom():
    bottom = 1e-7
    matrix = symmetric_with_spectrum(np.concatenate([[bottom], np.geomspace(1e-4, 2.0, 59)]))
    dense = dense_hessian(scipy.sparse.linalg.aslinearoperator(matrix))
    certificate = certify_positive_definite(dense)
    true_bottom = float(np.linalg.eigvalsh(dense.matrix)[0])
    assert certificate.factorised and certificate.proves_minimum
    assert 0 < certificate.lower_bound <= true_bottom
    assert certificate.rounding < 1e-12


def test_a_matrix_whose_bottom_is_below_the_shift_is_not_proved():
    matrix = symmetric_with_spectrum(np.concatenate([[1e-16], np.geomspace(1e-3, 1.0, 19)]))
    certificate = certify_positive_definite(
        dense_hessian(scipy.sparse.linalg.aslinearoperator(matrix))
    )
    assert not certificate.proves_minimum


def hidden_negative_direction(p: int = 60, seed: int = 0) -> np.ndarray:
    """H with eigenvalue -1e-3 along a unit vector orthogonal to the Lanczos start of ``seed``
    (``spectrum.lanczos_extreme`` starts from default_rng(seed).standard_normal(p)), and five
    distinct positive eigenvalues elsewhere: the Krylov space from that start is invariant after
    five steps and never contains the negative direction."""
    start = np.random.default_rng(seed).standard_normal(p)
    basis, _ = np.linalg.qr(
        np.column_stack([start, np.random.default_rng(7).standard_normal((p, p - 1))])
    )
    hidden = basis[:, 1]  # orthogonal to the start
    others = basis[:, 2:]
    positive = np.repeat([0.5, 1.0, 2.0, 3.0, 4.0], (p - 2 + 4) // 5)[: p - 2]
    start_direction = basis[:, 0]
    return (
        -1e-3 * np.outer(hidden, hidden)
        + 0.5 * np.outer(start_direction, start_direction)
        + (others * positive) @ others.T
    )


def test_lanczos_misses_a_hidden_negative_eigenvalue_and_the_certificate_catches_it():
    matrix = hidden_negative_direction()
    op = scipy.sparse.linalg.aslinearoperator(matrix)
    pair = lanczos_extreme(op, 1, "SA", 1e-10, 60, seed=0)
    mu, residual = float(pair.values[0]), float(pair.residuals[0])
    assert mu > 0.4 and residual < 1e-8  # an accurate eigenpair, but not the bottom
    assert classify_bottom(mu, residual, residual) == "minimum"  # Lanczos alone says minimum
    assert np.linalg.eigvalsh(matrix)[0] == pytest.approx(-1e-3, rel=1e-9)
    certificate = certify_positive_definite(dense_hessian(op))
    assert not certificate.factorised and not certificate.proves_minimum
    assert certificate.inertia.negative == 1 and certificate.inertia.positive == len(matrix) - 1


def small_network(lam: float) -> tuple[Objective, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    sizes = [6, 4, 3]
    x = torch.rand(40, 6, generator=generator, dtype=torch.float64)
    y = torch.nn.functional.one_hot(torch.arange(40) % 3, 3).to(torch.float64)
    objective = Objective(sizes, x, y, get_cost("quadratic"), lam)
    theta = torch.randn(objective.size, generator=generator, dtype=torch.float64)
    return objective, theta


def test_dense_hessian_of_a_network_matches_autograd_and_its_inertia_eigvalsh():
    objective, theta = small_network(lam=0.3)
    dense = dense_hessian(objective.operator(theta), block=5)
    reference = torch.autograd.functional.hessian(objective.value, theta).numpy()
    np.testing.assert_allclose(dense.matrix, reference, rtol=0, atol=1e-12)
    assert dense.asymmetry < 1e-12
    eigenvalues = np.linalg.eigvalsh(reference)
    assert inertia(dense.matrix).negative == int((eigenvalues < 0).sum()) > 0  # a random point
    certificate = certify_positive_definite(dense)
    assert not certificate.proves_minimum and certificate.inertia.negative > 0
