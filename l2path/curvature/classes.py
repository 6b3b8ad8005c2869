"""The one vocabulary of point classes, and the two rules that assign them.

Two rules, two words (a newcomer changes the tolerance of the rule they mean):

- **critical** (``classify_by_gradient``, the lambda study and the hessian stage): a point is
  critical when ||grad J_lambda|| <= grad_tol (params ``lambda_study.polish.grad_tol``);
  otherwise it is ``NOT_CRITICAL`` whatever its curvature. A critical point is a ``SADDLE`` when
  lambda_min < -rel_tol |lambda_max| (``hessian.saddle_rel_tol``: a spectrum crowded at zero
  makes the plain sign of near-zero Ritz values a coin toss), else a ``MINIMUM``.
- **certified** (``classify_bottom``, the continuation's certificate, ``curvature.certificate``):
  from the bottom Ritz pair (mu, v) with residual r and delta (r plus how far the bottom
  curvature moves to the Newton point): ``SADDLE`` when mu < -delta, ``MINIMUM`` when
  mu - r > delta, else ``DEGENERATE`` (inconclusive).

``PointClass`` is a ``StrEnum``: a member is the string of its value (``"not critical"``), so
``str``, f-strings, ``json`` and pandas' CSVs write the bare value, and a member equals (and
hashes like) that string. Only ``repr`` shows the member.
"""

from __future__ import annotations

from enum import StrEnum


class PointClass(StrEnum):
    MINIMUM = "minimum"
    SADDLE = "saddle"
    DEGENERATE = "degenerate"
    NOT_CRITICAL = "not critical"


# the classes each rule can give, in the order tables and metrics list them
CRITICAL_CLASSES = (PointClass.MINIMUM, PointClass.SADDLE, PointClass.NOT_CRITICAL)
CERTIFIED_CLASSES = (PointClass.MINIMUM, PointClass.SADDLE, PointClass.DEGENERATE)


def classify_by_gradient(
    grad_norm: float, grad_tol: float, lam_min: float, lam_max: float, rel_tol: float
) -> PointClass:
    """``NOT_CRITICAL`` if grad_norm > grad_tol (curvature reported, no claim); else
    ``SADDLE`` if lam_min < -rel_tol * |lam_max|, else ``MINIMUM``."""
    if not grad_norm <= grad_tol:
        return PointClass.NOT_CRITICAL
    return PointClass.SADDLE if lam_min < -rel_tol * abs(lam_max) else PointClass.MINIMUM


def classify_bottom(mu: float, residual: float, delta: float) -> PointClass:
    """The certified class of a point from its bottom Ritz pair: ``SADDLE`` if mu < -delta,
    ``MINIMUM`` if mu - residual > delta, else ``DEGENERATE``."""
    if mu < -delta:
        return PointClass.SADDLE
    if mu - residual > delta:
        return PointClass.MINIMUM
    return PointClass.DEGENERATE
