"""The study's report: a self-contained HTML page (figures embedded as PNG data URIs) and a
short Markdown summary, both built from the stages' tables by ``build_report``.

Sections: the answers in plain words (``l2path.report.answers``), the lambda path (in-sample MSE,
objective, data loss, test accuracy, weight norm), curvature (lambda_min/lambda_max per
point with its class, eigenvalue densities, escape tests, interpolation), the weight-decay
dynamics (trajectories against the theory, the theory-vs-measured table), provenance
(params, data md5, links to the MLflow runs).
"""

from __future__ import annotations

import base64
import html
import math
from collections import Counter
from dataclasses import dataclass

import pandas as pd

from ..curvature.classes import PointClass
from ..dynamics.tables import curves
from . import figures
from .decomposition_figure import decomposition_figure
from .minima_figure import minima_figure
from .first_screen import first_screen
from .power_sentence import power_sentence
from .answers import LEMMA, continuation_answers, opening_answer
from .chain_answers import chain_answer, chain_table
from .display_tables import CHAIN_TABLE, VERDICT_TABLE, display, folded
from .decay_answers import dynamics_answers, equilibrium_slopes, question_rows
from .inputs import ReportInputs
from .numbers import (
    DecayNumbers,
    HessianNumbers,
    KeyNumbers,
    ScheduleNumbers,
    SlopeNumbers,
    StudyNumbers,
    VerdictNumbers,
)

__all__ = ["Report", "ReportInputs", "build_report", "key_numbers"]

THEORY_COLUMNS = [
    "eta",
    "init",
    "lambda",
    "layer",
    "theory_factor",
    "measured_factor",
    "relative_deviation",
    "small_epochs",
    "radial_ratio_small",
    "theory_factor_with_gradient",
    "first_order_share_of_gap",
    "second_order_factor",
    "second_order_share_of_gap",
    "second_order_residual",
    "outward_epochs",
    "radial_ratio_quadratic_median",
    "saturation_share_z4_end",
    "shrink_rate_end",
    "tail_off_epoch",
    "tail_off_epoch_min",
    "tail_off_epoch_max",
    "tail_off_rms",
    "equilibrium_rms",
    "equilibrium_levelled",
    "equilibrium_level_epoch",
    "equilibrium_radial_ratio",
    "equilibrium_balance_radial_ratio",
    "var_question",
    "reported_variance",
    "validation_accuracy_question",
    "validation_accuracy_question_control",
    "ratio_start",
    "ratio_median",
    "radial_ratio_median",
    "rms_start",
    "rms_end",
    "inv_sqrt_n_weights",
    "inv_sqrt_n_in",
    "l2_change_question",
    "l2_change_question_control",
]
VERDICT_COLUMNS = [
    "schedule",
    "seed",
    "lambda_from",
    "lambda_to",
    "change",
    "noise_sd",
    "z",
    "beyond_noise",
    "run_length",
    "run_beyond_noise",
    "control_change",
    "control_gap",
    "control_gap_sd",
    "control_gap_sd_paired",
    "control_gap_detectable",
    "verdict",
]
HESSIAN_COLUMNS = [
    "key",
    "lambda",
    "grad_norm",
    "class",
    "lambda_max",
    "lambda_min",
    "lambda_min_residual",
    "bottom_converged",
    "index_estimate",
    "trace",
    "hvps",
]


@dataclass
class Report:
    html: str
    markdown: str
    figures: dict[str, bytes]  # file name -> PNG
    numbers: KeyNumbers  # key numbers (DVC metrics: numbers.to_json())


