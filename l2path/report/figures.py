"""The report's figures, drawn with matplotlib from the stages' outputs (never from numbers
typed in here). Each function takes a stage's table or typed rows and returns a ``Figure``;
``png`` renders one.

Conventions: lambda on a log2 axis; a schedule's colour is its ``schedules.Schedule``'s;
a warm schedule's chains drawn per seed, a cold one as the seed mean with a band from the
lowest to the highest seed; every chain step where the in-sample MSE fell beyond noise
(results/monotonicity.csv) marked with a red ring. The dynamics tables' columns are named
by ``dynamics.tables.curves``.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..curvature.classes import PointClass
from ..dynamics.tables import Curve
from ..landscape_records import CurvaturePoint, InterpolationRow
from ..schedules import schedule

CLASS_MARKERS = {PointClass.MINIMUM: "o", PointClass.SADDLE: "X", PointClass.NOT_CRITICAL: "s"}
INIT_COLOURS = {"large": "tab:red", "default": "tab:blue"}
PATH_QUANTITIES = {
    "train_mse": "in-sample MSE",
    "objective": "objective J_λ",
    "data_loss": "data loss L",
    "test_accuracy": "test accuracy",
    "weight_l2": "weight norm ‖w‖",
}


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
    """(schedule, seed, lambda) of the end point of every step where the in-sample MSE fell
    beyond noise."""
    fell = steps[
        (steps["metric"] == "train_mse")
        & steps["decrease"].astype(bool)
        & steps["beyond_noise"].astype(bool)
    ]
    return fell.rename(columns={"lambda_to": "lambda"})[["schedule", "seed", "lambda"]]


def _draw_path(ax, study: pd.DataFrame, marks: pd.DataFrame, column: str) -> None:
    for name, part in study.groupby("schedule"):
        colour = schedule(name).colour
        if not schedule(name).warm:
            stats = part.groupby("lambda")[column].agg(["mean", "min", "max"]).sort_index()
            ax.plot(stats.index, stats["mean"], color=colour, label=f"{name} (seed mean, min–max)")
            ax.fill_between(stats.index, stats["min"], stats["max"], color=colour, alpha=0.2)
            continue
        for seed, chain in part.groupby("seed"):
            chain = chain.sort_values("lambda")
            ax.plot(
                chain["lambda"],
                chain[column],
                color=colour,
                marker=".",
                alpha=0.8,
                label=name if seed == part["seed"].min() else None,
            )
            marked = chain.merge(
                marks[marks["schedule"] == name], on=["schedule", "seed", "lambda"]
            )
            ax.scatter(
                marked["lambda"],
                marked[column],
                s=70,
                facecolors="none",
                edgecolors="red",
                zorder=3,
            )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("λ")
    ax.set_ylabel(PATH_QUANTITIES[column])
    ax.grid(alpha=0.3)


def path_figure(
    study: pd.DataFrame, steps: pd.DataFrame, column: str, log_y: bool = False
) -> Figure:
    """One quantity of the lambda study against lambda, every schedule; red rings: the end
    of every chain step where the in-sample MSE fell."""
    figure = new_figure(figsize=(7.5, 4.2))
    ax = figure.subplots()
    _draw_path(ax, study, _decreased_ends(steps), column)
    if log_y:
        ax.set_yscale("log")
    ax.scatter(
        [],
        [],
        s=70,
        facecolors="none",
        edgecolors="red",
        label="in-sample MSE fell beyond noise on this step",
    )
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
    for ax in list(axes.flat)[len(columns) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    figure.tight_layout()
    return figure


def curvature_figure(hessian: list[CurvaturePoint]) -> Figure:
    """lambda_max and lambda_min of the Hessian of J_lambda against lambda, per schedule,
    the marker giving each point's class."""
    figure = new_figure(figsize=(11, 4))
    top, bottom = figure.subplots(1, 2)
    chains: dict[tuple[str, int], list[CurvaturePoint]] = {}
    for point in hessian:
        chains.setdefault((point.schedule, point.seed), []).append(point)
    for (name, _), part in sorted(chains.items(), key=lambda item: item[0]):
        part = sorted(part, key=lambda point: point.lam)
        colour = schedule(name).colour
        top.plot([p.lam for p in part], [p.lambda_max for p in part], color=colour, alpha=0.6)
        bottom.plot([p.lam for p in part], [p.lambda_min for p in part], color=colour, alpha=0.6)
        for label, marker in CLASS_MARKERS.items():
            cls = [p for p in part if p.curvature_class == label]
            lams = [p.lam for p in cls]
            top.scatter(lams, [p.lambda_max for p in cls], marker=marker, color=colour)
            bottom.scatter(lams, [p.lambda_min for p in cls], marker=marker, color=colour)
    for label, marker in CLASS_MARKERS.items():
        bottom.scatter([], [], marker=marker, color="black", label=label)
    for name in dict.fromkeys(point.schedule for point in hessian):
        bottom.plot([], [], color=schedule(name).colour, label=f"{name} chain")
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
        nodes, weights = (
            spectrum["slq_nodes"].ravel(),
            spectrum["slq_weights"].ravel() / len(spectrum["slq_nodes"]),
        )
        span = nodes.max() - nodes.min()
        grid = np.linspace(nodes.min() - 0.05 * span, nodes.max() + 0.05 * span, 600)
        sd = width * span
        density = (
            weights[None, :] * np.exp(-0.5 * ((grid[:, None] - nodes[None, :]) / sd) ** 2)
        ).sum(1)
        ax.plot(grid, density / (sd * np.sqrt(2 * np.pi)), label=key)
    ax.set_yscale("log")
    ax.set_ylim(bottom=1e-2)
    _label(
        ax, "eigenvalue of the Hessian of J_λ", "density (smoothed)", "eigenvalue densities (SLQ)"
    )
    return figure


