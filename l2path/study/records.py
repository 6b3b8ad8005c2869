"""Typed records of the lambda study: what a finished point is, on disk and in the results table.

- ``Evaluation``: a model's numbers after ``train.metrics.evaluate`` (objective J_lambda,
  data loss L, in-sample MSE, accuracies, weight norm and per-layer weight statistics).
- ``EpochRecord``: one epoch of a point's SGD phase (``train.monitor.EpochMonitor``).
- ``SGDPhase``: what the SGD phase of a point leaves behind (saved as ``<key>.sgd.json``
  until the point is finished, so a killed round resumes without retraining).
- ``PointRecord``: a finished point. ``to_row``/``from_row`` convert it to and from one row
  of ``results/study.csv`` (columns: the field names, ``lambda`` for ``lam``, the SGD
  phase's evaluation prefixed ``sgd_``, the final one unprefixed); ``to_json``/``from_json``
  add the per-epoch history for the point store.

What a point *is* (its numbers) is kept apart from what one run of it *was* (``RUN_FIELDS``:
the execution that trained it, its MLflow run ids, its wall times). Only the first goes into
DVC-tracked files (``content_row``, ``content_json``), so the same inputs give the same bytes
on every re-run; the run fields go to MLflow and to the store's untracked run files.

Every reader of the study's results goes through these types, never through string keys.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..train.metrics import LAYER_STATS

SCALARS = (
    "objective",
    "data_loss",
    "train_mse",
    "train_accuracy",
    "validation_mse",
    "validation_accuracy",
    "test_mse",
    "test_accuracy",
    "weight_l2",
)
EPOCH_SCALARS = ("objective", "data_loss", "train_mse", "train_accuracy", "weight_l2")
_LAYER_KEY = re.compile(r"^layer(\d+)_weight_(\w+)$")


def _float(value: Any) -> float:
    return math.nan if value is None or value == "" else float(value)


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        if value not in ("True", "False"):
            raise ValueError(f"not a boolean: {value!r}")
        return value == "True"
    return bool(value)


def _optional_str(value: Any) -> str | None:
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _str(value: Any) -> str:
    return _optional_str(value) or ""


@dataclass(frozen=True)
class Evaluation:
    """A model's numbers on the data: J_lambda = L + (lambda/2n) sum w^2, L = (1/n) sum_x C_x,
    MSE = (1/count) sum_x 0.5 ||a - y||^2 per split, accuracies, ||w||, and per layer
    (1-based, in order) the weights' sum, L1 and L2 norm, variance and RMS."""

    objective: float
    data_loss: float
    train_mse: float
    train_accuracy: float
    validation_mse: float
    validation_accuracy: float
    test_mse: float
    test_accuracy: float
    weight_l2: float
    layers: tuple[dict[str, float], ...]  # one mapping stat -> value per layer, stats LAYER_STATS

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], prefix: str = "") -> "Evaluation":
        """From ``metrics.evaluate``'s record or a results row (keys prefixed by ``prefix``)."""
        layers: dict[int, dict[str, float]] = {}
        for key, value in values.items():
            match = _LAYER_KEY.match(key.removeprefix(prefix)) if key.startswith(prefix) else None
            if match and match[2] in LAYER_STATS:  # "sgd_layer1_..." never matches with prefix ""
                layers.setdefault(int(match[1]), {})[match[2]] = _float(value)
        ordered = tuple(layers[index] for index in sorted(layers))
        return cls(**{name: _float(values[prefix + name]) for name in SCALARS}, layers=ordered)

    def to_mapping(self, prefix: str = "") -> dict[str, float]:
        out = {prefix + name: getattr(self, name) for name in SCALARS}
        for index, stats in enumerate(self.layers, start=1):
            out.update(
                {f"{prefix}layer{index}_weight_{stat}": value for stat, value in stats.items()}
            )
        return out


