"""The converged chain's typed rows (``rows.Row``): one per point and one per step.

| type | file |
|---|---|
| ``ChainPoint`` | ``results/chain_points.csv``: every point of every converged chain |
| ``ChainStep`` | ``results/chain_steps.csv``: every step between two neighbouring points |
| ``ChainRecord`` | ``results/chains.csv``: every chain: lambdas, escapes, weights, lambda_c |

A step's ``change`` is always taken in the order of lambda (the point at the larger lambda minus
the one at the smaller), whichever way the chain ran, so ``change < 0`` means the in-sample MSE
fell as lambda rose: a *drop*, the thing the question asks about.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..curvature.classes import PointClass
from ..rows import Row, column


class ChainDirection(str, Enum):
    """Which way a converged chain runs along the grid."""

    UP = "ascending"
    DOWN = "descending"  # graduated optimisation: from w = 0 at the top of the grid down
    COLD = "cold"  # not a chain: the polish of a fresh initialisation at every lambda


class ClassProof(str, Enum):
    """What a point's class rests on."""

    INERTIA = "inertia"  # the dense Hessian's Cholesky/LDL^T (``curvature.inertia``): a proof
    LANCZOS = "lanczos"  # the bottom Ritz pair: "minimum" holds if Lanczos found the bottom
    NONE = ""  # not converged: no class is claimed


@dataclass(frozen=True, kw_only=True)
class ChainPoint(Row):
    """A point of a converged chain: the polish of J at ``lam`` started from the chain's previous
    point (the first: from the study's SGD point), its certificate and its losses, all on the
    subset problem. ``inertia_*`` are None where the dense certificate was not run."""

    seed: int
    direction: ChainDirection
    index: int  # position along the chain, 0 first
    lam: float = column("lambda")  # the study's lambda
    lam_sub: float = column("lambda_sub")  # the subset problem's lambda
    converged: bool  # ||grad J|| <= the polish's tolerance
    lbfgs_iterations: int
    newton_iterations: int
    grad_norm: float
    newton_step_norm: float
    newton_residual: float
    newton_mse_change: float
    certified: bool  # the Newton-step certificate (``curvature.certificate``)
    bottom: float  # mu, the bottom Ritz value (Lanczos)
    bottom_residual: float
    delta: float
    curvature_class: PointClass = column("class")
    class_proof: ClassProof
    inertia_lower_bound: float | None = None  # minimum's witness: lambda_min(H) >= this, proved
    inertia_negative: int | None = (
        None  # eigenvalues < -class_margin, counted (LDL^T of H + delta I)
    )
    class_margin: float | None = None  # delta: rounding bound + products' error (chain.witness)
    saddle_witness: float | None = None  # saddle's witness: v^T H v < -delta (NaN when a minimum)
    flat_eigenvalues: int | None = None  # degenerate: eigenvalues in [-delta, delta]
    flat_directions: str = ""  # degenerate: where they live, e.g. "1 flat: b1[4] (dead)"
    predicted_dL_dlambda: float  # the lemma's (lambda_sub / n^2) w^T H^-1 w
    data_loss: float
    mse: float
    objective: float
    weight_l2: float
    distance_from_previous: float  # ||theta - theta of the previous point|| (0 for the first)
    hvps: int  # Hessian-vector products of the polish and of the dense H
    escapes: int = 0  # saddles left along their witness and re-polished (``chain.settle``)
    objective_before_escapes: float | None = None  # J at the first polished point (a saddle)

    @property
    def proved_minimum(self) -> bool:
        return self._proved(PointClass.MINIMUM)

    @property
    def proved_saddle(self) -> bool:
        return self._proved(PointClass.SADDLE)

    @property
    def degenerate(self) -> bool:
        return self._proved(PointClass.DEGENERATE)

    @property
    def minimum_found(self) -> bool:
        """A converged point with no negative curvature proved: a proved minimum, or degenerate
        (no eigenvalue below -delta)."""
        return self.proved_minimum or self.degenerate

    def _proved(self, kind: PointClass) -> bool:
        return (
            self.converged
            and self.curvature_class is kind
            and (self.class_proof is ClassProof.INERTIA)
        )