def interpolation_figure(interpolation: list[InterpolationRow], max_steps: int = 6) -> Figure:
    """J_lambda on the segment between consecutive chain points, under the step's first lambda,
    for the first ``max_steps`` steps (relative to the value at t = 0)."""
    figure = new_figure(figsize=(7.5, 4))
    ax = figure.subplots()
    segments: dict[tuple[str, str], list[InterpolationRow]] = {}
    for row in interpolation:
        if row.objective_lambda == "from":
            segments.setdefault((row.start, row.end), []).append(row)
    for (start, end), part in list(segments.items())[:max_steps]:
        part = sorted(part, key=lambda row: row.t)
        ax.plot(
            [r.t for r in part],
            [r.objective - part[0].objective for r in part],
            marker=".",
            label=f"{start} → {end.split('/')[-1]}",
        )
    ax.axhline(0, color="black", lw=0.8)
    _label(
        ax,
        "t (0: point at λ_k, 1: point at λ_k+1)",
        "J_λk(t) − J_λk(0)",
        "straight line between consecutive chain points",
    )
    return figure


def dynamics_figure(
    rms: pd.DataFrame,
    ratio: pd.DataFrame,
    question: list[Curve],
    control: list[Curve],
    layers: list[str],
) -> Figure:
    """Per layer: RMS weight against epoch for each initialiser of the question's setting
    (solid), its pure-decay theory (dashed) and the lambda = 0 control of the same initialiser
    (dotted) where present; below, the ratio of the data-gradient term to the decay term (log
    scale, 1 = balance)."""
    controls = {curve.init: curve for curve in control}
    figure = new_figure(figsize=(5.5 * len(layers), 7))
    axes = figure.subplots(2, len(layers), squeeze=False)
    for column, layer in enumerate(layers):
        top, bottom = axes[0, column], axes[1, column]
        for curve in question:
            init, colour = curve.init, INIT_COLOURS.get(curve.init, "grey")
            tag = f"{curve.name}_{layer}"
            top.plot(rms["epoch"], rms[tag], color=colour, label=f"{init} init, λ = {curve.lam:g}")
            top.plot(
                rms["epoch"],
                rms[f"{tag}_theory"],
                color=colour,
                ls="--",
                label=f"{init}: pure decay (theory)",
            )
            twin = controls.get(init)
            if twin is not None and f"{twin.name}_{layer}" in rms:
                top.plot(
                    rms["epoch"],
                    rms[f"{twin.name}_{layer}"],
                    color=colour,
                    ls=":",
                    label=f"{init}: λ = 0 control",
                )
            bottom.plot(ratio["epoch"], ratio[tag], color=colour, label=f"{init} init")
        top.set_yscale("log")
        top.set_title(f"{layer}: RMS weight", fontsize=10)
        bottom.set_yscale("log")
        bottom.axhline(1, color="black", lw=0.8)
        bottom.set_title(
            f"{layer}: data-gradient term / decay term (per step, full batch)", fontsize=10
        )
        for ax in (top, bottom):
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
        top.legend(fontsize=7)
        bottom.legend(fontsize=7)
    figure.tight_layout()
    return figure


