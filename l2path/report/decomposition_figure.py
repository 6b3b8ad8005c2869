"""The SGD chain's formal result as a figure: each warm step's change of the in-sample MSE
split into the lambda effect m(child) - m(control) and the optimisation deficit m(control) -
m(parent) (``decomposition``; results/decomposition.csv), against the step's end lambda.

One panel per warm schedule, a marker per seed. Error bars: +-z_alpha * sd, the one-sided
test's threshold at the study's false-alarm rate, with the *paired* sd for the lambda effect
(child and control share start and mini-batch order) and the unpaired ``deficit_sd`` for the
deficit (parent and control do not run the same epochs). A lambda effect whose bar stays on
the lemma's wrong side of zero (below it on an ascending chain, above it on a descending one)
is beyond noise. The y-axis is symmetric-log, linear within the median ``detectable`` of the
table (the noise scale) so that sub-noise terms are not blown up.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.stats import norm

from ..schedules import schedule
from .figures import new_figure

# term column -> (its words, colour, the sd column of its error bar)
TERMS = {
    "lambda_effect": ("λ effect m(child) − m(control)", "tab:blue", "sd_paired"),
    "optimisation_deficit": (
        "optimisation deficit m(control) − m(parent)",
        "tab:orange",
        "deficit_sd",
    ),
}
SEED_MARKERS = ("o", "s", "^", "D", "v", "P")


def line_label(term: str, seed: int) -> str:
    """The label of one term's line for one seed (what a reader of the axes finds it by)."""
    return f"{TERMS[term][0]}, seed {seed}"


def _panel(ax, part: pd.DataFrame, z_alpha: float) -> None:
    for index, (seed, chain) in enumerate(part.groupby("seed", sort=True)):
        chain = chain.sort_values("lambda_to")
        marker = SEED_MARKERS[index % len(SEED_MARKERS)]
        for term, (_, colour, sd) in TERMS.items():
            ax.errorbar(
                chain["lambda_to"],
                chain[term],
                yerr=z_alpha * chain[sd],
                color=colour,
                marker=marker,
                markersize=4,
                capsize=2,
                linewidth=1,
                alpha=0.85,
                label=line_label(term, int(seed)),
            )
        ax.plot(chain["lambda_to"], chain["change"], color="0.6", linestyle=":", linewidth=1)
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("λ at the step's end (the child's)")
    ax.grid(alpha=0.3)


def decomposition_figure(table: pd.DataFrame, false_alarm: float) -> Figure:
    """The lambda effect and the optimisation deficit of every warm step of ``table``
    (``decomposition.decomposition_table``) against lambda_to, a panel per schedule, bars
    +-z_alpha * sd (paired for the effect, unpaired for the deficit); the dotted grey line is
    the whole change, their sum."""
    names = sorted(table["schedule"].unique()) if len(table) else []
    figure = new_figure(figsize=(5.5 * max(len(names), 1), 4.2))
    axes = figure.subplots(1, max(len(names), 1), squeeze=False)[0]
    z_alpha = float(norm.isf(false_alarm))
    noise = table["detectable"].abs().to_numpy(dtype=float) if len(table) else np.empty(0)
    noise = noise[np.isfinite(noise) & (noise > 0)]
    for ax, name in zip(axes, names):
        _panel(ax, table[table["schedule"] == name], z_alpha)
        if len(noise):
            ax.set_yscale("symlog", linthresh=float(np.median(noise)))
        ax.set_title(f"{schedule(name).label}: split of each step's change", fontsize=10)
    axes[0].set_ylabel("in-sample MSE")
    if names:
        axes[0].legend(fontsize=7)
    else:
        axes[0].set_title("no warm step with a control")
    figure.tight_layout()
    return figure
