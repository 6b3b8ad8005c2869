"""Task of the ``report`` stage: read every stage's tables, build the report, publish it."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import TypeVar


import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from edge import tracking
from edge.dvcfile import producers, stage_files
from edge.project import project_root
from edge.stage import StageRun
from l2path import atomic
from l2path.config import Params
from l2path.chain.records import ChainPoint, ChainRecord, ChainStep, ChainSummary
from l2path.data.split import file_md5
from l2path.dynamics.summary import TheoryRow
from l2path.dynamics.tables import PLOT_NAMES
from l2path.landscape_records import (
    CurvaturePoint,
    EscapeRow,
    InterpolationRow,
    SaddleStep,
    spectrum_path,
)

from l2path.monotonicity import MonotonicitySummary
from l2path.report.headline import headline
from l2path.report.html import Report, ReportInputs, build_report
from l2path.rows import Row, read_rows
from l2path.study.results import read_results, results_frame
from l2path.verdicts import VerdictSummary

R = TypeVar("R", bound=Row)
S = TypeVar("S")


def read_table(path: str) -> pd.DataFrame | None:
    """A stage's CSV; None if the stage has not written it, empty if it has no rows."""
    if not Path(path).exists():
        return None
    try:
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def pick_spectra(params: Params, hessian: list[CurvaturePoint] | None) -> dict:
    """``report.densities`` analysed points spread evenly over lambda, with their spectrum
    arrays."""
    if not hessian or params.report.densities == 0:
        return {}
    ordered = [p.key for p in sorted(hessian, key=lambda p: (p.lam, p.key))]
    picks = np.unique(
        np.linspace(0, len(ordered) - 1, min(params.report.densities, len(ordered)))
        .round()
        .astype(int)
    )
    spectra = {}
    for key in (ordered[i] for i in picks):
        path = spectrum_path(params.paths.spectra_dir, key)
        if path.exists():
            with np.load(path) as arrays:
                spectra[key] = {name: arrays[name] for name in ("slq_nodes", "slq_weights")}
    return spectra


def provenance(params: Params) -> dict:
    grid = params.lambda_study.grid
    # No git commit: the report is a DVC output, and one that named its commit would change
    # at every commit of dvc.lock (DVC's lock and MLflow's tags say which commit made it).
    return {
        "data md5 (DVC)": file_md5(params.paths.prepared),
        "λ grid": f"{grid.lambda_start:g} × {grid.factor:g}^k up to {grid.lambda_max:g}",
        "schedules": ", ".join(params.lambda_study.schedules),
        "model": json.dumps(params.lambda_study.model.model_dump()),
        "SGD": json.dumps(params.lambda_study.sgd.model_dump()),
        "hessian": json.dumps(params.hessian.model_dump()),
        "chain": json.dumps(params.chain.model_dump()),
        "dynamics": json.dumps(params.dynamics.model_dump()),
    }


def mlflow_links(params: Params, stage: StageRun) -> dict[str, str | None]:
    """Per upstream stage, the MLflow runs that wrote a file the report reads, found by that
    file's md5 (``tracking.wrote_filter``): the filter as the label, and with
    ``report.mlflow_ui`` set a link to the experiment's runs under that filter. Not run
    ids: the report is a DVC output and must be the same bytes on every re-run; the run
    ids go to the Prefect artifact and the log (``run_links``)."""
    root = project_root()
    writers = producers(params, root)
    read_from: dict[str, str] = {}
    for dep in stage_files("report", params, root).deps:
        if dep in writers and (root / dep).is_file():
            read_from.setdefault(writers[dep], dep)
    ui = params.report.mlflow_ui
    links = {}
    for name, path in sorted(read_from.items()):
        search = tracking.wrote_filter(name, path, file_md5(root / path))
        links[f"{name}: {search}"] = (
            tracking.search_url(ui, stage.experiment_id, search) if ui else None
        )
    return links


def run_links(params: Params, stage: StageRun) -> list[str]:
    """The runs of this execution, as Markdown lines: URLs with a UI configured, else ids."""
    ui = params.report.mlflow_ui
    runs = {**stage.upstream, "report": stage}
    return [
        f"- {name}: [{record.run_id}]({tracking.run_url(ui, record.experiment_id, record.run_id)})"
        if ui
        else f"- {name}: MLflow run `{record.run_id}`"
        for name, record in runs.items()
    ]


def read_summary(path: str, cls: type[S]) -> S | None:
    """A stage's metrics JSON as its type; None if the stage has not written it."""
    return cls.from_json(json.loads(Path(path).read_text())) if Path(path).exists() else None


def read_records(path: str, cls: type[R]) -> list[R] | None:
    """A stage's table as its rows' type; None if the stage has not written it."""
    return read_rows(path, cls) if Path(path).exists() else None


