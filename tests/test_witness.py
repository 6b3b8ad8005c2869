"""Classes proved both ways (l2path/chain/witness.py) and the trivial point's threshold
(l2path/chain/trivial.py), against closed forms and numpy's eigvalsh in float64."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg
import torch

from l2path.curvature.classes import PointClass
from l2path.chain.flat import dead_units, flat_directions
from l2path.curvature.inertia import certify_positive_definite, dense_hessian, inertia
from l2path.chain.settle import settle
from l2path.chain.trivial import (
    effective_weight_block,
    threshold_at,
    trivial_point,
    trivial_threshold,
)
from l2path.curvature.polish import Polish
from l2path.chain.witness import classify, eigenvalues_below, margin
from l2path.model.costs import get_cost
from l2path.objective import Objective


def assembled(matrix: np.ndarray):
    return dense_hessian(scipy.sparse.linalg.aslinearoperator(matrix), block=16)


def rotated(eigenvalues, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(eigenvalues),) * 2))
    return (q * np.asarray(eigenvalues)) @ q.T


def class_of(matrix: np.ndarray):
    hessian = assembled(matrix)
    return classify(hessian, certify_positive_definite(hessian))


def test_an_exactly_flat_direction_is_degenerate_however_the_rounding_falls():
    """One exact zero among positive eigenvalues, rotated 20 ways: rounding gives the zero
    either sign (the old rule, LDL^T pivots with no margin, called some of them saddles), the
    witness rule calls every one degenerate with one flat eigenvalue."""
    spectrum = np.concatenate([[0.0], np.geomspace(1e-3, 0.4, 39)])
    signs, old_saddles = set(), 0
    for seed in range(20):
        matrix = rotated(spectrum, seed)
        signs.add(np.sign(np.linalg.eigvalsh(assembled(matrix).matrix)[0]))
        old_saddles += inertia(assembled(matrix).matrix).negative > 0
        verdict = class_of(matrix)
        assert verdict.curvature_class is PointClass.DEGENERATE, seed
        assert (verdict.below, verdict.flat) == (0, 1)
        assert abs(verdict.witness_value) <= verdict.delta
    assert signs == {-1.0, 1.0} and old_saddles > 0  # the rounding does fall both ways


def test_a_clear_saddle_is_a_saddle_with_its_witness():
    spectrum = np.concatenate([[-2e-5, -1e-4], np.geomspace(1e-3, 0.4, 38)])
    verdict = class_of(rotated(spectrum, 3))
    assert verdict.curvature_class is PointClass.SADDLE and verdict.below == 2
    assert verdict.witness_value == pytest.approx(-1e-4, rel=1e-9)
    assert verdict.witness_value + verdict.witness_error < -verdict.delta
    matrix = assembled(rotated(spectrum, 3)).matrix
    v = verdict.witness
    assert np.linalg.norm(v) == pytest.approx(1.0) and v @ matrix @ v < -verdict.delta


def test_a_negative_eigenvalue_inside_the_margin_is_not_a_saddle():
    matrix = rotated(np.concatenate([[0.0], np.geomspace(1e-3, 0.4, 39)]), 1)
    delta = margin(assembled(matrix))
    verdict = class_of(matrix - 0.5 * delta * np.eye(40))  # bottom at -delta/2
    assert verdict.curvature_class is PointClass.DEGENERATE and verdict.flat == 1


def test_a_positive_definite_matrix_is_a_minimum_with_its_lower_bound():
    spectrum = np.geomspace(1e-6, 0.4, 40)
    verdict = class_of(rotated(spectrum, 2))
    assert verdict.curvature_class is PointClass.MINIMUM
    assert 0 < verdict.lower_bound <= 1e-6 and (verdict.below, verdict.flat) == (0, 0)


# --- the trivial point w = 0 -----------------------------------------------------------------


SIZES = [6, 3, 2]


def trivial_problem(lam: float, cost: str):
    """A tiny network at w = 0 with random hidden biases and the output biases optimal
    (sigmoid(b_out) = the labels' mean: mean dC/db_out = 0 for both costs)."""
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.random((40, SIZES[0])))
    y = torch.as_tensor(rng.random((40, SIZES[-1])))
    objective = Objective(SIZES, x, y, get_cost(cost), lam)
    mean = y.mean(0)
    theta = torch.cat(
        [
            torch.zeros(objective.n_weights, dtype=torch.float64),
            torch.as_tensor(rng.standard_normal(SIZES[1])),
            torch.log(mean / (1 - mean)),
        ]
    )
    return objective, theta


