"""The dynamics stage's typed records: a row of results/dynamics_theory.csv (``TheoryRow``), a
level-off slope (``EquilibriumSlope``) and metrics/dynamics.json (``DynamicsSummary``).

Each writes today's bytes (``to_row``: the CSV's columns in order; ``to_json``: the nested
metrics, NaN as null) and reads them back (``from_row`` / ``from_json``), failing on any
unknown or missing key rather than dropping a number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

from ..rows import Row, column


@dataclass(frozen=True)
class TheoryRow(Row):
    """One (eta, init, lambda > 0, layer) of ``theory.theory_table``; see there for each number."""

    eta: float
    init: str
    lam: float = column("lambda")
    layer: int
    n_in: int
    epochs: int
    seeds: int
    question_epoch: int
    theory_factor: float
    theory_factor_exp: float
    # theory._decay_fit
    measured_factor: float
    relative_deviation: float
    radial_ratio_small: float
    theory_factor_with_gradient: float
    first_order_share_of_gap: float
    second_order_factor: float
    second_order_share_of_gap: float
    second_order_residual: float
    small_epochs: int
    first_epoch_factor: float
    shrink_rate_end: float
    ratio_start: float
    batch_ratio_start: float
    ratio_median: float
    radial_ratio_median: float
    decay_dominated_epochs: float
    outward_epochs: float
    # tail_off.tail_off
    tail_off_seeds: int
    tail_off_epoch: float
    tail_off_epoch_min: float
    tail_off_epoch_max: float
    tail_off_rms: float
    tail_off_rms_min: float
    tail_off_rms_max: float
    # equilibrium.level_off
    equilibrium_rms: float
    equilibrium_rms_min: float
    equilibrium_rms_max: float
    equilibrium_rate: float
    equilibrium_levelled: bool
    equilibrium_level_epoch: float
    equilibrium_radial_ratio: float
    equilibrium_balance_radial_ratio: float
    rms_start: float
    rms_end: float
    var_question: float
    reported_variance: float
    inv_sqrt_n_weights: float
    inv_n_weights: float
    inv_sqrt_n_in: float
    epochs_to_inv_sqrt_n_weights: float
    l2_change_question: float
    l2_change_question_control: float
    validation_accuracy_question: float
    validation_accuracy_question_control: float
    radial_ratio_quadratic_median: float
    saturation_mean_dsigma_start: float
    saturation_mean_dsigma_end: float
    saturation_share_z4_start: float
    saturation_share_z4_end: float
    output_error_start: float
    output_error_end: float


@dataclass(frozen=True)
class EquilibriumSlope(Row):
    """One (eta, init, layer) of ``equilibrium.slopes``: ln RMS on ln lambda, levelled lambdas."""

    eta: float
    init: str
    layer: int
    equilibrium_slope: float
    equilibrium_slope_se: float
    equilibrium_lambdas: str  # the lambdas used, "%g" joined by spaces
    equilibrium_rms_values: str  # their RMS, "%.4g" joined by spaces


def _clean(value):
    """A JSON value: NaN as None, numpy booleans as bool."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return bool(value) if isinstance(value, bool) or type(value).__name__ == "bool_" else value


def _numbers(numbers: Mapping, nesting: Iterable[str], kind: str) -> dict:
    """The numbers of one leaf of the metrics (None back to NaN); a key of the nesting among
    them would silently replace the one read from the path, so it is refused."""
    clash = sorted(set(numbers) & set(nesting))
    if clash:
        raise ValueError(f"{kind}: unknown keys {clash} among the numbers")
    return {key: math.nan if value is None else value for key, value in numbers.items()}


def _number(key: str, prefix: str, kind: str) -> str:
    """The number in a metrics key such as ``eta0.1`` or ``layer2``."""
    if not key.startswith(prefix):
        raise ValueError(f"{kind}: unknown key {key!r} (expected {prefix}<number>)")
    return key[len(prefix) :]


_THEORY_KEYS = ("eta", "lambda", "init", "layer")  # the nesting of the metrics, not numbers in them
_SLOPE_KEYS = ("eta", "init", "layer")


@dataclass(frozen=True)
class DynamicsSummary:
    """metrics/dynamics.json: ``eta<eta>`` -> init -> ``lambda<lambda>`` -> ``layer<l>`` -> the
    numbers of a ``TheoryRow``, and ``equilibrium``: ``eta<eta>`` -> init -> ``layer<l>`` ->
    the numbers of an ``EquilibriumSlope``."""

    theory: tuple[TheoryRow, ...]
    equilibrium: tuple[EquilibriumSlope, ...]

    def to_json(self) -> dict:
        result: dict = {}
        for row in (r.to_row() for r in self.theory):
            numbers = {k: _clean(v) for k, v in row.items() if k not in _THEORY_KEYS}
            (
                result.setdefault(f"eta{row['eta']:g}", {})
                .setdefault(row["init"], {})
                .setdefault(f"lambda{row['lambda']:g}", {})[f"layer{row['layer']}"]
            ) = numbers
        for row in (s.to_row() for s in self.equilibrium):
            numbers = {k: _clean(v) for k, v in row.items() if k not in _SLOPE_KEYS}
            (
                result.setdefault("equilibrium", {})
                .setdefault(f"eta{row['eta']:g}", {})
                .setdefault(row["init"], {})[f"layer{row['layer']}"]
            ) = numbers
        return result

    @classmethod
    def from_json(cls, raw: Mapping) -> "DynamicsSummary":
        kind = cls.__name__
        theory = [
            TheoryRow.from_row(
                {
                    "eta": float(_number(eta, "eta", kind)),
                    "init": init,
                    "lambda": float(_number(lam, "lambda", kind)),
                    "layer": int(_number(layer, "layer", kind)),
                    **_numbers(numbers, _THEORY_KEYS, kind),
                }
            )
            for eta, by_init in raw.items()
            if eta != "equilibrium"
            for init, by_lambda in by_init.items()
            for lam, by_layer in by_lambda.items()
            for layer, numbers in by_layer.items()
        ]
        slopes = [
            EquilibriumSlope.from_row(
                {
                    "eta": float(_number(eta, "eta", kind)),
                    "init": init,
                    "layer": int(_number(layer, "layer", kind)),
                    **_numbers(numbers, _SLOPE_KEYS, kind),
                }
            )
            for eta, by_init in raw.get("equilibrium", {}).items()
            for init, by_layer in by_init.items()
            for layer, numbers in by_layer.items()
        ]
        return cls(tuple(theory), tuple(slopes))