def gather_inputs(params: Params, stage: StageRun) -> ReportInputs:
    paths = params.paths
    hessian = read_records(paths.hessian_table, CurvaturePoint)
    plots_dir = Path(paths.dynamics_plots_dir)
    return ReportInputs(
        study=results_frame(read_results(paths.study_results)),
        steps=read_table(paths.monotonicity_table),
        monotonicity=MonotonicitySummary.from_json(
            json.loads(Path(paths.monotonicity_metrics).read_text())
        ),
        verdicts=read_summary(paths.verdicts_metrics, VerdictSummary),
        verdict_steps=read_table(paths.verdicts),
        hessian=hessian,
        saddle_steps=read_records(paths.saddle_steps, SaddleStep),
        escapes=read_records(paths.escapes, EscapeRow),
        interpolation=read_records(paths.interpolation, InterpolationRow),
        spectra=pick_spectra(params, hessian),
        dynamics_plots={
            name: pd.read_csv(plots_dir / f"{name}.csv")
            for name in PLOT_NAMES
            if (plots_dir / f"{name}.csv").exists()
        },
        theory=read_records(paths.dynamics_theory, TheoryRow),
        costs=read_table(paths.dynamics_costs),
        budget=read_table(paths.dynamics_budget),
        dynamics_config=params.dynamics,
        provenance=provenance(params),
        links=mlflow_links(params, stage),
        chain=read_summary(paths.chain_metrics, ChainSummary),
        chain_points=read_records(paths.chain_points, ChainPoint),
        chain_steps=read_records(paths.chain_steps, ChainStep),
        chains=read_records(paths.chains, ChainRecord),
        decomposition=read_table(paths.decomposition),
        false_alarm=params.lambda_study.false_alarm,
    )


def write_report(report: Report, directory: str, metrics_path: str) -> None:
    """Replace the report directory as a whole: build it beside, then swap it in."""
    with atomic.atomic_directory(directory) as staging:
        (staging / "figures").mkdir()
        (staging / "index.html").write_text(report.html)
        (staging / "summary.md").write_text(report.markdown)
        for name, data in report.figures.items():
            (staging / "figures" / name).write_bytes(data)
    atomic.write_json(metrics_path, report.numbers.to_json())


def embedded_markdown(report: Report) -> str:
    """The summary with its figures inlined as data URIs: a Prefect artifact has no
    directory beside it, so a relative image path would not resolve in the UI."""
    markdown = report.markdown
    for name, data in report.figures.items():
        inline = f"](data:image/png;base64,{base64.b64encode(data).decode()})"
        markdown = markdown.replace(f"](figures/{name})", inline)
    return markdown


def _json_number(value):
    """JSON has no NaN: null, as pandas' ``to_json`` wrote it."""
    return None if isinstance(value, float) and math.isnan(value) else value


def publish(report: Report, inputs: ReportInputs, runs: list[str]) -> None:
    """Prefect artifacts on the flow run: the summary with its figures and the MLflow runs
    of this execution, the theory-vs-measured table, the class of every analysed point."""
    create_markdown_artifact(
        markdown=embedded_markdown(report) + "\n\n## MLflow runs\n\n" + "\n".join(runs),
        key="l2path-report",
        description="answers of the study",
    )
    if inputs.theory:
        rows = [{k: _json_number(v) for k, v in r.to_row().items()} for r in inputs.theory]
        create_table_artifact(
            table=rows, key="weight-decay-theory", description="decay: theory vs measured"
        )
    if inputs.hessian:
        rows = [
            {
                "key": p.key,
                "lambda": p.lam,
                "class": p.curvature_class.value,
                "lambda_max": _json_number(p.lambda_max),
                "lambda_min": _json_number(p.lambda_min),
            }
            for p in inputs.hessian
        ]
        create_table_artifact(
            table=rows, key="hessian-classes", description="class of every analysed point"
        )


@task(name="build-report", cache_policy=NO_CACHE)
def make_report(params: Params, stage: StageRun) -> dict:
    """Build and write the report; publish it on the flow run, on the report run and on the
    study run it describes (named by the study's lineage file). Returns its key numbers."""
    inputs = gather_inputs(params, stage)
    report = build_report(inputs)
    write_report(report, params.paths.report_dir, params.paths.report_metrics)
    train = Path(params.paths.train_metrics)
    atomic.write_json(
        params.paths.headline_metrics,
        headline(report.numbers, json.loads(train.read_text()) if train.exists() else {}),
    )
    publish(report, inputs, run_links(params, stage))
    tracking.log_artifacts(stage.run_id, params.paths.report_dir, "report")
    tracking.log_metrics(
        stage.run_id, {k: float(v) for k, v in report.numbers.to_json().items() if v is not None}
    )
    logger = get_run_logger()
    study = stage.upstream.get("study")
    if study is None:
        logger.warning(
            "no lineage file of the study stage: the report is not attached to a study run"
        )

    elif not tracking.run_exists(study.run_id):
        logger.warning(
            "the study run %s named by the study's lineage file is not in this MLflow "
            "store (%s): the report is not attached to it",
            study.run_id,
            tracking.tracking_uri(),
        )

    else:
        tracking.log_artifacts(study.run_id, params.paths.report_dir, "report")
    logger.info("report written to %s/index.html", params.paths.report_dir)
    return report.numbers.to_json()