def autograd_hessian(objective, theta) -> np.ndarray:
    return torch.autograd.functional.hessian(objective.value, theta).numpy()


@pytest.mark.parametrize("cost", ["quadratic", "cross_entropy"])
def test_the_trivial_threshold_against_its_formula_and_eigvalsh(cost):
    objective, theta = trivial_problem(0.0, cost)
    assert float(objective.gradient(theta).norm()) < 1e-12  # critical at every lambda
    n, mask, outputs = objective.n, objective.weight_mask().numpy(), SIZES[-1]
    h0 = autograd_hessian(objective, theta)
    hidden_biases = slice(objective.n_weights, objective.n_weights + SIZES[1])
    assert np.abs(h0[hidden_biases]).max() < 1e-14  # flat rows (zero up to b_2 rounding)
    block = effective_weight_block(h0, mask, 0.0, outputs)
    inputs = SIZES[0] * SIZES[1]
    np.testing.assert_allclose(block[:inputs, :inputs], 0, atol=1e-15)  # W_1-W_1
    np.testing.assert_allclose(block[inputs:, inputs:], 0, atol=1e-15)  # W_2-W_2 after Schur
    cross = h0[:inputs, inputs : objective.n_weights]  # C, the W_1-W_2 block
    sigma = np.linalg.svd(cross, compute_uv=False)[0]
    n_study = 5 * n  # a study five times the subset: lambda/n kept
    lam_c = trivial_threshold(h0, mask, 0.0, outputs, n_study)
    assert lam_c == pytest.approx(n_study * sigma, rel=1e-10)  # lambda_c / n = sigma_max(C)
    for factor, expected in ((1.01, PointClass.DEGENERATE), (0.99, PointClass.SADDLE)):
        lam_sub = factor * lam_c / n_study * n  # the subset's lambda at the same lambda/n
        h = autograd_hessian(objective.at(lam_sub), theta)
        assert trivial_threshold(h, mask, lam_sub / n, outputs, n_study) == pytest.approx(
            lam_c, rel=1e-9
        )
        spectrum = np.linalg.eigvalsh(h)
        verdict = classify(assembled(h), certify_positive_definite(assembled(h)))
        assert verdict.curvature_class is expected
        if expected is PointClass.DEGENERATE:  # flat exactly along the hidden biases
            assert spectrum[0] > -1e-12 and verdict.flat == SIZES[1] and verdict.below == 0
        else:
            assert spectrum[0] < -1e-4 * abs(spectrum[-1]) and verdict.below >= 1


def test_the_flat_directions_of_the_trivial_point_are_its_hidden_biases():
    objective, theta = trivial_problem(0.0, "quadratic")
    h0 = autograd_hessian(objective, theta)
    lam_c = trivial_threshold(h0, objective.weight_mask().numpy(), 0.0, SIZES[-1], objective.n)
    h = autograd_hessian(objective.at(1.01 * lam_c), theta)
    verdict = classify(assembled(h), certify_positive_definite(assembled(h)))
    flat = flat_directions(h, verdict.delta, theta.numpy(), SIZES)
    assert flat.count == verdict.flat == SIZES[1]
    assert flat.dead_units == (0, 1, 2)  # every unit is dead at w = 0
    assert sorted(flat.blocks) == [f"b1[{j}] (dead)" for j in range(SIZES[1])]
    assert flat.describe() == "3 flat: " + ", ".join(f"b1[{j}] (dead)" for j in range(3))


def test_a_live_unit_is_not_dead():
    theta = np.zeros(SIZES[0] * SIZES[1] + SIZES[1] * SIZES[2] + SIZES[1] + SIZES[2])
    theta[SIZES[0] * 1 + 2] = 0.5  # W_1[1, 2]: unit 1 sees an input
    assert dead_units(theta, SIZES) == (0, 2)


def test_the_trivial_point_keeps_the_hidden_biases_and_is_critical_at_every_lambda():
    objective, expected = trivial_problem(0.0, "quadratic")
    somewhere = expected + torch.as_tensor(np.random.default_rng(1).standard_normal(len(expected)))
    somewhere[objective.n_weights : objective.n_weights + SIZES[1]] = expected[
        objective.n_weights : objective.n_weights + SIZES[1]
    ]
    point = trivial_point(somewhere, objective)
    torch.testing.assert_close(point, expected, rtol=0, atol=1e-15)
    for lam in (0.0, 0.3, 30.0):
        assert float(objective.at(lam).gradient(point).norm()) < 1e-14
    missing = Objective(SIZES, objective.x, 0 * objective.y, objective.cost, 0.0)
    with pytest.raises(ValueError, match="lacks a class"):
        trivial_point(somewhere, missing)