def _figure_set(inputs: ReportInputs) -> dict[str, tuple[str, bytes]]:
    """name -> (caption, PNG)."""
    made = {
        "path_mse.png": (
            "In-sample MSE against λ for every schedule; red rings mark each step on which it "
            "fell as λ rose by more than the within-stage noise.",
            figures.png(figures.path_figure(inputs.study, inputs.steps, "train_mse", log_y=True)),
        ),
        "path_panels.png": (
            "The objective, data loss, test accuracy and weight norm along the same paths.",
            figures.png(
                figures.path_panels(
                    inputs.study,
                    inputs.steps,
                    ["objective", "data_loss", "test_accuracy", "weight_l2"],
                )
            ),
        ),
    }
    if inputs.decomposition is not None and len(inputs.decomposition) and inputs.false_alarm:
        made["decomposition.png"] = (
            "Each warm step's change of the in-sample MSE (dotted) split into the λ effect "
            "m(child) − m(control) and the optimisation deficit m(control) − m(parent); bars "
            "±z_α·sd, paired for the λ effect (results/decomposition.csv).",
            figures.png(decomposition_figure(inputs.decomposition, inputs.false_alarm)),
        )
    if inputs.chain_points and inputs.chain_steps is not None:
        made["minima.png"] = (
            "Every minimum found per chain seed, J_λ (top) and in-sample MSE (bottom) against λ: "
            "the ascending chain, the descending chain from w = 0 (graduated optimisation) and "
            "the cold starts (grey); dotted: located folds, dashed: the trivial point's λ_c, "
            "shaded: where the graduated minimum's J is lower (results/chain_points.csv, "
            "results/chain_steps.csv, results/chains.csv).",
            figures.png(minima_figure(inputs.chain_points, inputs.chain_steps, inputs.chains)),
        )
    if inputs.hessian is not None and len(inputs.hessian):
        made["curvature.png"] = (
            "Extreme eigenvalues of the Hessian of J_λ at the analysed points (marker: class).",
            figures.png(figures.curvature_figure(inputs.hessian)),
        )
    if inputs.spectra:
        made["densities.png"] = (
            "Eigenvalue densities by stochastic Lanczos quadrature at a few points.",
            figures.png(figures.density_figure(inputs.spectra)),
        )
    if inputs.interpolation is not None and len(inputs.interpolation):
        made["interpolation.png"] = (
            "J_λ on the straight line between consecutive chain points (no rise: no barrier).",
            figures.png(figures.interpolation_figure(inputs.interpolation)),
        )
    if inputs.theory is not None and len(inputs.theory):
        config = inputs.dynamics_config
        lam = next(value for value in config.lambdas if value > 0)
        layers = [f"layer{layer}" for layer in range(1, len(config.model.sizes))]
        every = curves(config)
        question = [curve for curve in every if curve.setting == "question"]
        control = [curve for curve in every if curve.setting == "control"]
        made["dynamics.png"] = (
            f"RMS weight per layer and initialiser (η = {config.eta:g}, λ = {lam:g}, "
            f"m = {config.batch_size}), against pure decay and the λ = 0 control; below, the "
            "data-gradient term over the decay term.",
            figures.png(
                figures.dynamics_figure(
                    inputs.dynamics_plots["rms"],
                    inputs.dynamics_plots["ratio"],
                    question,
                    control,
                    layers,
                )
            ),
        )
        rates = inputs.dynamics_plots.get("tail_off")
        if rates is not None and len(rates.columns) > 1:
            made["tail_off.png"] = (
                f"Each epoch's log-shrink as a share of pure decay's (1: pure decay, 0: level), "
                f"per initialiser and η at λ = {lam:g}: seed mean, band over seeds, "
                f"{config.trend_epochs}-epoch trend and the {config.tail_off_fraction:.0%} cut.",
                figures.png(
                    figures.tail_off_figure(rates, every, config.tail_off_fraction, layers)
                ),
            )
        level = inputs.dynamics_plots.get("equilibrium")
        if config.sweep is not None and level is not None and len(level):
            made["equilibrium.png"] = (
                f"RMS weight at the end of the λ sweep (η = {config.sweep.eta:g}, "
                f"{config.sweep.epochs} epochs) per layer and initialiser, against 1/√n_w.",
                figures.png(figures.equilibrium_figure(level, list(config.inits), layers)),
            )
    return made


def _table_html(table: pd.DataFrame) -> str:
    return table.to_html(
        index=False, float_format=lambda v: f"{v:.3g}", na_rep="–", border=0, classes="table"
    )


def _rows_table(rows: list) -> pd.DataFrame:
    """A stage's typed rows as the table it wrote (``to_row``: its columns, in order), an empty
    text as a blank cell: the page shows it as "–", as it showed the CSV's blank cells."""
    table = pd.DataFrame([row.to_row() for row in rows])
    for column in table.columns:
        blank = table[column].map(lambda value: isinstance(value, str) and value == "")
        if blank.any():
            table[column] = table[column].where(~blank)
    return table


