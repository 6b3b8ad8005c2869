"""The dynamics stage's DVC plot tables and nested metrics."""
from __future__ import annotations

import math

import pandas as pd

from .equilibrium import slopes
from .tail_off import band
from .theory import per_seed
from .training import layer_names

PLOT_NAMES = ("rms", "ratio", "accuracy", "tail_off", "equilibrium")  # plots/dynamics/<name>.csv, in dvc.yaml

def tag(init: str, eta: float, lam: float) -> str:
    return f"{init}_eta{eta:g}_lambda{lam:g}"


def plot_tables(frame: pd.DataFrame, theory: pd.DataFrame, config) -> dict[str, pd.DataFrame]:
    """Tables for DVC plots, columns ``<init>_eta<eta>_lambda<lambda>_<layer>`` per epoch
    (seed means): ``rms`` (with ``..._theory``: the start RMS times the theory factor per
    epoch), ``ratio`` (data-gradient / decay term), ``accuracy``; ``tail_off``: the rate
    (``tail_off``) of every decayed setting run with more than one seed, its seed mean, min,
    max and trend; ``equilibrium``: one row per lambda > 0 of the sweep's eta, each layer's
    RMS at the end of the run per initialiser, and the reference 1/sqrt(n_w)."""
    means = frame.drop(columns=["seed"]).groupby(["eta", "init", "lambda", "epoch"]).mean(numeric_only=True)
    tables = {"rms": {}, "ratio": {}, "accuracy": {}, "tail_off": {}}
    for (eta, init, lam), part in means.groupby(level=[0, 1, 2]):
        part = part.droplevel([0, 1, 2])
        name_of = tag(init, eta, lam)
        tables["accuracy"][name_of] = part["validation_accuracy"]
        rows = frame[(frame["eta"] == eta) & (frame["init"] == init) & (frame["lambda"] == lam)]
        for name in layer_names(config.model.sizes):
            tables["rms"][f"{name_of}_{name}"] = part[f"{name}_rms"]
            if lam == 0:
                continue
            tables["ratio"][f"{name_of}_{name}"] = part[f"{name}_ratio"]
            factor = theory[(theory["eta"] == eta) & (theory["init"] == init) & (theory["lambda"] == lam)
                            & (theory["layer"] == int(name[5:]))]["theory_factor"].iloc[0]
            tables["rms"][f"{name_of}_{name}_theory"] = part[f"{name}_rms"].iloc[0] * factor ** part.index.to_series()
            if rows["seed"].nunique() > 1:
                for key, values in band(per_seed(rows, f"{name}_l2"), factor, config.trend_epochs).items():
                    tables["tail_off"][f"{name_of}_{name}_rate_{key}"] = values
    result = {key: pd.DataFrame(columns).rename_axis("epoch").reset_index() for key, columns in tables.items()}
    result["equilibrium"] = _equilibrium_table(theory, config)
    return result


def _equilibrium_table(theory: pd.DataFrame, config) -> pd.DataFrame:
    """lambda, then ``<init>_<layer>`` (RMS at the run's end) and ``inv_sqrt_n_weights``."""
    eta = config.sweep.eta if config.sweep is not None else config.eta
    rows = theory[theory["eta"] == eta]
    table = rows.pivot_table(index="lambda", columns=["init", "layer"], values="equilibrium_rms")
    table.columns = [f"{init}_layer{layer}" for init, layer in table.columns]
    table["inv_sqrt_n_weights"] = float(theory["inv_sqrt_n_weights"].iloc[0]) if len(theory) else math.nan
    return table.reset_index()


def _clean(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    return bool(value) if isinstance(value, bool) or type(value).__name__ == "bool_" else value


def metrics(theory: pd.DataFrame) -> dict:
    """The theory table as nested DVC metrics, eta -> init -> lambda -> layer -> numbers, and
    ``equilibrium``: eta -> init -> layer -> the slope of ln RMS on ln lambda (NaN -> None)."""
    result: dict = {}
    for row in theory.to_dict("records"):
        numbers = {k: _clean(v) for k, v in row.items() if k not in ("eta", "init", "lambda", "layer")}
        (result.setdefault(f"eta{row['eta']:g}", {}).setdefault(row["init"], {})
         .setdefault(f"lambda{row['lambda']:g}", {})[f"layer{row['layer']}"]) = numbers
    for row in slopes(theory).to_dict("records"):
        numbers = {k: _clean(v) for k, v in row.items() if k not in ("eta", "init", "layer")}
        (result.setdefault("equilibrium", {}).setdefault(f"eta{row['eta']:g}", {})
         .setdefault(row["init"], {})[f"layer{row['layer']}"]) = numbers
    return result
