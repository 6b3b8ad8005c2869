"""The report's figures, drawn with matplotlib from the stages' tables (never from numbers
typed in here). Each function takes pandas tables and returns a ``Figure``; ``png`` renders one.

Conventions: lambda on a log2 axis; the ascending and descending chains drawn per seed,
cold starts as the seed mean with a band from the lowest to the highest seed; every chain
step where the in-sample MSE fell beyond noise (results/monotonicity.csv) marked with a red ring.
"""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

SCHEDULE_COLOURS = {"ascending": "tab:blue", "descending": "tab:orange", "cold": "tab:green"}
CLASS_MARKERS = {"minimum": "o", "saddle": "X", "not critical": "s"}
INIT_COLOURS = {"large": "tab:red", "default": "tab:blue"}
PATH_QUANTITIES = {"train_mse": "in-sample MSE", "objective": "objective J_λ", "data_loss": "data loss L",
                   "test_accuracy": "test accuracy", "weight_l2": "weight norm ‖w‖"}


def new_figure(figsize: tuple[float, float]) -> Figure:
    """A figure drawn by Agg (no screen, no global pyplot state)."""
    figure = Figure(figsize=figsize)
    FigureCanvasAgg(figure)
    return figure


def png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def _decreased_ends(steps: pd.DataFrame) -> pd.DataFrame:
    """(schedule, seed, lambda) of the end point of every step where the in-sample MSE fell beyond noise."""
    fell = steps[(steps["metric"] == "train_mse") & steps["decrease"].astype(bool)
                 & steps["beyond_noise"].astype(bool)]
    return fell.rename(columns={"lambda_to": "lambda"})[["schedule", "seed", "lambda"]]


def _draw_path(ax, study: pd.DataFrame, marks: pd.DataFrame, column: str) -> None:
    for schedule, part in study.groupby("schedule"):
        colour = SCHEDULE_COLOURS.get(schedule, "grey")
        if schedule == "cold":
            stats = part.groupby("lambda")[column].agg(["mean", "min", "max"]).sort_index()
            ax.plot(stats.index, stats["mean"], color=colour, label="cold (seed mean, min–max)")
            ax.fill_between(stats.index, stats["min"], stats["max"], color=colour, alpha=0.2)
            continue
        for seed, chain in part.groupby("seed"):
            chain = chain.sort_values("lambda")
            ax.plot(chain["lambda"], chain[column], color=colour, marker=".", alpha=0.8,
                    label=schedule if seed == part["seed"].min() else None)
            marked = chain.merge(marks[marks["schedule"] == schedule], on=["schedule", "seed", "lambda"])
            ax.scatter(marked["lambda"], marked[column], s=70, facecolors="none", edgecolors="red", zorder=3)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("λ")
    ax.set_ylabel(PATH_QUANTITIES[column])
    ax.grid(alpha=0.3)


def path_figure(study: pd.DataFrame, steps: pd.DataFrame, column: str, log_y: bool = False) -> Figure:
    """One quantity of the lambda study against lambda, every schedule; red rings: the end
    of every chain step where the in-sample MSE fell."""
    figure = new_figure(figsize=(7.5, 4.2))
    ax = figure.subplots()
    _draw_path(ax, study, _decreased_ends(steps), column)
    if log_y:
        ax.set_yscale("log")
    ax.scatter([], [], s=70, facecolors="none", edgecolors="red", label="in-sample MSE fell beyond noise on this step")
    ax.legend(fontsize=8)
    ax.set_title(f"{PATH_QUANTITIES[column]} along the λ path")
    return figure


