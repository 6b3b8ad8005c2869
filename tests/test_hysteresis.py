"""Two branches of minima and a hysteresis window in closed form: the chain machinery
(``chain.settle``, ``chain.points.run_chain``, ``chain.minima``) on a two-parameter J whose
critical points are the roots of a cubic.

theta = (w, b), w decayed, b a bias (not decayed), one "image" so lambda/n = lambda:

    L(w, b) = w^4/4 - w^2/2 - s w + (b - w)^2 / 2,      J = L + (lambda/2) w^2.

grad_b J = 0 gives b = w, and then grad_w J = 0 is the cubic w^3 + (lambda - 1) w - s = 0. For
s > 0 and lambda below the fold lambda_f = 1 - (27 s^2 / 4)^(1/3) it has three roots: the two
outer ones are minima (det H = 3 w^2 + lambda - 1 > 0), the middle one a saddle; the positive
root is the lower minimum (the tilt s w favours it). At lambda_f the negative branch folds
away. So the ascending chain started on the negative branch stays there up to lambda_f and
jumps; the descending (graduated) chain from the top stays on the positive branch: they
differ exactly on the window below lambda_f, and cold starts from both sides find both.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from l2path.chain.minima import best_found_drops, graduated, minima_by_lambda
from l2path.chain.points import ChainSettings, describe, run_chain
from l2path.chain.records import ChainDirection
from l2path.chain.settle import settle
from l2path.curvature.classes import PointClass
from l2path.curvature.polish import Polish
from l2path.model.costs import get_cost
from l2path.objective import Objective

TILT = 0.1
FOLD = 1 - (27 * TILT**2 / 4) ** (1 / 3)  # 0.5928
GRID = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.55, 0.65, 0.8, 1.0, 1.5]
SETTINGS = ChainSettings(Polish(tol=1e-12, newton_iterations=100), collapse_ratio=0.0)


class TwoBranches(Objective):
    """J of the module as an ``Objective`` (sizes [1, 1]: theta = (w, b), w the one weight)."""

    def __init__(self, lam: float = 0.0, *_):
        one = torch.ones(1, 1, dtype=torch.float64)
        super().__init__([1, 1], one, one, get_cost("quadratic"), lam)

    def at(self, lam: float) -> "TwoBranches":
        return TwoBranches(lam)

    def data_loss(self, theta: torch.Tensor) -> torch.Tensor:
        w, b = theta[0], theta[1]
        return w**4 / 4 - w**2 / 2 - TILT * w + (b - w) ** 2 / 2


class Problem:
    """What the chain runs on: J at any lambda, and the in-sample 'MSE' (here L)."""

    mse = TwoBranches(0.0)

    def at(self, lam: float) -> TwoBranches:
        return TwoBranches(lam)


def roots(lam: float) -> list[float]:
    """The real roots of w^3 + (lambda - 1) w - s, ascending."""
    values = np.roots([1.0, 0.0, lam - 1.0, -TILT])
    return sorted(float(r.real) for r in values if abs(r.imag) < 1e-9)


def point(w: float) -> torch.Tensor:
    return torch.tensor([w, w], dtype=torch.float64)


def described(direction, links, seed=0):
    return [
        describe(Problem(), seed, direction, k, link, None, 1e-3, SETTINGS)
        for k, link in enumerate(links)
    ]


def test_the_closed_form_has_two_branches_below_the_fold_and_one_above():
    assert all(len(roots(lam)) == 3 for lam in GRID if lam < FOLD)
    assert all(len(roots(lam)) == 1 for lam in GRID if lam > FOLD)


def test_ascending_and_descending_chains_differ_exactly_on_the_hysteresis_window():
    problem = Problem()
    up = run_chain(problem, point(-1.0), GRID, ChainDirection.UP, SETTINGS)
    down = run_chain(problem, point(1.0), GRID[::-1], ChainDirection.DOWN, SETTINGS)
    for link in up:  # the negative branch while it exists, then the only one
        assert float(link.theta[0]) == pytest.approx(roots(link.lam)[0], abs=1e-9)
    for link in down:  # the positive branch all the way down
        assert float(link.theta[0]) == pytest.approx(roots(link.lam)[-1], abs=1e-9)
    points = described(ChainDirection.UP, up) + described(ChainDirection.DOWN, down)
    assert all(p.proved_minimum for p in points)
    compared = graduated(points)
    window = {c.lam for c in compared if c.lower}
    assert window == {lam for lam in GRID if lam < FOLD}
    for c in compared:  # the gain against J at the two roots in closed form
        low, high = roots(c.lam)[0], roots(c.lam)[-1]
        j = lambda w: w**4 / 4 - w**2 / 2 - TILT * w + c.lam * w**2 / 2  # noqa: E731
        expected = (j(low) - j(high)) / abs(j(low)) if c.lam < FOLD else 0.0
        assert c.gain == pytest.approx(expected, abs=1e-9)


def test_cold_starts_find_both_minima_inside_the_window_and_one_outside():
    problem = Problem()
    cold = [
        link
        for start in (-2.0, 2.0)
        for link in run_chain(problem, point(start), [0.3, 0.8], ChainDirection.COLD, SETTINGS)
    ]
    rows = {row.lam: row for row in minima_by_lambda(described(ChainDirection.COLD, cold))}
    assert (rows[0.3].minima, rows[0.8].minima) == (2, 1)
    assert rows[0.3].best_objective == pytest.approx(
        float(problem.at(0.3).value(point(roots(0.3)[-1]))), abs=1e-12
    )
    assert rows[0.3].mse_spread > 0.1  # the two minima's L differ: a crevasse
    assert best_found_drops(list(rows.values())) == 0


def test_the_saddle_between_the_branches_is_escaped_to_the_lower_minimum():
    problem = Problem().at(0.3)
    middle = roots(0.3)[1]
    settled = settle(problem, Problem.mse, point(middle), SETTINGS.polish, max_escapes=4)
    assert settled.escapes == 1
    assert settled.curvature.curvature_class is PointClass.MINIMUM
    assert float(settled.polished.theta[0]) == pytest.approx(roots(0.3)[-1], abs=1e-9)
    assert settled.objective_before_escapes == pytest.approx(
        float(problem.value(point(middle))), abs=1e-12
    )


def test_without_escapes_the_polish_stays_on_the_saddle_and_it_is_proved_one():
    problem = Problem().at(0.3)
    settled = settle(problem, Problem.mse, point(roots(0.3)[1]), SETTINGS.polish, max_escapes=0)
    witness = settled.curvature.witness
    assert settled.curvature.curvature_class is PointClass.SADDLE
    # det H = 3 w^2 + lambda - 1 < 0 at the middle root: the witness's Rayleigh quotient is
    # at least the bottom eigenvalue of H = [[3 w^2 + lambda, -1], [-1, 1]]
    w = roots(0.3)[1]
    bottom = np.linalg.eigvalsh(np.array([[3 * w**2 + 0.3, -1.0], [-1.0, 1.0]]))[0]
    assert witness.witness_value == pytest.approx(bottom, rel=1e-10)
    assert witness.witness_value + witness.witness_error < -witness.delta
