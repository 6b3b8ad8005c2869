"""The converged answer as a picture: per chain seed, a bifurcation diagram of every minimum
found (results/chain_points.csv, results/chain_steps.csv, results/chains.csv).

Two rows share the lambda axis (log2): J_lambda on top, the in-sample MSE below. Drawn are
the points with no proved negative curvature (``ChainPoint.minimum_found``): the seed's
ascending chain and its descending (graduated) chain as lines in their schedules' colours,
every cold start's minima as grey dots (the cold starts are the same problem for every seed);
a point still a proved saddle after its escapes is a black cross. Vertical lines: each
located fold of the seed's steps (dotted, ``fold_lambda``) and the trivial point's lambda_c
(dashed, ``trivial_threshold``). The hysteresis window, the lambdas where the descending
minimum's J is lower than the ascending one's (``chain.minima.graduated``), is shaded.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from ..chain.minima import graduated
from ..chain.records import ChainDirection, ChainPoint, ChainRecord, ChainStep
from ..schedules import schedule
from .figures import new_figure


def _series(points: list[ChainPoint], direction: ChainDirection, seed: int | None):
    mine = [
        p
        for p in points
        if p.direction is direction and (seed is None or p.seed == seed) and p.minimum_found
    ]
    return sorted(mine, key=lambda p: p.lam)


def _window(points: list[ChainPoint], seed: int) -> tuple[float, float] | None:
    lower = [c.lam for c in graduated(points) if c.seed == seed and c.lower]
    return (min(lower), max(lower)) if lower else None


def minima_figure(
    points: list[ChainPoint], steps: list[ChainStep], chains: list[ChainRecord] | None
) -> Figure:
    seeds = sorted({p.seed for p in points if p.direction is ChainDirection.UP})
    figure = new_figure((4.6 * max(len(seeds), 1), 6.2))
    axes = figure.subplots(2, max(len(seeds), 1), sharex=True, squeeze=False)
    cold = _series(points, ChainDirection.COLD, None)
    for column, seed in enumerate(seeds):
        top, bottom = axes[0][column], axes[1][column]
        window = _window(points, seed)
        folds = [s.fold_lambda for s in steps if s.seed == seed and s.fold_lambda is not None]
        thresholds = [
            c.trivial_threshold
            for c in chains or []
            if c.seed == seed and c.trivial_threshold is not None
        ]
        saddles = [p for p in points if p.seed == seed and p.proved_saddle]
        for ax, value, label in ((top, "objective", "J_λ"), (bottom, "mse", "in-sample MSE")):
            for direction in (ChainDirection.UP, ChainDirection.DOWN):
                series = _series(points, direction, seed)
                ax.plot(
                    [p.lam for p in series],
                    [getattr(p, value) for p in series],
                    marker="o",
                    markersize=3,
                    color=schedule(direction.value).colour,
                    label=f"{direction.value} chain",
                )
            ax.scatter(
                [p.lam for p in cold],
                [getattr(p, value) for p in cold],
                s=14,
                color="0.55",
                zorder=3,
                label="cold starts",
            )
            if saddles:
                ax.scatter(
                    [p.lam for p in saddles],
                    [getattr(p, value) for p in saddles],
                    marker="x",
                    color="black",
                    label="proved saddle (escapes spent)",
                )
            for fold in folds:
                ax.axvline(fold, color="tab:red", linestyle=":", linewidth=0.8)
            for threshold in thresholds:
                ax.axvline(threshold, color="black", linestyle="--", linewidth=0.9)
            if window:
                ax.axvspan(window[0], window[1], color="gold", alpha=0.25)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_ylabel(label)
        top.set_title(
            f"seed {seed}" + (f": λ_c = {thresholds[0]:.4g} (dashed)" if thresholds else "")
        )
        bottom.set_xlabel("λ")
    if seeds:
        axes[0][0].plot([], [], color="tab:red", linestyle=":", label="located fold")
        axes[0][0].axvspan(0, 0, color="gold", alpha=0.25, label="graduated J lower")
        axes[0][0].legend(fontsize=7, loc="best")
    figure.tight_layout()
    return figure
