"""The dynamics stage's DVC plot tables and its metrics (``summary.DynamicsSummary``).

The plot tables' columns are named by setting and initialiser (``curves``), never by a
param value, so dvc.yaml's plots name fixed columns whatever eta and lambda are."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from .equilibrium import slopes
from .summary import DynamicsSummary, EquilibriumSlope, TheoryRow
from .tail_off import band
from .theory import per_seed, stage_cost_rows
from .training import layer_names

PLOT_NAMES = ("rms", "ratio", "accuracy", "tail_off", "equilibrium")  # plots/dynamics/<name>.csv


@dataclass(frozen=True)
class Curve:
    """One initialiser in one setting of the stage: the seed means of its models per epoch.

    Its columns in the plot tables start ``<setting>_<init>``, names that hold no param value,
    so dvc.yaml's plots keep their columns when eta or lambda change (``curves``)."""

    setting: str  # "question", "control", "book", "sweep", "sweep2", ...
    init: str
    eta: float
    lam: float
    seeds: tuple[int, ...]  # the setting's seeds

    @property
    def name(self) -> str:
        return f"{self.setting}_{self.init}"


def curves(config) -> list[Curve]:
    """Every curve of the plot tables, in column order: the question's setting (its first
    lambda > 0 ``question``, a k-th one ``question<k>``), its lambda = 0 ``control``, then the
    book's (``book``, ``book<k>``) and the sweep's (``sweep``, ``sweep<k>``) lambdas; each for
    every initialiser. A model named by two settings is a curve of each."""
    found: list[Curve] = []

    def add(setting: str, eta: float, lambdas: list[float], seeds: list[int]) -> None:
        for k, lam in enumerate((lam for lam in lambdas if lam > 0), start=1):
            name = setting if k == 1 else f"{setting}{k}"
            found.extend(Curve(name, init, eta, lam, tuple(seeds)) for init in config.inits)

    add("question", config.eta, config.lambdas, config.seeds)
    if 0 in config.lambdas:
        found.extend(
            Curve("control", init, config.eta, 0.0, tuple(config.seeds)) for init in config.inits
        )
    for setting, extra in (("book", config.book), ("sweep", config.sweep)):
        if extra is not None:
            add(setting, extra.eta, extra.lambdas, extra.seeds or config.seeds)
    return found


def plot_tables(frame: pd.DataFrame, theory: pd.DataFrame, config) -> dict[str, pd.DataFrame]:
    """Tables for DVC plots, per epoch (seed means), columns ``<curve>_<layer>`` (``curves``):
    ``rms`` (with ``..._theory``: the start RMS times the theory factor per epoch), ``ratio``
    (data-gradient / decay term), ``accuracy`` (columns ``<curve>``); ``tail_off``: the rate
    (``tail_off``) of every decayed curve whose setting has more than one seed, its seed mean,
    min, max and trend (``<curve>_<layer>_rate_<mean|min|max|trend>``); ``equilibrium``: one row
    per lambda > 0 of the sweep's eta, each layer's RMS at the end of the run per initialiser,
    and the reference 1/sqrt(n_w). Only the models of the stage's cost."""
    frame = stage_cost_rows(frame, config)
    means = (
        frame.drop(columns=["seed"])
        .groupby(["eta", "init", "lambda", "epoch"])
        .mean(numeric_only=True)
    )
    groups = {key: part.droplevel([0, 1, 2]) for key, part in means.groupby(level=[0, 1, 2])}
    tables: dict[str, dict] = {"rms": {}, "ratio": {}, "accuracy": {}, "tail_off": {}}
    for curve in curves(config):
        eta, init, lam = curve.eta, curve.init, curve.lam
        part = groups.get((eta, init, lam))
        if part is None:
            continue  # no model trained for it (none in a frame made from the same params)
        tables["accuracy"][curve.name] = part["validation_accuracy"]
        rows = frame[(frame["eta"] == eta) & (frame["init"] == init) & (frame["lambda"] == lam)]
        for name in layer_names(config.model.sizes):
            column = f"{curve.name}_{name}"
            tables["rms"][column] = part[f"{name}_rms"]
            if lam == 0:
                continue
            tables["ratio"][column] = part[f"{name}_ratio"]
            factor = theory[
                (theory["eta"] == eta)
                & (theory["init"] == init)
                & (theory["lambda"] == lam)
                & (theory["layer"] == int(name[5:]))
            ]["theory_factor"].iloc[0]
            epochs = part.index.to_series()
            tables["rms"][f"{column}_theory"] = part[f"{name}_rms"].iloc[0] * factor**epochs
            if len(curve.seeds) > 1 and rows["seed"].nunique() > 1:
                rates = band(per_seed(rows, f"{name}_l2"), factor, config.trend_epochs)
                for key, values in rates.items():
                    tables["tail_off"][f"{column}_rate_{key}"] = values
    result = {
        key: pd.DataFrame(columns).rename_axis("epoch").reset_index()
        for key, columns in tables.items()
    }
    result["equilibrium"] = _equilibrium_table(theory, config)
    return result


def _equilibrium_table(theory: pd.DataFrame, config) -> pd.DataFrame:
    """lambda, then ``<init>_<layer>`` (RMS at the run's end, seed mean), its seed range
    ``<init>_<layer>_min`` and ``_max``, and ``inv_sqrt_n_weights``."""
    eta = config.sweep.eta if config.sweep is not None else config.eta
    rows = theory[theory["eta"] == eta]
    parts = []
    for suffix in ("", "_min", "_max"):
        part = rows.pivot_table(
            index="lambda", columns=["init", "layer"], values=f"equilibrium_rms{suffix}"
        )
        part.columns = [f"{init}_layer{layer}{suffix}" for init, layer in part.columns]
        parts.append(part)
    table = pd.concat(parts, axis=1)
    reference = float(theory["inv_sqrt_n_weights"].iloc[0]) if len(theory) else math.nan
    table["inv_sqrt_n_weights"] = reference
    return table.reset_index()


def summarise(theory: pd.DataFrame) -> DynamicsSummary:
    """The theory table and its level-off slopes (``equilibrium.slopes``) as metrics/dynamics.json
    (``DynamicsSummary.to_json``: eta -> init -> lambda -> layer -> numbers, and
    ``equilibrium``: eta -> init -> layer -> the slope of ln RMS on ln lambda; NaN -> None)."""
    rows = theory.to_dict("records")
    fits = slopes(theory).to_dict("records")
    return DynamicsSummary(
        tuple(TheoryRow.from_row(row) for row in rows),
        tuple(EquilibriumSlope.from_row(fit) for fit in fits),
    )