def path_panels(study: pd.DataFrame, steps: pd.DataFrame, columns: list[str]) -> Figure:
    """Several quantities side by side (2 per row), same marks as ``path_figure``."""
    rows = (len(columns) + 1) // 2
    figure = new_figure(figsize=(11, 3.6 * rows))
    axes = figure.subplots(rows, 2, squeeze=False)
    marks = _decreased_ends(steps)
    for ax, column in zip(axes.flat, columns):
        _draw_path(ax, study, marks, column)
        ax.set_title(PATH_QUANTITIES[column], fontsize=10)
    for ax in list(axes.flat)[len(columns):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    figure.tight_layout()
    return figure


def curvature_figure(hessian: pd.DataFrame) -> Figure:
    """lambda_max and lambda_min of the Hessian of J_lambda against lambda, per schedule,
    the marker giving each point's class."""
    figure = new_figure(figsize=(11, 4))
    top, bottom = figure.subplots(1, 2)
    for (schedule, seed), part in hessian.groupby(["schedule", "seed"]):
        part = part.sort_values("lambda")
        colour = SCHEDULE_COLOURS.get(schedule, "grey")
        top.plot(part["lambda"], part["lambda_max"], color=colour, alpha=0.6)
        bottom.plot(part["lambda"], part["lambda_min"], color=colour, alpha=0.6)
        for label, marker in CLASS_MARKERS.items():
            cls = part[part["class"] == label]
            top.scatter(cls["lambda"], cls["lambda_max"], marker=marker, color=colour)
            bottom.scatter(cls["lambda"], cls["lambda_min"], marker=marker, color=colour)
    for label, marker in CLASS_MARKERS.items():
        bottom.scatter([], [], marker=marker, color="black", label=label)
    for schedule in hessian["schedule"].unique():
        bottom.plot([], [], color=SCHEDULE_COLOURS.get(schedule, "grey"), label=f"{schedule} chain")
    bottom.axhline(0, color="black", lw=0.8)
    bottom.set_yscale("symlog", linthresh=1e-6)
    for ax, name in ((top, "largest eigenvalue λ_max"), (bottom, "smallest eigenvalue λ_min")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("λ")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
    bottom.legend(fontsize=7)
    figure.tight_layout()
    return figure


def _label(ax, xlabel: str, ylabel: str, title: str) -> None:
    """Axis labels, title, a small legend and a light grid."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def density_figure(spectra: dict[str, dict[str, np.ndarray]], width: float = 0.01) -> Figure:
    """Eigenvalue densities by stochastic Lanczos quadrature: each probe's Ritz nodes
    theta_j with weights tau_j, smoothed by a Gaussian of sd ``width`` * (node range), on a
    linear eigenvalue axis and a log density axis (most of the mass sits at zero, the
    outliers carry the large curvature)."""
    figure = new_figure(figsize=(7.5, 4))
    ax = figure.subplots()
    for key, spectrum in spectra.items():
        nodes, weights = spectrum["slq_nodes"].ravel(), spectrum["slq_weights"].ravel() / len(spectrum["slq_nodes"])
        span = nodes.max() - nodes.min()
        grid = np.linspace(nodes.min() - 0.05 * span, nodes.max() + 0.05 * span, 600)
        sd = width * span
        density = (weights[None, :] * np.exp(-0.5 * ((grid[:, None] - nodes[None, :]) / sd) ** 2)).sum(1)
        ax.plot(grid, density / (sd * np.sqrt(2 * np.pi)), label=key)
    ax.set_yscale("log")
    ax.set_ylim(bottom=1e-2)
    _label(ax, "eigenvalue of the Hessian of J_λ", "density (smoothed)", "eigenvalue densities (SLQ)")
    return figure


def interpolation_figure(interpolation: pd.DataFrame, max_steps: int = 6) -> Figure:
    """J_lambda on the segment between consecutive chain points, under the step's first lambda,
    for the first ``max_steps`` steps (relative to the value at t = 0)."""
    figure = new_figure(figsize=(7.5, 4))
    ax = figure.subplots()
    first = interpolation[interpolation["objective_lambda"] == "from"]
    for index, ((start, end), part) in enumerate(first.groupby(["start", "end"], sort=False)):
        if index == max_steps:
            break
        part = part.sort_values("t")
        ax.plot(part["t"], part["objective"] - part["objective"].iloc[0], marker=".", label=f"{start} → {end.split('/')[-1]}")
    ax.axhline(0, color="black", lw=0.8)
    _label(ax, "t (0: point at λ_k, 1: point at λ_k+1)", "J_λk(t) − J_λk(0)",
           "straight line between consecutive chain points")
    return figure


def dynamics_figure(rms: pd.DataFrame, ratio: pd.DataFrame, inits: list[str], eta: float, lam: float,
                    layers: list[str]) -> Figure:
    """Per layer: RMS weight against epoch for each initialiser at ``lam`` (solid), its pure-decay
    theory (dashed) and the lambda = 0 control (dotted) where present; below, the ratio of the
    data-gradient term to the decay term (log scale, 1 = balance)."""
    figure = new_figure(figsize=(5.5 * len(layers), 7))
    axes = figure.subplots(2, len(layers), squeeze=False)
    for column, layer in enumerate(layers):
        top, bottom = axes[0, column], axes[1, column]
        for init in inits:
            colour = INIT_COLOURS.get(init, "grey")
            tag = f"{init}_eta{eta:g}_lambda{lam:g}_{layer}"
            top.plot(rms["epoch"], rms[tag], color=colour, label=f"{init} init, λ = {lam:g}")
            top.plot(rms["epoch"], rms[f"{tag}_theory"], color=colour, ls="--", label=f"{init}: pure decay (theory)")
            control = f"{init}_eta{eta:g}_lambda0_{layer}"
            if control in rms:
                top.plot(rms["epoch"], rms[control], color=colour, ls=":", label=f"{init}: λ = 0 control")
            bottom.plot(ratio["epoch"], ratio[tag], color=colour, label=f"{init} init")
        top.set_yscale("log")
        top.set_title(f"{layer}: RMS weight", fontsize=10)
        bottom.set_yscale("log")
        bottom.axhline(1, color="black", lw=0.8)
        bottom.set_title(f"{layer}: data-gradient term / decay term (per step, full batch)", fontsize=10)
        for ax in (top, bottom):
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
        top.legend(fontsize=7)
        bottom.legend(fontsize=7)
    figure.tight_layout()
    return figure


def tail_off_figure(rates: pd.DataFrame, fraction: float, layers: list[str]) -> Figure:
    """Per layer, for every ``<init>_eta<eta>_lambda<lambda>_<layer>_rate_*`` group of the table
    (``dynamics.tables``): the seed mean of each epoch's rate, the band over seeds, the trend,
    and the cut ``fraction``."""
    figure = new_figure(figsize=(5.5 * len(layers), 3.8))
    axes = figure.subplots(1, len(layers), squeeze=False)[0]
    for ax, layer in zip(axes, layers):
        groups = sorted({c[:-len("_rate_mean")] for c in rates.columns if c.endswith(f"{layer}_rate_mean")})
        for index, group in enumerate(groups):
            colour = f"C{index}"
            label = group[:-len(layer) - 1].replace("_eta", ", η = ").replace("_lambda", ", λ = ")
            ax.fill_between(rates["epoch"], rates[f"{group}_rate_min"], rates[f"{group}_rate_max"], color=colour,
                            alpha=0.2, lw=0)
            ax.plot(rates["epoch"], rates[f"{group}_rate_mean"], color=colour, lw=0.8, label=label)
            ax.plot(rates["epoch"], rates[f"{group}_rate_trend"], color=colour, lw=1.8, ls="--")
        ax.axhline(fraction, color="black", lw=0.8, ls=":", label=f"cut {fraction:g}")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_ylim(-1, 1.5)
        _label(ax, "epoch", "log-shrink / pure decay's", f"{layer}: shrink rate relative to theory")
    figure.tight_layout()
    return figure


def equilibrium_figure(level: pd.DataFrame, inits: list[str], layers: list[str]) -> Figure:
    """Per layer, the RMS at the end of the sweep against lambda (log-log) for each
    initialiser, with the reference 1/sqrt(n_w)."""
    figure = new_figure(figsize=(5.5 * len(layers), 3.8))
    axes = figure.subplots(1, len(layers), squeeze=False)[0]
    for ax, layer in zip(axes, layers):
        for init in inits:
            column = f"{init}_{layer}"
            if column in level:
                ax.plot(level["lambda"], level[column], "o-", color=INIT_COLOURS.get(init, "grey"), label=f"{init} init")
        ax.plot(level["lambda"], level["inv_sqrt_n_weights"], color="black", ls=":", label="1/√n_w")
        ax.set_xscale("log")
        ax.set_yscale("log")
        _label(ax, "λ", "RMS weight at the end", f"{layer}: level-off scale")
    figure.tight_layout()
    return figure