def _number(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def key_numbers(inputs: ReportInputs) -> KeyNumbers:
    """The numbers the answers rest on, for ``dvc metrics diff`` across experiments."""
    study = StudyNumbers(
        points=len(inputs.study), critical_points=int(inputs.study["critical"].astype(bool).sum())
    )
    schedules = tuple(
        ScheduleNumbers(name, counts.train_mse.decreases, counts.train_mse.steps)
        for name, counts in inputs.monotonicity.schedules.items()
    )
    verdicts = ()
    if inputs.verdicts is not None:
        verdicts = tuple(
            VerdictNumbers(
                name,
                counts.beyond_noise_unexplained,
                counts.continued_optimisation,
                counts.within_noise,
            )
            for name, counts in inputs.verdicts.schedules.items()
        )
    hessian = None
    if inputs.hessian:
        classes = Counter(point.curvature_class for point in inputs.hessian)
        hessian = HessianNumbers(
            minimum=classes[PointClass.MINIMUM],
            saddle=classes[PointClass.SADDLE],
            not_critical=classes[PointClass.NOT_CRITICAL],
        )
    from_saddle = None  # a count over analysed points only: none analysed, no count
    if inputs.saddle_steps is not None and inputs.hessian:
        from_saddle = sum(
            1 for step in inputs.saddle_steps if step.start_class == PointClass.SADDLE
        )
    decay, fits = (), ()
    if inputs.theory is not None:
        decay = tuple(
            DecayNumbers(
                r.init,
                r.layer,
                _number(r.measured_factor),
                _number(r.second_order_residual),
                _number(r.l2_change_question),
                _number(r.tail_off_rms),
            )
            for r in question_rows(inputs.theory, inputs.dynamics_config)
        )
        fits = tuple(
            SlopeNumbers(fit.eta, fit.init, fit.layer, _number(fit.equilibrium_slope))
            for fit in equilibrium_slopes(inputs.theory)
        )
    return KeyNumbers(study, schedules, verdicts, hessian, from_saddle, decay, fits, inputs.chain)


# The page's style sheet, byte for byte as the report has always embedded it.
CSS = (
    "\n"
    "body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; "
    "padding: 0 1em; color: #222;\n"
    "       line-height: 1.45; }\n"
    "h1 { font-size: 1.7em; } "
    "h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }\n"
    "figure { margin: 1.2em 0; } figure img { max-width: 100%; } "
    "figcaption { color: #555; font-size: .9em; }\n"
    ".answer { background: #f5f7fa; border-left: 4px solid #4a78b5; padding: .6em 1em; "
    "margin: .8em 0; }\n"
    ".answer h3 { margin: 0 0 .3em 0; font-size: 1.05em; }\n"
    "table.table { border-collapse: collapse; font-size: .8em; margin: 1em 0; display: block; "
    "overflow-x: auto; }\n"
    "table.table th, table.table td { padding: .25em .6em; border-bottom: 1px solid #ddd; "
    "text-align: right; }\n"
    "dl { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; "
    "font-size: .9em; }\n"
    "dt { font-weight: 600; } dd { margin: 0; word-break: break-all; }\n"
    "details.wide { margin: .5em 0 1em 0; } details.wide summary { cursor: pointer; "
    "color: #4a78b5; font-size: .9em; }\n"
    "table.table th { text-align: left; font-weight: 600; }\n"
)


def _answers_html(answers: list[tuple[str, str]]) -> str:
    return "\n".join(
        f'<div class="answer"><h3>{html.escape(h)}</h3><p>{html.escape(p)}</p></div>'
        for h, p in answers
    )


def _figure_html(name: str, caption: str, data: bytes) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return (
        f'<figure id="{html.escape(name)}"><img src="data:image/png;base64,{encoded}" '
        f'alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}</figcaption></figure>'
    )


def _sentence(heading: str) -> str:
    return heading if heading.endswith(("?", ".")) else f"{heading}."


def build_report(inputs: ReportInputs) -> Report:
    made = _figure_set(inputs)
    q1 = continuation_answers(
        inputs.monotonicity, inputs.study, inputs.hessian, inputs.saddle_steps, inputs.interpolation
    )
    q2 = (
        dynamics_answers(inputs.theory, inputs.dynamics_config, inputs.costs, inputs.budget)
        if inputs.theory is not None
        else []
    )

    def figs(*names: str) -> str:
        return "\n".join(_figure_html(n, *made[n]) for n in names if n in made)

    screen = first_screen(
        inputs.verdicts,
        inputs.monotonicity,
        inputs.decomposition,
        inputs.chain,
        inputs.chains,
    )
    opening = []
    if screen:
        sentences = "".join(f"<p>{html.escape(sentence)}</p>" for sentence in screen)
        opening += [
            f'<div class="answer" id="first-screen">{sentences}</div>',
            "<h3>The evidence</h3>",
        ]
    answer = None
    if inputs.verdicts is not None and inputs.verdicts.schedules:
        answer = opening_answer(inputs.verdicts, inputs.monotonicity)
    opening += [f'<p class="answer" id="answer">{html.escape(answer)}</p>'] if answer else []
    converged = None
    if inputs.chain is not None:
        converged = chain_answer(inputs.chain, inputs.chain_steps)
        opening.append(f'<p class="answer" id="chain-answer">{html.escape(converged)}</p>')
    opening.append(f'<p id="lemma">{html.escape(LEMMA)}</p>')
    if inputs.chain_points and inputs.chain_steps is not None:
        chains = chain_table(inputs.chain_points, inputs.chain_steps)
        opening += [
            "<h3>The converged chains (results/chain_points.csv, results/chain_steps.csv)</h3>",
            f'<div id="chains">{display(chains, CHAIN_TABLE, "chain-table")}</div>',
            figs("minima.png"),
        ]
    if inputs.verdict_steps is not None and len(inputs.verdict_steps):
        opening += [
            "<h3>The SGD steps on which the in-sample MSE fell as λ rose, and their controls</h3>",
            f'<div id="verdicts">{display(inputs.verdict_steps, VERDICT_TABLE, "verdict-table")}'
            "</div>",
            folded(
                "Every column of the verdicts (results/verdicts.csv)",
                _table_html(inputs.verdict_steps[VERDICT_COLUMNS]),
            ),
        ]
    opening.append(figs("decomposition.png"))
    power = power_sentence(inputs.decomposition, inputs.false_alarm)
    opening += [f'<p id="power">{html.escape(power)}</p>'] if power else []
    body = [
        "<h1>L2 regularisation on MNIST: the λ path and weight-decay dynamics</h1>",
        "<h2>1. Does in-sample MSE rise monotonically with λ?</h2>",
        *opening,
        _answers_html(q1),
        figs("path_mse.png", "path_panels.png"),
        "<h2>Curvature at the points of the path</h2>",
        figs("curvature.png", "densities.png", "interpolation.png"),
    ]
    if inputs.hessian:
        points = _rows_table(inputs.hessian)
        body.append(
            folded(
                "Every analysed point (results/hessian.csv)",
                _table_html(points[[c for c in HESSIAN_COLUMNS if c in points]]),
            )
        )
    if inputs.escapes is not None:
        body.append("<h3>Escape tests at saddles</h3>")
        body.append(
            _table_html(_rows_table(inputs.escapes))
            if inputs.escapes
            else "<p>No analysed point was a certified saddle, so no escape test was run.</p>"
        )
    if q2:
        theory = _rows_table(inputs.theory)
        body += [
            "<h2>2. Weight-decay dynamics (Nielsen, ch. 3)</h2>",
            _answers_html(q2),
            figs("dynamics.png"),
            "<h3>Theory against measurement</h3>",
            folded(
                "Every layer's numbers (results/dynamics_theory.csv)",
                _table_html(theory[[c for c in THEORY_COLUMNS if c in theory]]),
            ),
        ]
    provenance = "".join(
        f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>"
        for k, v in inputs.provenance.items()
    )
    links = "".join(
        f'<li><a href="{html.escape(url)}">{html.escape(label)}</a></li>'
        if url
        else f"<li>{html.escape(label)}</li>"
        for label, url in inputs.links.items()
    )
    body += [
        "<h2>Provenance</h2>",
        f"<dl>{provenance}</dl>",
        "<p>MLflow runs that wrote these inputs, found by the md5 of what they wrote (search the "
        "experiment for the tag; start <code>mlflow ui</code> on this store to follow a "
        f"link):</p><ul>{links}</ul>",
    ]
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>L2 path study report</title>"
        f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )

    lines = ["# L2 regularisation on MNIST: summary", "", "## 1. The λ path", ""]
    lines += [line for sentence in screen for line in (f"**{sentence}**", "")]
    lines += ([answer, ""] if answer else []) + ([converged, ""] if converged else [])
    lines += [LEMMA, ""] + ([power, ""] if power else [])
    lines += [f"- **{_sentence(h)}** {p}" for h, p in q1]
    if q2:
        lines += ["", "## 2. Weight-decay dynamics", ""] + [
            f"- **{_sentence(h)}** {p}" for h, p in q2
        ]
    lines += ["", "## Figures", ""] + [
        f"![{caption}](figures/{name})" for name, (caption, _) in made.items()
    ]
    lines += ["", "## Provenance", ""] + [f"- {k}: `{v}`" for k, v in inputs.provenance.items()]
    lines += [f"- [{label}]({url})" if url else f"- {label}" for label, url in inputs.links.items()]
    return Report(
        page,
        "\n".join(lines) + "\n",
        {name: data for name, (_, data) in made.items()},
        key_numbers(inputs),
    )