class StepVerdictKind(str, Enum):
    """What the pseudo-arclength continuation found between a step's two points."""

    ONE_BRANCH = "one branch of minima"  # the lemma: no drop
    FOLD_JUMP = "fold jump"  # the branch turns back at a located fold inside the step
    SADDLE_BRANCH = "saddle branch"  # the branch between them is not one of minima
    BRANCH_SWITCH = "branch switch"  # the branch goes on, but the polish left it
    BRANCH_LOST = "branch lost"  # the corrector failed: no claim
    NOT_FOLLOWED = "not followed"  # a point not converged, or no drop where chain.follow: drops


@dataclass(frozen=True, kw_only=True)
class ChainStep(Row):
    """A step between neighbouring points of a converged chain, in lambda order."""

    seed: int
    direction: ChainDirection
    lambda_low: float
    lambda_high: float
    mse_low: float
    mse_high: float
    change: float  # mse_high - mse_low: < 0 is a drop
    drop: bool
    distance: float  # ||theta_high - theta_low||
    verdict: StepVerdictKind = StepVerdictKind.NOT_FOLLOWED
    fold_lambda: float | None = None  # lambda* of the located fold (study's lambda)
    fold_lambda_error: float | None = None  # the turning point's lambda is within this of it
    fold_tangent_before: float | None = None  # t_tau = dtau/ds at the two ends of the last
    fold_tangent_after: float | None = None  # bisection bracket: opposite signs at a fold
    fold_bottom: float | None = None  # mu at lambda*
    fold_fit_k: float | None = None  # mu^2 = k |lambda* - lambda| on the approach
    fold_fit_residual: float | None = None  # the fit's relative RMS residual
    arc_points: int | None = None  # accepted pseudo-arclength points between the two
    lemma_ratio: float | None = None  # secant dL/dlambda over the mean predicted slope
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class ChainRecord(Row):
    """One chain (or one cold start's polishes): where it ran and what it kept."""

    seed: int  # the chain seed (cold: the fresh initialisation's seed)
    direction: ChainDirection
    points: int
    lambda_first: float  # the chain's first lambda (descending: the largest)
    lambda_last: float
    escapes: int  # over its points
    weights: str  # the .npz of its points' full [784, 30, 10] weights (``chain.weights``)
    # descending: the trivial point w = 0 it starts from (the ascending chain's last point with
    # its weights set to 0): lambda_c of ``chain.trivial``, and the largest lambda whose point
    # has left w = 0 (||w|| > 0); None for the other directions
    trivial_threshold: float | None = None
    left_trivial_at: float | None = None


@dataclass(frozen=True, kw_only=True)
class ChainSummary(Row):
    """``metrics/chain.json``: the counts of the converged chains' tables."""

    n_sub: int
    parameters: int  # of the span-reduced problem
    chains: int
    points: int
    converged_points: int
    proved_minima: int  # class minimum, proved by the dense Hessian's Cholesky
    proved_saddles: int  # class saddle: a witness vector with v^T H v < -delta
    degenerate_points: int  # neither: eigenvalues in [-delta, delta], none proved below
    steps: int
    drops: int  # steps whose in-sample MSE fell as lambda rose
    one_branch_of_minima: int
    fold_jumps: int
    saddle_branches: int
    branch_switches: int
    branches_lost: int
    not_followed: int
    lemma_ratio_min: float | None
    lemma_ratio_max: float | None
    drops_on_one_branch_of_minima: int  # the lemma says 0: a nonzero count is a contradiction
    cold_points: int = 0  # polishes of fresh initialisations (counted in ``points``)
    escapes: int = 0  # saddles left along their witness, over every point
    # the answers across directions (``chain.minima``), over the points with no proved
    # negative curvature (``ChainPoint.minimum_found``); seeds pooled
    graduated_compared: int = 0  # (seed, lambda) with an ascending and a descending minimum
    graduated_lower: int = 0  # of those, where the descending J is lower beyond rounding
    graduated_gain_max: float | None = None  # largest (J_up - J_down) / |J_up| there
    best_found_lambdas: int = 0  # lambdas with any minimum found
    best_found_drops: int = 0  # grid steps where the MSE of the lowest-J minimum found fell
    several_minima_lambdas: int = 0  # lambdas with two or more distinct minima (J or distance)
    distinct_minima_max: int = 0  # the most distinct minima found at one lambda
    minima_apart_at_same_objective: int = 0  # minima with another's J but apart (all lambdas)
    crevasse_mse_spread_max: float | None = None  # largest MSE range among one lambda's minima
    fold_jumps_min: int = 0  # the fold jumps of one seed's chains: the range over seeds
    fold_jumps_max: int = 0
