"""Two minima are one modulo the hidden units' permutations and dead units' biases."""

from __future__ import annotations

import numpy as np
import pytest

from l2path.chain.alignment import aligned_distance

SIZES = [6, 5, 3]  # W_1 (5, 6), W_2 (3, 5), b_1 (5), b_2 (3): 53 parameters


def parts(theta):
    d, h, o = SIZES
    return (
        theta[: d * h].reshape(h, d),
        theta[d * h : d * h + o * h].reshape(o, h),
        theta[d * h + o * h : d * h + o * h + h],
        theta[-o:],
    )


def join(w1, w2, b1, b2):
    return np.concatenate([w1.ravel(), w2.ravel(), b1, b2])


def random_theta(seed):
    d, h, o = SIZES
    return np.random.default_rng(seed).normal(size=d * h + o * h + h + o)


def test_a_permutation_of_hidden_units_is_distance_zero():
    theta = random_theta(0)
    w1, w2, b1, b2 = parts(theta)
    order = np.array([3, 0, 4, 1, 2])
    permuted = join(w1[order], w2[:, order], b1[order], b2)
    assert np.linalg.norm(theta - permuted) > 1.0
    assert aligned_distance(theta, permuted, SIZES) == 0.0


def test_a_dead_units_bias_does_not_count_and_a_live_units_does():
    theta = random_theta(1)
    w1, w2, b1, b2 = parts(theta.copy())
    w1[2], w2[:, 2] = 0.0, 0.0
    dead = join(w1, w2, b1, b2)
    moved = dead.copy()
    moved[SIZES[0] * SIZES[1] + SIZES[2] * SIZES[1] + 2] += 0.7  # b_1[2]
    assert aligned_distance(dead, moved, SIZES) == 0.0
    live = dead.copy()
    live[SIZES[0] * SIZES[1] + SIZES[2] * SIZES[1] + 1] += 0.7  # b_1[1]: a live unit
    assert np.isclose(aligned_distance(dead, live, SIZES), 0.7, rtol=1e-12)


def canonical(theta):
    """theta with every unit's W_1 row led by a positive entry (its sign flip, b_2 shifted)."""
    w1, w2, b1, b2 = (part.copy() for part in parts(theta))
    flip = w1[np.arange(len(w1)), np.abs(w1).argmax(axis=1)] < 0
    b2 += w2[:, flip].sum(axis=1)
    w1[flip], b1[flip] = -w1[flip], -b1[flip]
    w2[:, flip] *= -1
    return join(w1, w2, b1, b2)


def test_the_distance_is_the_best_matching_by_brute_force():
    """Between points in canonical signs, the distance is the best of all 5! permutations."""
    from itertools import permutations

    a, b = canonical(random_theta(2)), canonical(random_theta(3))
    wa, va, ba, ca = parts(a)
    wb, vb, bb, cb = parts(b)
    best = min(
        np.linalg.norm(a - join(wb[list(p)], vb[:, list(p)], bb[list(p)], cb))
        for p in permutations(range(SIZES[1]))
    )
    assert np.isclose(aligned_distance(a, b, SIZES), best, rtol=1e-12)


def test_minima_with_one_objective_count_once_per_aligned_point():
    """Three cold points with the same J at one lambda: two are one minimum up to a
    permutation of units, the third lies apart, so the lambda has two minima, one of them
    sharing another's J."""
    from dataclasses import replace

    from l2path.chain.minima import minima_by_lambda
    from l2path.chain.records import ChainDirection
    from test_chain_answers import point

    a = random_theta(4)
    w1, w2, b1, b2 = parts(a)
    order = np.array([1, 0, 2, 4, 3])
    thetas = [a, join(w1[order], w2[:, order], b1[order], b2), random_theta(5)]
    points = [replace(point(ChainDirection.COLD, 0, 1.0, 0.1), seed=seed) for seed in range(3)]
    (row,) = minima_by_lambda(points, lambda p: thetas[p.seed], SIZES)
    assert (row.minima, row.apart_at_same_objective) == (2, 1)
    (by_objective,) = minima_by_lambda(points)
    assert by_objective.minima == 1


def test_a_sign_flipped_unit_is_distance_zero_and_the_same_objective():
    """(w, b, v) -> (-w, -b, -v) with b_2 + v: the sigmoid's flip leaves J unchanged, and the
    distance is 0; without b_2's shift it is a different point."""
    import torch

    from l2path.model.costs import get_cost
    from l2path.objective import Objective

    theta = random_theta(6)
    w1, w2, b1, b2 = parts(theta.copy())
    flipped_w1, flipped_w2, flipped_b1 = w1.copy(), w2.copy(), b1.copy()
    flipped_w1[3], flipped_w2[:, 3], flipped_b1[3] = -w1[3], -w2[:, 3], -b1[3]
    flipped = join(flipped_w1, flipped_w2, flipped_b1, b2 + w2[:, 3])
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.random((11, SIZES[0])))
    y = torch.nn.functional.one_hot(torch.as_tensor(rng.integers(0, 3, 11)), 3).double()
    objective = Objective(SIZES, x, y, get_cost("cross_entropy"), 0.9)
    assert float(objective.value(torch.as_tensor(flipped))) == pytest.approx(
        float(objective.value(torch.as_tensor(theta))), rel=1e-14
    )
    assert aligned_distance(theta, flipped, SIZES) <= 1e-14
    unshifted = join(flipped_w1, flipped_w2, flipped_b1, b2)
    assert aligned_distance(theta, unshifted, SIZES) == pytest.approx(np.linalg.norm(w2[:, 3]))