def tail_off_figure(
    rates: pd.DataFrame, curves: list[Curve], fraction: float, layers: list[str]
) -> Figure:
    """Per layer, for every curve of ``curves`` with ``<curve>_<layer>_rate_*`` columns in the
    table (``dynamics.tables``; a model in two settings drawn once), ordered by initialiser,
    eta and lambda: the seed mean of each epoch's rate, the band over seeds, the trend, and
    the cut ``fraction``."""
    figure = new_figure(figsize=(5.5 * len(layers), 3.8))
    axes = figure.subplots(1, len(layers), squeeze=False)[0]
    for ax, layer in zip(axes, layers):
        drawn = {}
        for curve in curves:
            if f"{curve.name}_{layer}_rate_mean" in rates:
                drawn.setdefault((curve.init, curve.eta, curve.lam), curve)
        for index, key in enumerate(sorted(drawn)):
            curve, colour = drawn[key], f"C{index}"
            column = f"{curve.name}_{layer}_rate"
            label = f"{curve.init}, η = {curve.eta:g}, λ = {curve.lam:g}"
            ax.fill_between(
                rates["epoch"],
                rates[f"{column}_min"],
                rates[f"{column}_max"],
                color=colour,
                alpha=0.2,
                lw=0,
            )
            ax.plot(rates["epoch"], rates[f"{column}_mean"], color=colour, lw=0.8, label=label)
            ax.plot(rates["epoch"], rates[f"{column}_trend"], color=colour, lw=1.8, ls="--")
        ax.axhline(fraction, color="black", lw=0.8, ls=":", label=f"cut {fraction:g}")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_ylim(-1, 1.5)
        _label(ax, "epoch", "log-shrink / pure decay's", f"{layer}: shrink rate relative to theory")
    figure.tight_layout()
    return figure


def equilibrium_figure(level: pd.DataFrame, inits: list[str], layers: list[str]) -> Figure:
    """Per layer, the RMS at the end of the sweep against lambda (log-log) for each
    initialiser (seed mean, the seeds' range as a band where the table has it), with the
    reference 1/sqrt(n_w)."""
    figure = new_figure(figsize=(5.5 * len(layers), 3.8))
    axes = figure.subplots(1, len(layers), squeeze=False)[0]
    for ax, layer in zip(axes, layers):
        for init in inits:
            column = f"{init}_{layer}"
            if column in level:
                ax.plot(
                    level["lambda"],
                    level[column],
                    "o-",
                    color=INIT_COLOURS.get(init, "grey"),
                    label=f"{init} init",
                )
                if f"{column}_min" in level:
                    ax.fill_between(
                        level["lambda"],
                        level[f"{column}_min"],
                        level[f"{column}_max"],
                        color=INIT_COLOURS.get(init, "grey"),
                        alpha=0.25,
                        linewidth=0,
                    )
        ax.plot(level["lambda"], level["inv_sqrt_n_weights"], color="black", ls=":", label="1/√n_w")
        ax.set_xscale("log")
        ax.set_yscale("log")
        _label(ax, "λ", "RMS weight at the end", f"{layer}: level-off scale")
    figure.tight_layout()
    return figure