def test_lambda_c_of_the_chain_equals_the_autograd_threshold():
    objective, theta = trivial_problem(0.0, "cross_entropy")
    h0 = autograd_hessian(objective, theta)
    mask = objective.weight_mask().numpy()
    expected = trivial_threshold(h0, mask, 0.0, SIZES[-1], 7 * objective.n)
    assert threshold_at(objective.at(0.2), theta, 7 * objective.n) == pytest.approx(
        expected, rel=1e-10
    )


def test_graduated_descent_leaves_the_trivial_point_below_lambda_c_and_only_there():
    """Settled at w = 0: above lambda_c it stays (degenerate, flat along b_1, nothing to
    escape); below it the witness is a direction of descent and the escape ends on a point with
    weights and no proved negative curvature, J lower than at w = 0."""
    objective, theta = trivial_problem(0.0, "quadratic")
    lam_c = threshold_at(objective, theta, objective.n)
    polish = Polish(tol=1e-10, newton_iterations=200)
    above = settle(objective.at(1.1 * lam_c), objective.at(0.0), theta, polish, max_escapes=4)
    assert above.escapes == 0 and above.curvature.curvature_class is PointClass.DEGENERATE
    assert float(above.polished.theta[: objective.n_weights].abs().max()) < 1e-12
    below_problem = objective.at(0.5 * lam_c)
    below = settle(below_problem, objective.at(0.0), theta, polish, max_escapes=4)
    assert below.escapes >= 1
    assert below.curvature.witness.below == 0  # a minimum, or degenerate without negatives
    assert float(below.polished.theta[: objective.n_weights].abs().max()) > 1e-3
    assert float(below_problem.value(below.polished.theta)) < below.objective_before_escapes


def test_every_unit_of_a_collapsed_network_is_dead():
    """At ||w|| ~ 1e-10 (the ascending chain's collapsed end) no weight is large enough to
    keep a unit alive: each is dead, whatever the largest weight."""
    size = SIZES[0] * SIZES[1] + SIZES[1] * SIZES[2] + SIZES[1] + SIZES[2]
    theta = np.zeros(size)
    theta[: SIZES[0] * SIZES[1] + SIZES[1] * SIZES[2]] = 1e-10
    theta[-(SIZES[1] + SIZES[2]) :] = 0.7  # biases do not count
    assert dead_units(theta, SIZES) == (0, 1, 2)


@pytest.mark.parametrize("zeros", [1, 6])
def test_the_flat_eigenpairs_by_inverse_iteration_equal_lapacks(zeros):
    """A cluster of exact zeros (dead units' biases) among positive eigenvalues: the block
    inverse iteration used when no eigenvalue lies below -delta returns the same eigenvalues
    and the same subspace as the dense solver."""
    from l2path.chain.witness import low_eigenpairs

    spectrum = np.concatenate([np.zeros(zeros), np.geomspace(1e-4, 0.4, 60 - zeros)])
    matrix = assembled(rotated(spectrum, 5)).matrix
    delta = margin(assembled(matrix))
    fast = low_eigenpairs(matrix, delta, below=0, flat=zeros)
    dense = low_eigenpairs(matrix, delta)  # below unknown: LAPACK
    assert len(fast[0]) == len(dense[0]) == zeros
    np.testing.assert_allclose(fast[0], dense[0], rtol=0, atol=delta)
    overlap = np.linalg.svd(fast[1].T @ dense[1], compute_uv=False)
    np.testing.assert_allclose(overlap, 1.0, rtol=0, atol=1e-10)  # one subspace


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eigenvalues_below_a_bound_count_as_eigvalsh_counts_them(seed):
    rng = np.random.default_rng(seed)
    eigenvalues = np.concatenate([rng.uniform(-2, -0.1, seed), rng.uniform(0.1, 2, 30 - seed)])
    matrix = rotated(eigenvalues, seed)
    for bound in (-3.0, -0.05, 0.05, 1.0, 3.0):  # Cholesky completes at the first only
        assert eigenvalues_below(matrix, bound) == int((eigenvalues < bound).sum())


def test_the_chain_certificate_leaves_the_count_to_classify():
    hessian = assembled(rotated([-1.0, 1e-20, 2.0, 3.0], 4))
    counted = certify_positive_definite(hessian)
    uncounted = certify_positive_definite(hessian, count_inertia=False)
    assert counted.inertia.negative == 1 and uncounted.inertia is None
    assert not uncounted.factorised and classify(hessian, uncounted).below == 1
