"""The closed-form dense Hessian of a one-hidden-layer network against autograd's dense
Hessian of the same objective, in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from l2path.chain.exact_hessian import applies, one_hidden_layer_hessian
from l2path.chain.flat import dead_units
from l2path.chain.hessian import dense_hessian_at
from l2path.model.costs import get_cost
from l2path.objective import Objective


def problem(cost: str, sizes=(9, 6, 4), n=23, lam=0.8, seed=0) -> Objective:
    rng = np.random.default_rng(seed)
    x = torch.as_tensor(rng.random((n, sizes[0])))
    labels = rng.integers(0, sizes[-1], n)
    y = torch.nn.functional.one_hot(torch.as_tensor(labels), sizes[-1]).to(torch.float64)
    return Objective(list(sizes), x, y, get_cost(cost), lam)


def autograd_hessian(objective: Objective, theta: torch.Tensor) -> np.ndarray:
    return torch.autograd.functional.hessian(objective.value, theta).numpy()


def random_theta(objective: Objective, seed: int, scale: float = 1.5) -> torch.Tensor:
    return torch.as_tensor(np.random.default_rng(seed).normal(0, scale, objective.size))


@pytest.mark.parametrize("cost", ["cross_entropy", "quadratic"])
@pytest.mark.parametrize("seed", [1, 2])
def test_closed_form_equals_autograd(cost, seed):
    objective = problem(cost, seed=seed)
    theta = random_theta(objective, seed)
    exact = one_hidden_layer_hessian(objective, theta)
    reference = autograd_hessian(objective, theta)
    difference = np.abs(exact.matrix - reference).max()
    assert difference <= 1e-14 * np.abs(reference).max()
    # the stated error bound covers both matrices' rounding (each within it)
    assert difference <= 2 * exact.asymmetry
    assert np.array_equal(exact.matrix, exact.matrix.T)  # symmetric by construction
    assert exact.products == 0


def test_a_dead_units_bias_row_is_exact():
    """A hidden unit j with W_1[j] = 0 and W_2[:, j] = 0: z_1j = b_1j on every image, so b_1j's
    row of H is exactly 0 except at W_2[k, j], where it is s'(b_1j) dL/db_2k (0 at a critical
    point: the flat direction the class margins must see, not hidden by assembly rounding)."""
    objective = problem("cross_entropy")
    theta = random_theta(objective, 3)
    d, h, o = objective.sizes
    j, bias = 2, d * h + o * h + 2
    theta[j * d : (j + 1) * d] = 0.0  # W_1[j]
    theta[d * h + j : d * h + o * h : h] = 0.0  # W_2[:, j]
    assert dead_units(theta.numpy(), objective.sizes) == (j,)
    row = one_hidden_layer_hessian(objective, theta).matrix[bias]
    couples = d * h + j + h * np.arange(o)  # W_2[k, j]
    slope = torch.sigmoid(theta[bias]) * (1 - torch.sigmoid(theta[bias]))
    b2_gradient = objective.gradient(theta)[-o:]
    np.testing.assert_allclose(row[couples], (slope * b2_gradient).numpy(), rtol=1e-13, atol=0)
    row[couples] = 0.0
    assert not row.any()


def test_other_depths_fall_back_to_products():
    objective = problem("cross_entropy", sizes=(5, 4, 3, 2), n=7)
    assert not applies(objective)
    with pytest.raises(ValueError, match="sizes"):
        one_hidden_layer_hessian(objective, random_theta(objective, 0))
    theta = random_theta(objective, 0)
    dense = dense_hessian_at(objective, theta)
    assert dense.products == objective.size
    assert np.abs(dense.matrix - autograd_hessian(objective, theta)).max() <= 1e-13
