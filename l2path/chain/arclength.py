"""Pseudo-arclength continuation of critical points of J_lambda, through turning points.

The branch is the solution curve of F(theta, tau) = grad J_{e^tau}(theta) = 0 in (theta, tau),
tau = ln lambda (a scale-free parameter: the study's grid is geometric). With H = dF/dtheta
(the Hessian of J) and F_tau = dF/dtau = lambda w / n (w: theta with the biases set to zero),
a point u = (theta, tau) with unit tangent t = (t_theta, t_tau) continues by (Keller 1977;
Allgower and Georg, *Introduction to Numerical Continuation Methods*, ch. 2 and 9):

- **predictor**: u_pred = u + ds t;
- **corrector**: Newton on the bordered system G(v) = (F(v), t . (v - u_pred)) = 0, i.e.

      [ H       F_tau ] [d_theta]     [ F(v)              ]
      [ t_theta t_tau ] [d_tau  ] = - [ t . (v - u_pred)  ],

  solved by GMRES on products (``BorderedOperator``). The bordered matrix stays nonsingular at
  a simple fold, where H alone is singular: natural-parameter continuation (fixed tau) cannot
  pass a turning point, this can. A family that can assemble its dense H (``NetworkFamily``)
  preconditions GMRES with the LU factors of the bordered matrix A_0 at an earlier point of
  the branch (``BorderedPreconditioner``): A - A_0 is H - H_0 plus a rank-2 change of the
  border, so GMRES needs the iterations H's drift costs plus two; the factors are renewed
  at the current point once a solve needs more than ``refresh_after`` iterations. The
  solution's tolerance is the same with or without it;
- **tangent** at the new point: the bordered system with right-hand side (0, 1) and the old
  tangent in the last row, normalised; its orientation follows the old one (t_new . t_old > 0);
- **step control**: ds grows by ``grow`` after an easy correction (<= ``easy_iterations``
  Newton steps), halves after a failed one (a correction fails as soon as a Newton step does
  not reduce ||F||); below ``min_step`` the branch is *lost* (a corrector that fails is
  reported as that, never as a fold).

**Folds.** A turning point in lambda is where t_tau = dtau/ds changes sign. Between two accepted
points with opposite signs the zero is located by bisection in the arclength from the earlier
point (predict, correct, recompute the tangent) to ``fold_tol`` in s. There the bottom
eigenvalue mu of H crosses zero too, and on the approach mu^2 = k |lambda* - lambda| to leading
order (the normal form of a fold: lambda* - lambda ~ c s^2, mu ~ a s); ``fold_fit`` fits k by
least squares through the origin on the last points before the fold and reports the relative
residual, so a table can show the fit beside the sign change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np
import scipy.linalg
import scipy.sparse.linalg
import torch

from ..objective import Objective
from .cholesky import cholesky_solver
from .hessian import dense_hessian_at


class Family(Protocol):
    """F(theta, tau) = grad J_{e^tau}(theta), its Jacobian H and dF/dtau, on float64 numpy."""

    def residual(self, theta: np.ndarray, tau: float) -> np.ndarray: ...
    def jacobian(self, theta: np.ndarray, tau: float) -> scipy.sparse.linalg.LinearOperator: ...
    def d_tau(self, theta: np.ndarray, tau: float) -> np.ndarray: ...


class NetworkFamily:
    """A network's J_lambda (``objective.Objective``, any lambda) as a ``Family`` in tau = ln
    lambda: F = grad J_{e^tau}, H its ``CountingOperator``, F_tau = lambda m * theta / n; its
    bordered solves preconditioned by the dense H (``BorderedPreconditioner``) unless
    ``precondition`` is False."""

    def __init__(self, objective: Objective, precondition: bool = True):
        self.objective = objective
        self.device = objective.x.device
        self.mask = objective.weight_mask().cpu().numpy()
        self.preconditioner = BorderedPreconditioner(self._dense) if precondition else None

    def _dense(self, theta: np.ndarray, tau: float) -> np.ndarray:
        return dense_hessian_at(self.objective.at(math.exp(tau)), self._theta(theta)).matrix

    def _theta(self, theta: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(theta, dtype=torch.float64, device=self.device)

    def residual(self, theta: np.ndarray, tau: float) -> np.ndarray:
        return self.objective.at(math.exp(tau)).gradient(self._theta(theta)).cpu().numpy()

    def jacobian(self, theta: np.ndarray, tau: float) -> scipy.sparse.linalg.LinearOperator:
        return self.objective.at(math.exp(tau)).operator(self._theta(theta))

    def d_tau(self, theta: np.ndarray, tau: float) -> np.ndarray:
        return math.exp(tau) * self.mask * theta / self.objective.n


class BorderedPreconditioner:
    """M = A_0^{-1}, A_0 = [[H_0, b_0], [c_0^T, d_0]] at an earlier point of the branch (see the
    module), from ``dense_hessian(theta, tau)`` ((p, p) float64); renewed after a solve that
    needed more than ``refresh_after`` GMRES iterations. ``factorisations`` counts them.

    Where H_0 is positive definite (the approach to a fold from a branch of minima, and every
    chain point a step starts from), by block elimination on its Cholesky factor (p^3/3 flops
    against the bordered LU's 2p^3/3: 1.7 s against 3.0 s at p = 4,180 on one core):
    u = H_0^{-1} b_0 and s = d_0 - c_0 . u once, then z = A_0^{-1} r by w = H_0^{-1} r_x,
    z_y = (r_y - c_0 . w) / s, z_x = w - u z_y. Elsewhere (Cholesky breaks down), LU of A_0.
    Near a fold H_0 is nearly singular and the elimination loses digits in z_x, the
    preconditioner's only: GMRES solves the true bordered system to its tolerance either way."""

    def __init__(self, dense_hessian: Callable[[np.ndarray, float], np.ndarray], refresh_after=25):
        self.dense_hessian, self.refresh_after = dense_hessian, refresh_after
        self.factorisations, self._apply = 0, None

    def operator(
        self, theta: np.ndarray, tau: float, b: np.ndarray, c: np.ndarray, d: float
    ) -> scipy.sparse.linalg.LinearOperator:
        if self._apply is None:
            hessian = self.dense_hessian(theta, tau)
            self._apply = _eliminated(hessian, b, c, d) or _bordered_lu(hessian, b, c, d)
            self.factorisations += 1
        return scipy.sparse.linalg.LinearOperator(
            (len(b) + 1, len(b) + 1), matvec=self._apply, dtype=np.float64
        )

    def solved(self, iterations: int) -> None:
        """Renew the factors at the next solve if this one needed too many iterations."""
        if iterations > self.refresh_after:
            self._apply = None


def _eliminated(hessian: np.ndarray, b: np.ndarray, c: np.ndarray, d: float):
    """A_0^{-1} by block elimination on H_0's Cholesky factor (``BorderedPreconditioner``); None
    where H_0 is not positive definite or the Schur complement s is 0."""
    try:
        factor = scipy.linalg.cho_factor(hessian, check_finite=False)  # a copy: LU may follow
    except np.linalg.LinAlgError:
        return None
    solve = cholesky_solver(factor)
    u = solve(b)
    schur = d - float(c @ u)
    if not (math.isfinite(schur) and schur != 0.0):
        return None

    def apply(r: np.ndarray) -> np.ndarray:
        r = np.asarray(r, dtype=np.float64).reshape(-1)
        w = solve(r[:-1])
        y = (r[-1] - float(c @ w)) / schur
        return np.append(w - u * y, y)

    return apply


def _bordered_lu(hessian: np.ndarray, b: np.ndarray, c: np.ndarray, d: float):
    """A_0^{-1} by the LU factors of the bordered matrix."""
    matrix = np.block([[hessian, b[:, None]], [c[None, :], np.array([[d]])]])
    factors = scipy.linalg.lu_factor(matrix, overwrite_a=True, check_finite=False)
    return lambda r: scipy.linalg.lu_solve(factors, r, check_finite=False)


class BorderedOperator(scipy.sparse.linalg.LinearOperator):
    """[[H, b], [c^T, d]] as a (p + 1) x (p + 1) operator on products of H."""

    def __init__(self, hessian, b: np.ndarray, c: np.ndarray, d: float):
        p = len(b)
        super().__init__(dtype=np.float64, shape=(p + 1, p + 1))
        self.hessian, self.b, self.c, self.d = hessian, b, c, float(d)

    def _matvec(self, vector: np.ndarray) -> np.ndarray:
        vector = np.asarray(vector, dtype=np.float64).reshape(-1)
        x, y = vector[:-1], vector[-1]
        top = self.hessian.matvec(x) + y * self.b
        return np.append(top, self.c @ x + self.d * y)


def solve_bordered(
    hessian,
    b: np.ndarray,
    c: np.ndarray,
    d: float,
    rhs: np.ndarray,
    rtol: float,
    maxiter: int,
    preconditioner: scipy.sparse.linalg.LinearOperator | None = None,
) -> tuple[np.ndarray, float, int]:
    """[[H, b], [c^T, d]] z = rhs by GMRES (``preconditioner``: M ~ the inverse); returns z, the
    relative residual ||A z - rhs|| / ||rhs|| and the GMRES iterations."""
    op = BorderedOperator(hessian, b, c, d)
    restart = min(len(rhs), 200)
    iterations = [0]

    def count(_):
        iterations[0] += 1

    z, _ = scipy.sparse.linalg.gmres(
        op,
        rhs,
        rtol=rtol,
        restart=restart,
        maxiter=maxiter,
        M=preconditioner,
        callback=count,
        callback_type="pr_norm",
    )
    norm = float(np.linalg.norm(rhs))
    residual = float(np.linalg.norm(op.matvec(z) - rhs)) / norm if norm else 0.0
    return z, residual, iterations[0]


def _solve(
    family, theta: np.ndarray, tau: float, c: np.ndarray, d: float, rhs: np.ndarray, settings
) -> np.ndarray:
    """The bordered system at (theta, tau) with last row (c, d), preconditioned where the family
    offers it (``preconditioner``)."""
    b = family.d_tau(theta, tau)
    keeper = getattr(family, "preconditioner", None)
    m = keeper.operator(theta, tau, b, c, d) if keeper else None
    z, _, iterations = solve_bordered(
        family.jacobian(theta, tau),
        b,
        c,
        d,
        rhs,
        settings.linear_rtol,
        settings.linear_iterations,
        m,
    )
    if keeper:
        keeper.solved(iterations)
    return z


@dataclass(frozen=True)
class ArclengthSettings:
    step: float = 0.1  # first ds
    max_step: float = 0.5
    min_step: float = 1e-6  # below this a failed correction loses the branch
    grow: float = 1.5
    easy_iterations: int = 3
    tol: float = 1e-10  # corrector converged at ||F|| <= tol
    corrector_iterations: int = 20  # Newton steps per correction
    linear_rtol: float = 1e-12  # GMRES relative residual of each bordered solve
    linear_iterations: int = 50  # GMRES restarts
    max_points: int = 200
    fold_tol: float = 1e-8  # bisection stops when the arclength bracket is this short
    stop_at_fold: bool = False  # end the branch at its first located fold
    bottom_at_every_point: bool = True  # else mu only on a fold's approach (and at the fold)


END_OVERSHOOT = 0.05
FIT_GAPS = (1e-9, 1e-2)  # |lambda / lambda* - 1| of the points the fold's fit uses
FIT_POINTS = 4


@dataclass(frozen=True)
class ArcPoint:
    s: float  # arclength from the start
    tau: float  # ln lambda
    theta: np.ndarray
    tangent_tau: float  # dtau/ds: changes sign at a fold
    grad_norm: float
    iterations: int  # corrector Newton steps
    bottom: float = math.nan  # mu, the bottom eigenvalue of H (when the family's bottom is given)
    tangent: np.ndarray | None = None  # the unit tangent (t_theta, t_tau) there

    @property
    def lam(self) -> float:
        return math.exp(self.tau)

    def theta_per_tau(self) -> np.ndarray:
        """dtheta/dtau = t_theta / t_tau along the branch (infinite at a fold)."""
        return self.tangent[:-1] / self.tangent[-1]


@dataclass(frozen=True)
class FoldFit:
    k: float  # mu^2 = k |lambda* - lambda| on the approach
    residual: float  # relative RMS of the fit
    points: int


@dataclass(frozen=True)
class ArcFold:
    lam: float  # lambda*, where t_tau = 0
    s: float  # its arclength
    theta: np.ndarray
    bracket: tuple[float, float]  # arclength interval that held the sign change when found
    tangent_tau_before: float
    tangent_tau_after: float
    bottom: float = math.nan  # mu at the located fold
    fit: FoldFit | None = None
    # |lambda - lambda*| of the turning point is at most this: it lies in the last bracket, of
    # width w in arclength, over which |dtau/ds| <= the larger |t_tau| at its ends (t_tau is
    # monotone through a simple fold), so |tau - tau*| <= w max|t_tau|
    lam_error: float = math.nan


@dataclass
class ArcBranch:
    points: list[ArcPoint] = field(default_factory=list)
    folds: list[ArcFold] = field(default_factory=list)
    lost: str = ""  # why the branch was lost ("" when it reached its end)
    reached_end: bool = False


@dataclass(frozen=True)
class _Corrected:
    theta: np.ndarray
    tau: float
    grad_norm: float
    iterations: int


def correct(
    family: Family,
    theta: np.ndarray,
    tau: float,
    tangent: np.ndarray,
    settings: ArclengthSettings,
) -> _Corrected | None:
    """Newton on the bordered system from the prediction (theta, tau), the hyperplane through it
    normal to ``tangent``; None when it does not converge."""
    predicted = np.append(theta, tau)
    current = predicted.copy()
    previous_norm = math.inf
    for iteration in range(settings.corrector_iterations + 1):
        residual = family.residual(current[:-1], current[-1])
        norm = float(np.linalg.norm(residual))
        if not math.isfinite(norm) or norm >= previous_norm:
            # Newton not contracting (the residual form of Deuflhard's monotonicity test): the
            # prediction was too far, and the step will halve; from a good one the residual
            # falls by orders of magnitude each step
            return None
        previous_norm = norm
        if norm <= settings.tol:
            return _Corrected(current[:-1], float(current[-1]), norm, iteration)
        if iteration == settings.corrector_iterations:
            return None
        rhs = -np.append(residual, tangent @ (current - predicted))
        delta = _solve(family, current[:-1], current[-1], tangent[:-1], tangent[-1], rhs, settings)
        current = current + delta
    return None


def tangent_at(
    family: Family, theta: np.ndarray, tau: float, previous: np.ndarray, settings: ArclengthSettings
) -> np.ndarray:
    """Unit tangent (t_theta, t_tau) at a point of the branch, oriented like ``previous``."""
    rhs = np.zeros(len(theta) + 1)
    rhs[-1] = 1.0
    direction = _solve(family, theta, tau, previous[:-1], previous[-1], rhs, settings)
    return direction / np.linalg.norm(direction)


def first_tangent(
    family: Family, theta: np.ndarray, tau: float, sign: float, settings: ArclengthSettings
) -> np.ndarray:
    """The tangent at a start where H is nonsingular: H t_theta = -F_tau with t_tau = 1,
    normalised, pointing up (sign > 0) or down in tau."""
    seed = np.zeros(len(theta) + 1)
    seed[-1] = sign
    return tangent_at(family, theta, tau, seed, settings)


def fold_fit(approach: list[ArcPoint], lam_star: float) -> FoldFit | None:
    """mu^2 = k |lambda* - lambda| through the origin on points with a bottom eigenvalue."""
    usable = [p for p in approach if math.isfinite(p.bottom) and p.lam != lam_star]
    if len(usable) < 2:
        return None
    x = np.array([abs(lam_star - p.lam) for p in usable])
    y = np.array([p.bottom**2 for p in usable])
    k = float(x @ y / (x @ x))
    residual = float(np.sqrt(np.mean((y - k * x) ** 2)) / np.sqrt(np.mean(y**2)))
    return FoldFit(k, residual, len(usable))


@dataclass(frozen=True)
class _Bracket:
    """The last bisection bracket of a fold: its arclength ends from the start and t_tau of
    the corrected points at its two ends."""

    low: float
    high: float
    low_value: float
    high_value: float

    @property
    def tau_spread(self) -> float:
        """The most tau can differ between two points of the bracket: width * max |t_tau|."""
        return (self.high - self.low) * max(abs(self.low_value), abs(self.high_value))


def _on_hyperplane(
    family: Family,
    origin: np.ndarray,
    tangent: np.ndarray,
    low_point: np.ndarray,
    high_point: np.ndarray,
    sigma: float,
    settings: ArclengthSettings,
) -> _Corrected | None:
    """The branch's corrected point on the hyperplane t0 . (v - u0) = sigma, from the middle of
    the bracket's chord, or, where that corrector fails (a chord across a sharp turn can leave
    the branch's basin), from the tangent prediction u0 + sigma t0; None if both fail."""
    for guess in ((low_point + high_point) / 2, origin + sigma * tangent):
        point = correct(family, guess[:-1], guess[-1], tangent, settings)
        if point is not None:
            return point
    return None


def _locate_fold(
    family: Family,
    start: ArcPoint,
    start_tangent: np.ndarray,
    ds: float,
    end: _Corrected,
    settings: ArclengthSettings,
) -> tuple[float, _Corrected, _Bracket, list[tuple[float, _Corrected]]]:
    """Bisection in the arclength sigma in (0, ds) from ``start`` for the zero of t_tau:
    (sigma*, the corrected point there, the last bracket, and the corrected points met on the
    approach side, nearest the fold last). ``end`` is the corrected point at sigma = ds.

    The point at sigma is the branch's crossing of the hyperplane t0 . (v - u0) = sigma (t0 the
    start's unit tangent, u0 the start). Its corrector starts from the straight line between
    the bracket's two corrected ends, which lies on that hyperplane: as the bracket shrinks the
    start is off the branch by O(width^2), and Newton needs one or two steps instead of the
    four or five a prediction along t0 needs. Where no corrector converges inside the bracket,
    the fold is located to the whole step: (ds, ``end``), with the bracket (0, ds)."""
    origin = np.append(start.theta, start.tau)
    low, high = 0.0, ds
    low_point, high_point = origin, np.append(end.theta, end.tau)
    low_value = start_tangent[-1]
    high_value = -low_value
    best, approach = None, []
    while high - low > settings.fold_tol:
        middle = (low + high) / 2
        point = _on_hyperplane(
            family, origin, start_tangent, low_point, high_point, middle, settings
        )
        if point is None:
            break  # the fold stays located to the bracket so far (its lambda error says how well)
        value = tangent_at(family, point.theta, point.tau, start_tangent, settings)[-1]
        best = (middle, point)
        corrected = np.append(point.theta, point.tau)
        if np.sign(value) == np.sign(low_value):
            low, low_value, low_point = middle, value, corrected
            approach.append((middle, point))
        else:
            high, high_value, high_point = middle, value, corrected
    if best is None:  # no corrector converged inside: the fold lies in (0, ds), at most
        best = (ds, end)
    bracket = _Bracket(low, high, float(low_value), float(high_value))
    return best[0], best[1], bracket, approach


def follow_arclength(
    family: Family,
    theta: np.ndarray,
    tau: float,
    tau_end: float,
    settings: ArclengthSettings = ArclengthSettings(),
    bottom: Callable[[np.ndarray, float], float] | None = None,
) -> ArcBranch:
    """Follow the branch through the critical point (theta, tau) from tau towards tau_end,
    through any turning points, until it crosses tau_end, is lost, or has ``max_points``
    points. ``bottom(theta, tau)``, when given, is the bottom eigenvalue of H (for the folds'
    fit); the start must satisfy ||F|| <= settings.tol."""
    start_norm = float(np.linalg.norm(family.residual(theta, tau)))
    if start_norm > settings.tol:
        raise ValueError(f"the start is not a critical point: ||F|| = {start_norm:.3g}")
    sign = 1.0 if tau_end >= tau else -1.0
    t = first_tangent(family, theta, tau, sign, settings)
    mu = bottom(theta, tau) if bottom and settings.bottom_at_every_point else math.nan
    branch = ArcBranch([ArcPoint(0.0, tau, theta, float(t[-1]), start_norm, 0, mu, t)])
    ds = settings.step
    while len(branch.points) < settings.max_points:
        here = branch.points[-1]
        ds = min(ds, _step_to_end(here.tau, tau_end, t[-1], sign))
        predicted = np.append(here.theta, here.tau) + ds * t
        point = correct(family, predicted[:-1], predicted[-1], t, settings)
        if point is None:
            if ds / 2 < settings.min_step:
                branch.lost = (
                    f"the corrector did not converge at ds = {ds:.3g} from lambda = {here.lam:.6g}"
                )
                return branch
            ds /= 2
            continue
        t_new = tangent_at(family, point.theta, point.tau, t, settings)
        if np.sign(t_new[-1]) != np.sign(t[-1]) and t[-1] != 0:
            branch.folds.append(_fold(family, here, t, ds, point, branch, settings, bottom))
            if settings.stop_at_fold:
                return branch
        at_end = sign * (point.tau - tau_end) >= 0
        wanted = bottom and settings.bottom_at_every_point
        mu = bottom(point.theta, point.tau) if wanted else math.nan
        branch.points.append(
            ArcPoint(
                here.s + ds,
                point.tau,
                point.theta,
                float(t_new[-1]),
                point.grad_norm,
                point.iterations,
                mu,
                t_new,
            )
        )
        t = t_new
        if at_end:
            branch.reached_end = True
            return branch
        if point.iterations <= settings.easy_iterations:
            ds = min(ds * settings.grow, settings.max_step)
    return branch


def _step_to_end(tau: float, tau_end: float, tangent_tau: float, sign: float) -> float:
    """The largest ds whose prediction lands at most ``END_OVERSHOOT`` of the remaining
    distance in tau beyond tau_end (a branch need not be followed past the step's end, and
    beyond it the corrector may meet what the step is not about); inf when the tangent points
    away from the end (through a fold)."""
    if sign * tangent_tau <= 0:
        return math.inf
    return (1 + END_OVERSHOOT) * abs(tau_end - tau) / abs(tangent_tau)


def _fold(
    family: Family,
    here: ArcPoint,
    t: np.ndarray,
    ds: float,
    end: _Corrected,
    branch: ArcBranch,
    settings: ArclengthSettings,
    bottom: Callable[[np.ndarray, float], float] | None,
) -> ArcFold:
    """Locate the fold between ``here`` and ``end`` (corrected at ``here + ds``) and fit
    mu^2 = k |lambda* - lambda| on the approach: the bisection's points whose distance to
    lambda* spans ``FIT_GAPS`` (nearer ones carry mostly rounding, or the error of lambda*);
    where the bisection left fewer than two there (a fold near the bracket's start leaves its
    samples all near lambda*), points placed for the fit (``_approach_samples``); else the
    branch's last points."""
    sigma, point, last, samples = _locate_fold(family, here, t, ds, end, settings)
    lam_star = math.exp(point.tau)
    mu = bottom(point.theta, point.tau) if bottom else math.nan
    approach = []
    if bottom:
        # nearer than 10 x the uncertainty of lambda*, |lambda/lambda* - 1| is mostly that
        window = (max(FIT_GAPS[0], 10 * math.expm1(last.tau_spread)), FIT_GAPS[1])

        def gap(p: _Corrected) -> float:
            return abs(math.exp(p.tau) / lam_star - 1)

        near = [(x, p) for x, p in samples if window[0] <= gap(p) <= window[1]]
        if len(near) < 2:
            near += _approach_samples(family, here, t, sigma, point, last, settings, gap, window)
        near.sort(key=lambda sample: sample[0])
        approach = [
            ArcPoint(
                here.s + x,
                p.tau,
                p.theta,
                math.nan,
                p.grad_norm,
                p.iterations,
                bottom(p.theta, p.tau),
            )
            for x, p in near[-FIT_POINTS:]
        ]
    if len(approach) < 2:
        approach = branch.points[-FIT_POINTS:]
    return ArcFold(
        lam_star,
        here.s + sigma,
        point.theta,
        (here.s, here.s + ds),
        last.low_value,
        last.high_value,
        mu,
        fold_fit(approach, lam_star),
        lam_error=lam_star * math.expm1(last.tau_spread),
    )


def _approach_samples(
    family: Family,
    here: ArcPoint,
    t: np.ndarray,
    sigma_star: float,
    fold: _Corrected,
    last: _Bracket,
    settings: ArclengthSettings,
    gap: Callable[[_Corrected], float],
    window: tuple[float, float],
) -> list[tuple[float, _Corrected]]:
    """The ``FIT_POINTS`` corrected points nearest the fold among those on the approach at
    sigma = sigma* (1 - 2^-j), j = 1, 2, ..., whose |lambda/lambda* - 1| lies in ``window``
    (until one comes nearer than it: the nearest carry the leading order of mu^2 best). Near a
    simple fold lambda* - lambda ~ (sigma* - sigma)^2, so each halving of the distance in sigma
    quarters the gap, and a window of 4 decades holds about 7 of them. Each
    corrector starts on sigma's hyperplane, on the line from the bracket's start to the fold,
    and a point is kept only where t_tau has the approach's sign (the hyperplane may also cut
    the branch beyond the fold)."""
    origin, star = np.append(here.theta, here.tau), np.append(fold.theta, fold.tau)
    found = []
    for j in range(1, 60):
        share = 1 - 2.0**-j
        guess = (1 - share) * origin + share * star
        point = correct(family, guess[:-1], guess[-1], t, settings)
        if point is None:
            continue
        distance = gap(point)
        if distance < window[0]:
            break
        side = tangent_at(family, point.theta, point.tau, t, settings)[-1]
        if distance <= window[1] and np.sign(side) == np.sign(last.low_value):
            found.append((sigma_star * share, point))
    return found[-FIT_POINTS:]
