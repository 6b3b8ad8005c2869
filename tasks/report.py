"""Task of the ``report`` stage: read every stage's tables, build the report, publish it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from l2path import atomic
from l2path.config import Params
from l2path.report import Report, ReportInputs, build_report
from l2path.split import file_md5

from . import lineage, tracking
from .hessian import spectrum_path
from .project import project_root

LINKED_STAGES = ("train", "study", "hessian", "dynamics")


def read_table(path: str) -> pd.DataFrame | None:
    """A stage's CSV; None if the stage has not written it, empty if it has no rows."""
    if not Path(path).exists():
        return None
    try:
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def pick_spectra(params: Params, hessian: pd.DataFrame | None) -> dict:
    """``report.densities`` analysed points spread evenly over lambda, with their spectrum arrays."""
    if hessian is None or hessian.empty or params.report.densities == 0:
        return {}
    ordered = hessian.sort_values(["lambda", "key"])["key"].tolist()
    picks = np.unique(np.linspace(0, len(ordered) - 1, min(params.report.densities, len(ordered))).round().astype(int))
    spectra = {}
    for key in (ordered[i] for i in picks):
        path = spectrum_path(params, key)
        if path.exists():
            with np.load(path) as arrays:
                spectra[key] = {name: arrays[name] for name in ("slq_nodes", "slq_weights")}
    return spectra


def provenance(params: Params) -> dict:
    grid = params.lambda_study.grid
    return {"data md5 (DVC)": file_md5(params.paths.prepared),
            "git commit": f"{lineage.git_commit(project_root())} (dirty: {lineage.git_dirty(project_root())})",
            "λ grid": f"{grid.lambda_start:g} × {grid.factor:g}^k up to {grid.lambda_max:g}",
            "schedules": ", ".join(params.lambda_study.schedules),
            "model": json.dumps(params.lambda_study.model.model_dump()),
            "SGD": json.dumps(params.lambda_study.sgd.model_dump()),
            "hessian": json.dumps(params.hessian.model_dump()),
            "dynamics": json.dumps(params.dynamics.model_dump())}


def mlflow_links(params: Params) -> dict[str, str]:
    links = {}
    for stage in LINKED_STAGES:
        run_id = tracking.latest_stage_run(params.study.name, stage)
        if run_id:
            links[f"{stage} stage run {run_id}"] = tracking.run_url(params.report.mlflow_ui, run_id)
    return links


def gather_inputs(params: Params) -> ReportInputs:
    paths = params.paths
    hessian = read_table(paths.hessian_table)
    plots_dir = Path(paths.dynamics_plots_dir)
    return ReportInputs(
        study=read_table(paths.study_results), steps=read_table(paths.monotonicity_table),
        monotonicity=json.loads(Path(paths.monotonicity_metrics).read_text()),
        hessian=hessian, saddle_steps=read_table(paths.saddle_steps), escapes=read_table(paths.escapes),
        interpolation=read_table(paths.interpolation), spectra=pick_spectra(params, hessian),
        dynamics_plots={name: pd.read_csv(plots_dir / f"{name}.csv") for name in ("rms", "ratio", "accuracy")
                        if (plots_dir / f"{name}.csv").exists()},
        theory=read_table(paths.dynamics_theory), dynamics_config=params.dynamics,
        provenance=provenance(params), links=mlflow_links(params))


def write_report(report: Report, directory: str, metrics_path: str) -> None:
    """Replace the report directory as a whole: build it beside, then swap it in."""
    with atomic.atomic_directory(directory) as staging:
        (staging / "figures").mkdir()
        (staging / "index.html").write_text(report.html)
        (staging / "summary.md").write_text(report.markdown)
        for name, data in report.figures.items():
            (staging / "figures" / name).write_bytes(data)
    atomic.write_json(metrics_path, report.numbers)


def publish(report: Report, inputs: ReportInputs) -> None:
    """Prefect artifacts on the flow run: the summary and the theory-vs-measured table."""
    create_markdown_artifact(markdown=report.markdown, key="l2path-report", description="answers of the study")
    if inputs.theory is not None and len(inputs.theory):
        rows = json.loads(inputs.theory.to_json(orient="records"))  # NaN -> null
        create_table_artifact(table=rows, key="weight-decay-theory", description="decay: theory vs measured")
    if inputs.hessian is not None and len(inputs.hessian):
        rows = json.loads(inputs.hessian[["key", "lambda", "class", "lambda_max", "lambda_min"]].to_json(orient="records"))
        create_table_artifact(table=rows, key="hessian-classes", description="class of every analysed point")


@task(name="build-report", cache_policy=NO_CACHE)
def make_report(params: Params) -> tuple[Report, ReportInputs]:
    inputs = gather_inputs(params)
    report = build_report(inputs)
    write_report(report, params.paths.report_dir, params.paths.report_metrics)
    publish(report, inputs)
    return report, inputs