@dataclass(frozen=True)
class EpochRecord:
    """J_lambda, L, in-sample MSE and accuracy, ||w|| after ``epoch`` (1-based) of the SGD phase."""

    epoch: int
    objective: float
    data_loss: float
    train_mse: float
    train_accuracy: float
    weight_l2: float

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "EpochRecord":
        return cls(
            epoch=int(values["epoch"]), **{name: _float(values[name]) for name in EPOCH_SCALARS}
        )

    def to_mapping(self) -> dict[str, float]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SGDPhase:
    """A point after its SGD phase: the checkpoint written (the best epoch's iterate), the
    epochs run and the best epoch, the sample sd of J and of the in-sample MSE over the last
    ``sgd.window`` epochs (the within-stage noise), whether it diverged, the round's wall time
    shared out by epochs, ||w|| at the chain's fresh initialisation, the per-epoch history
    and the evaluation of the reported weights."""

    key: str
    fingerprint: str
    checkpoint: str
    epochs: int
    best_epoch: int
    objective_sd: float
    data_loss_sd: float
    train_mse_sd: float
    diverged: bool
    train_seconds: float
    chain_start_weight_l2: float
    history: tuple[EpochRecord, ...]
    evaluation: Evaluation

    def to_json(self) -> dict:
        """What the phase is (its wall time ``train_seconds`` is a run field, saved apart)."""
        return {
            "key": self.key,
            "fingerprint": self.fingerprint,
            "checkpoint": self.checkpoint,
            "epochs": self.epochs,
            "best_epoch": self.best_epoch,
            "objective_sd": self.objective_sd,
            "data_loss_sd": self.data_loss_sd,
            "train_mse_sd": self.train_mse_sd,
            "diverged": self.diverged,
            "chain_start_weight_l2": self.chain_start_weight_l2,
            "history": [h.to_mapping() for h in self.history],
            **self.evaluation.to_mapping("sgd_"),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> "SGDPhase":
        return cls(
            key=raw["key"],
            fingerprint=raw["fingerprint"],
            checkpoint=raw["checkpoint"],
            epochs=int(raw["epochs"]),
            best_epoch=int(raw["best_epoch"]),
            objective_sd=_float(raw["objective_sd"]),
            data_loss_sd=_float(raw["data_loss_sd"]),
            train_mse_sd=_float(raw["train_mse_sd"]),
            diverged=_bool(raw["diverged"]),
            train_seconds=_float(raw.get("train_seconds")),
            chain_start_weight_l2=_float(raw["chain_start_weight_l2"]),
            history=tuple(EpochRecord.from_mapping(h) for h in raw["history"]),
            evaluation=Evaluation.from_mapping(raw, "sgd_"),
        )


# Fields of PointRecord written as plain columns, with their parsers.
_COLUMNS = {
    "key": _str,
    "schedule": _str,
    "seed": int,
    "grid_index": int,
    "lam": _float,
    "log2_lambda": _float,
    "fingerprint": _str,
    "start": _str,
    "parent": _optional_str,
    "parent_checkpoint": _optional_str,
    "parent_mlflow_run_id": _optional_str,
    "checkpoint": _str,
    "polished_checkpoint": _optional_str,
    "epochs": int,
    "best_epoch": int,
    "objective_sd": _float,
    "data_loss_sd": _float,
    "train_mse_sd": _float,
    "diverged": _bool,
    "message": _str,
    "chain_start_weight_l2": _float,
    "train_seconds": _float,
    "polish_seconds": _float,
    "polished": _bool,
    "polish_iterations": int,
    "control_of": _optional_str,
    "execution": _str,
    "mlflow_run_id": _optional_str,
    "sgd_grad_norm": _float,
    "grad_norm": _float,
    "critical": _bool,
    "collapsed": _bool,
}
_COLUMN_NAMES = {"lam": "lambda"}
# Columns renamed since a point store was written (old name -> new): a store made before the
# rename still resumes.
_LEGACY_NAMES = {"certified": "critical"}


def _renamed(row: Mapping[str, Any]) -> Mapping[str, Any]:
    """``row`` with legacy column names replaced by today's."""
    if not any(old in row for old in _LEGACY_NAMES):
        return row
    return {_LEGACY_NAMES.get(key, key): value for key, value in row.items()}


# What one run of a point was, not what the point is: never in a DVC-tracked file.
RUN_FIELDS = (
    "execution",
    "mlflow_run_id",
    "parent_mlflow_run_id",
    "train_seconds",
    "polish_seconds",
)


@dataclass(frozen=True)
class PointRecord:
    """A finished point of the study (``schedules.Point`` plus everything measured).

    ``sgd`` evaluates the weights after the SGD phase, ``final`` the point's final weights
    (the polished ones when it was polished, else the same as ``sgd``). ``grad_norm`` is the
    float64 full-batch ||grad J_lambda|| of the final weights (``sgd_grad_norm`` of the SGD
    ones; NaN for a diverged point), and ``critical`` means grad_norm <= polish.grad_tol
    (the gradient rule; the continuation's Newton-step certificate is "certified").
    ``collapsed``: an ascending point whose ||w|| < collapse_ratio * chain_start_weight_l2.
    ``checkpoint`` holds the SGD phase's best epoch (``best_epoch`` of ``epochs``), and
    ``objective_sd``/``data_loss_sd``/``train_mse_sd`` its within-stage noise (``SGDPhase``).
    """

    key: str
    schedule: str
    seed: int
    grid_index: int
    lam: float
    log2_lambda: float
    fingerprint: str
    start: str  # "fresh" or "warm"
    parent: str | None
    parent_checkpoint: str | None
    parent_mlflow_run_id: str | None
    checkpoint: str
    polished_checkpoint: str | None
    epochs: int
    best_epoch: int
    objective_sd: float
    data_loss_sd: float
    train_mse_sd: float
    diverged: bool
    message: str
    chain_start_weight_l2: float
    train_seconds: float
    polish_seconds: float
    polished: bool
    polish_iterations: int
    control_of: str | None  # a control: the chain point it is the same-lambda twin of
    execution: str  # label of the execution that trained the point
    mlflow_run_id: str | None  # the tracking run that logged it, once logged
    sgd_grad_norm: float
    grad_norm: float
    critical: bool
    collapsed: bool
    sgd: Evaluation
    final: Evaluation
    history: tuple[EpochRecord, ...] = field(default=(), compare=True)

    @property
    def final_checkpoint(self) -> str:
        """The weights the point ends with: polished if it was polished."""
        return self.polished_checkpoint or self.checkpoint

    def replace(self, **changes) -> "PointRecord":
        return dataclasses.replace(self, **changes)

    def to_row(self) -> dict[str, Any]:
        """One row of the results table (no history)."""
        row = {_COLUMN_NAMES.get(name, name): getattr(self, name) for name in _COLUMNS}
        return {**row, **self.sgd.to_mapping("sgd_"), **self.final.to_mapping()}

    def content_row(self) -> dict[str, Any]:
        """``to_row`` without the run fields: a row of the DVC-tracked results table."""
        return {key: value for key, value in self.to_row().items() if key not in RUN_FIELDS}

    def run_fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in RUN_FIELDS}

    @classmethod
    def from_row(
        cls, row: Mapping[str, Any], history: tuple[EpochRecord, ...] = ()
    ) -> "PointRecord":
        """From a results row (values as written, or as strings read back from the CSV); run
        fields missing from the row (a content row) are empty: no run, NaN seconds."""
        row = _renamed(row)
        values = {
            name: parse(row[_COLUMN_NAMES.get(name, name)])
            for name, parse in _COLUMNS.items()
            if name not in RUN_FIELDS or name in row
        }
        missing = {name: parse(None) for name, parse in _COLUMNS.items() if name not in values}
        return cls(
            **values,
            **missing,
            sgd=Evaluation.from_mapping(row, "sgd_"),
            final=Evaluation.from_mapping(row),
            history=history,
        )

    def to_json(self) -> dict[str, Any]:
        return {**self.to_row(), "history": [h.to_mapping() for h in self.history]}

    def content_json(self) -> dict[str, Any]:
        """``to_json`` without the run fields: the point store's DVC-tracked record."""
        return {**self.content_row(), "history": [h.to_mapping() for h in self.history]}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> "PointRecord":
        return cls.from_row(raw, tuple(EpochRecord.from_mapping(h) for h in raw.get("history", [])))
