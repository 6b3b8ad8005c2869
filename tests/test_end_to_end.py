"""`dvc repro` of a fresh copy of the repo on the real MNIST mirror (the session's
``pipeline_repro``), checked through DVC and MLflow on a copy of it."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from mlflow import MlflowClient
from selenium.webdriver.support.ui import WebDriverWait

from edge import tracking
from l2path.model.checkpoint import load_model

from conftest import REPO
from pipeline_repro import SMALL, STAGES
from repo_copy import copy_repo, git, tool_env
from servers import free_port, start, stop, wait_until_healthy
from sshd import start_sshd

SCREENSHOTS = REPO / ".test-artifacts"  # git-ignored: the report as the browser test saw it


def run(cmd, cwd, env, timeout=900):
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{cmd} failed:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def repro(pipeline_repro, mirror, tmp_path_factory):
    """A copy of the session's small `dvc repro` for this module's tests to change."""
    root = pipeline_repro.copy_to(tmp_path_factory.mktemp("e2e") / "repo")
    return root, tool_env(mirror, tmp_path_factory.mktemp("home"))


LOG_RECORD = re.compile(r"\d\d:\d\d:\d\d\.\d{3} \| (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")
PROGRESS_LINE = re.compile(r"^[^|]+: \d+/\d+ [^|]*\(\d+ %\)")


@pytest.mark.integration
def test_a_repro_into_a_file_keeps_progress_and_log_records_on_their_own_lines(pipeline_repro):
    """In a file the bars are plain lines (no carriage return, no tqdm bar) and no line holds
    both a progress line and a log record."""
    text = pipeline_repro.log.read_text()
    lines = text.splitlines()
    assert "\r" not in text
    assert not [line for line in lines if re.search(r"\d+%\|", line)]  # no tqdm bar
    progress = [line for line in lines if PROGRESS_LINE.match(line)]
    records = [line for line in lines if LOG_RECORD.search(line)]
    assert progress and records, "expected both progress lines and log records"
    assert not [line for line in progress if LOG_RECORD.search(line)]
    assert not [line for line in records if PROGRESS_LINE.search(line.split(" - ", 1)[-1])]
    assert any(line.startswith("dynamics: ") and line.endswith(" s") for line in progress)


@pytest.mark.integration
def test_dvc_outputs_and_status(repro):
    root, env = repro
    for path in [
        "data/raw/train-images-idx3-ubyte",
        "data/prepared/mnist.npz",
        "data/prepared/manifest.json",
        "models/train/model.pt",
        "metrics/train.json",
        "plots/train_epochs.csv",
        "models/study/ascending/seed0/lambda02.pt",
        "models/study/ascending/seed0/control02.pt",
        "results/study.csv",
        "results/monotonicity.csv",
        "results/controls.csv",
        "results/verdicts.csv",
        "results/decomposition.csv",
        "metrics/verdicts.json",
        "metrics/monotonicity.json",
        "results/hessian.csv",
        "results/spectra/ascending/seed0/lambda02.npz",
        "results/saddle_steps.csv",
        "metrics/hessian.json",
        "results/chain_points.csv",
        "results/chain_steps.csv",
        "results/chains.csv",
        "models/chain/ascending_seed0.npz",
        "models/chain/descending_seed0.npz",
        "models/chain/cold_seed0.npz",
        "metrics/chain.json",
        "results/dynamics.csv",
        "results/dynamics_theory.csv",
        "metrics/dynamics.json",
        "plots/dynamics/rms.csv",
        "models/dynamics/large_seed0_eta0.1_lambda5.pt",
        "reports/index.html",
        "reports/summary.md",
        "reports/figures/path_mse.png",
        "reports/figures/dynamics.png",
        "metrics/report.json",
        *(f"lineage/{stage}.json" for stage in STAGES),
    ]:
        assert (root / path).is_file(), path
    assert "up to date" in run([sys.executable, "-m", "dvc", "status"], root, env)
    metrics = json.loads(run([sys.executable, "-m", "dvc", "metrics", "show", "--json"], root, env))
    workspace = next(iter(metrics.values()))["data"]
    assert list(workspace) == ["metrics/headline.json"]  # the headline only, by default
    headline = workspace["metrics/headline.json"]["data"]
    assert 12 <= sum(len(section) for section in headline.values()) <= 30
    assert headline["train"]["test_accuracy"] > 0.5 and headline["study"]["points"] > 0
    detailed = json.loads(
        run(
            [
                sys.executable,
                "-m",
                "dvc",
                "metrics",
                "show",
                "--json",
                "metrics/train.json",
                "metrics/monotonicity.json",
            ],
            root,
            env,
        )
    )
    workspace = next(iter(detailed.values()))["data"]
    train_metrics = workspace["metrics/train.json"]["data"]
    monotonicity = workspace["metrics/monotonicity.json"]["data"]
    assert set(monotonicity) == {"ascending", "descending", "cold"}
    assert monotonicity["ascending"]["train_mse"]["steps"] == 2  # lambda 1 -> 2 -> 4
    assert train_metrics["epoch"] == 2 and train_metrics["n_train"] == 3000
    assert 0.5 < train_metrics["test_accuracy"] <= 1.0
    manifest = json.loads((root / "data/prepared/manifest.json").read_text())
    assert manifest["counts"] == {"train": 50000, "validation": 10000, "test": 10000}
    lines = (root / "plots/train_epochs.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,") and len(lines) == 3


@pytest.mark.integration
def test_mlflow_runs_carry_metrics_artifacts_inputs_and_lineage(repro, tmp_path):
    root, _ = repro
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    prepared_md5 = next(
        o["md5"]
        for o in lock["stages"]["prepare"]["outs"]
        if o["path"] == "data/prepared/mnist.npz"
    )
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("l2-weight-decay")
    all_runs = client.search_runs([experiment.experiment_id])
    runs = {
        r.data.tags["l2path.stage"]: r for r in all_runs if "." not in r.data.tags["l2path.stage"]
    }
    assert set(runs) == set(STAGES)
    models = [r for r in all_runs if r.data.tags["l2path.stage"] == "dynamics.model"]
    # both initialisers at eta = 0.1, lambda = 5 and 0, the sweep's two, and the quadratic
    # cost's twins of the question's lambda = 5 (the causal test)
    assert len(models) == 2 * 2 + 2 * 2 + 2
    assert {r.data.params["cost"] for r in models} == {"cross_entropy", "quadratic"}
    assert {r.data.tags["mlflow.parentRunId"] for r in models} == {runs["dynamics"].info.run_id}
    by_name = {r.data.tags["l2path.model"]: r.info.run_id for r in models}
    assert [
        m.step
        for m in client.get_metric_history(by_name["large_seed0_eta0.1_lambda5"], "layer1_rms")
    ] == [0, 1, 2]
    # the lambda = 0 control stops at the question's epoch
    assert [
        m.step
        for m in client.get_metric_history(by_name["large_seed0_eta0.1_lambda0"], "layer1_rms")
    ] == [0, 1]
    study_artifacts = {a.path for a in client.list_artifacts(runs["study"].info.run_id, "report")}
    assert {"report/index.html", "report/summary.md", "report/figures"} <= study_artifacts
    points = [r for r in all_runs if r.data.tags["l2path.stage"] == "study.point"]
    assert len(points) == 3 + 3 + 2 * 3  # ascending, descending (one seed each), cold (two seeds)
    assert {r.data.tags["mlflow.parentRunId"] for r in points} == {runs["study"].info.run_id}
    controls = [r for r in all_runs if r.data.tags["l2path.stage"] == "study.control"]
    assert len(controls) == 2 + 2  # the warm-started points of the two chains
    assert {r.data.tags["l2path.role"] for r in controls} == {"control"}
    assert {r.data.tags["mlflow.parentRunId"] for r in controls} == {runs["study"].info.run_id}
    assert {r.data.tags["l2path.control_of"] for r in controls} <= {
        r.data.tags["l2path.point"] for r in points
    }
    curvature = [r for r in all_runs if r.data.tags["l2path.stage"] == "hessian.point"]
    assert len(curvature) == 3 and {r.data.tags["mlflow.parentRunId"] for r in curvature} == {
        runs["hessian"].info.run_id
    }
    # the converged chains: 3 lambdas up (no collapse on 1..4) and 3 down, one cold start at
    # each, each point's class proved with its witness, a verdict per step, and no drop on a
    # branch of minima (the lemma)
    chain = json.loads((root / "metrics/chain.json").read_text())
    assert chain["n_sub"] == 32 and chain["parameters"] == 30 * 32 + 340
    assert chain["chains"] == 2 and chain["points"] == 6 + 3 and chain["steps"] == 4
    assert chain["cold_points"] == 3 and chain["best_found_lambdas"] == 3
    classes = chain["proved_minima"] + chain["proved_saddles"] + chain["degenerate_points"]
    assert classes == chain["converged_points"]
    verdicts = ("one_branch_of_minima", "fold_jumps", "saddle_branches", "branch_switches")
    assert sum(chain[v] for v in verdicts) + chain["branches_lost"] + chain["not_followed"] == 4
    assert chain["drops_on_one_branch_of_minima"] == 0
    # params.yaml follows every ascending step by arclength, only the drops of descending ones
    steps = pd.read_csv(root / "results/chain_steps.csv")
    down = steps[steps["direction"] == "descending"]
    assert (down[~down["drop"]]["verdict"] == "not followed").all()
    assert not (steps[steps["direction"] == "ascending"]["verdict"] == "not followed").any()
    chain_runs = [r for r in all_runs if r.data.tags["l2path.stage"] == "continuation.chain"]
    assert {r.data.params["direction"] for r in chain_runs} == {"ascending", "descending", "cold"}
    # every chain's weights: a LoggedModel of its run, the same file as the DVC output
    for run_ in chain_runs:
        (model,) = client.search_logged_models(
            experiment_ids=[run_.info.experiment_id],
            filter_string=f"source_run_id = '{run_.info.run_id}'",
        )
        weights = np.load(root / model.params["weights"])
        assert weights["theta"].shape == (int(model.params["lambdas"]), 784 * 30 + 30 * 10 + 40)
    trained_by = {r.data.tags["l2path.point"]: r.info.run_id for r in points}
    for run_ in curvature:
        assert (
            run_.data.tags["l2path.checkpoint_run_id"] == trained_by[run_.data.tags["l2path.point"]]
        )
        assert {"lambda_max", "lambda_min", "index_estimate", "trace"} <= set(run_.data.metrics)
        assert run_.data.tags["l2path.class"] in {"minimum", "saddle", "not critical"}
    head = git(root, "rev-parse", "HEAD").strip()
    for point in points:  # logged after training, dated back over it
        seconds = point.data.metrics["train_seconds"] + point.data.metrics["polish_seconds"]
        assert seconds > 0 and (
            point.info.end_time - point.info.start_time
        ) / 1000 == pytest.approx(seconds, abs=0.005)
    logged = client.search_logged_models([experiment.experiment_id], max_results=1000)
    # no point diverged here; one model per converged chain and cold start
    assert len(logged) == 1 + len(points) + len(controls) + len(models) + len(chain_runs)
    names = {m.name for m in logged}
    assert {
        "train-lambda5-seed0",
        "ascending-seed0-lambda02",
        "dynamics-large_seed0_eta0p1_lambda5",
        "chain-descending-seed0",
    } <= names, names
    point_model = next(m for m in logged if m.name == "ascending-seed0-lambda02")
    assert point_model.params["lambda"] == "4.0" and point_model.params["schedule"] == "ascending"
    assert {m.key for m in point_model.metrics} >= {"train_mse", "test_accuracy", "grad_norm"}
    for stage, run_ in runs.items():
        tags = run_.data.tags
        assert run_.info.status == "FINISHED"
        assert tags["git.commit"] == head and tags["git.dirty"] == "false"
        assert tags["dvc.stage"] == stage and "dvc.exp_name" not in tags
        assert tags["mlflow.source.name"] == f"flows/{stage}.py" and tags["mlflow.user"]
        assert len(tags["prefect.flow_run_id"]) == 36
        # its dependencies' md5s, the same as dvc.lock recorded for the run
        assert {
            key.removeprefix("dvc.dep."): value
            for key, value in tags.items()
            if key.startswith("dvc.dep.")
        } == {dep["path"]: dep["md5"] for dep in lock["stages"][stage]["deps"]}, stage
        if stage in ("hessian", "report"):  # they read the study's tables, not the data file
            continue
        digests = [d.dataset.digest for d in run_.inputs.dataset_inputs]
        assert digests == [prepared_md5]
    assert len({r.data.tags["l2path.execution_id"] for r in all_runs}) == 1
    for stage, run_ in runs.items():  # each stage's lineage file names its run
        recorded = json.loads((root / f"lineage/{stage}.json").read_text())
        assert (
            recorded["run_id"] == run_.info.run_id
            and recorded["experiment_id"] == experiment.experiment_id
        )
        assert recorded["execution_id"] == run_.data.tags["l2path.execution_id"]
    assert runs["hessian"].data.tags["l2path.upstream.study"] == runs["study"].info.run_id
    assert runs["continuation"].data.tags["l2path.upstream.study"] == runs["study"].info.run_id
    assert {
        k: v for k, v in runs["report"].data.tags.items() if k.startswith("l2path.upstream.")
    } == {
        f"l2path.upstream.{stage}": runs[stage].info.run_id
        for stage in ("prepare", "train", "study", "hessian", "continuation", "dynamics")
    }

    train = runs["train"]
    assert (
        train.data.params["train.lambda"] == "5.0"
        and train.data.params["train.model.n_train"] == "3000"
    )
    assert train.data.params["runtime.threads"] == "2"
    history = client.get_metric_history(train.info.run_id, "test_accuracy")
    assert [m.step for m in history] == [1, 2]
    assert {"objective", "train_mse", "data_loss", "validation_mse", "layer1_weight_l2"} <= set(
        train.data.metrics
    )
    local = client.download_artifacts(train.info.run_id, "models/train/model.pt", str(tmp_path))
    logged, _ = load_model(local)
    saved, _ = load_model(root / "models/train/model.pt")
    assert all(torch.equal(a, b) for a, b in zip(logged.weights, saved.weights))


def stage_runs(client: MlflowClient, stage: str) -> list:
    experiment = client.get_experiment_by_name("l2-weight-decay")
    return client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`l2path.stage` = '{stage}'",
        order_by=["attributes.start_time DESC"],
    )


@pytest.mark.integration
def test_hessian_and_report_link_the_study_run_their_inputs_record(repro, tmp_path):
    """A second execution on the same store makes a newer study run; hessian and report run
    again with the study cached, and link to the study run of *their* inputs (the run that
    wrote them, as lineage/study.json names it), never to the newest one."""
    root, env = repro
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    ours = json.loads((root / "lineage/study.json").read_text())["run_id"]
    other = copy_repo(tmp_path / "other", SMALL)
    (other / "data/prepared").mkdir(parents=True)
    shutil.copy(root / "data/prepared/mnist.npz", other / "data/prepared/mnist.npz")
    run(
        [sys.executable, "-m", "flows.study"],
        other,
        {**env, "MLFLOW_TRACKING_URI": client.tracking_uri},
    )
    newer = json.loads((other / "lineage/study.json").read_text())["run_id"]
    assert stage_runs(client, "study")[0].info.run_id == newer != ours

    first = run(
        [sys.executable, "-m", "dvc", "repro", "--force", "--single-item", "hessian"], root, env
    )
    again = run([sys.executable, "-m", "dvc", "repro"], root, env)
    assert (
        "Running stage 'hessian'" in first and "Running stage" not in again
    )  # the same bytes: nothing to redo
    run([sys.executable, "-m", "dvc", "repro", "--force", "--single-item", "report"], root, env)
    hessian, report = stage_runs(client, "hessian")[0], stage_runs(client, "report")[0]
    assert json.loads((root / "lineage/hessian.json").read_text())["run_id"] == hessian.info.run_id
    assert hessian.data.tags["l2path.upstream.study"] == ours
    assert report.data.tags["l2path.upstream.study"] == ours
    assert report.data.tags["l2path.upstream.hessian"] == hessian.info.run_id
    assert {a.path for a in client.list_artifacts(ours, "report")} >= {"report/index.html"}
    assert not client.list_artifacts(newer, "report")
    page = (root / "reports/index.html").read_text()
    study_md5 = hashlib.md5((root / "results/study.csv").read_bytes()).hexdigest()
    assert (
        f"tags.`dvc.out.results/study.csv` = &#x27;{study_md5}&#x27;" in page
    )  # the study runs, by content
    assert ours not in page and newer not in page  # no run id in a DVC output
    assert "up to date" in run([sys.executable, "-m", "dvc", "status"], root, env)

    # Without the lineage file (outputs checked out from elsewhere), the store is searched by
    # content: the other execution's study wrote these very bytes, and it is the newest.
    (root / "lineage/study.json").unlink()
    run([sys.executable, "-m", "dvc", "repro", "--force", "--single-item", "hessian"], root, env)
    assert stage_runs(client, "hessian")[0].data.tags["l2path.upstream.study"] == newer


@pytest.mark.integration
def test_dvc_exp_run_varies_the_schedule_and_reuses_finished_points(
    pipeline_repro, repro, tmp_path
):
    """A coarser grid re-runs only the study; lambda = 1 and 4 keep their points (same
    fingerprints). `dvc exp run study` on a copy of its own: the stages after the study are
    not what this test is about, and would leave the module's copy stale for the others."""
    _, env = repro
    root = pipeline_repro.copy_to(tmp_path / "repo")
    before = {
        p: p.stat().st_mtime_ns for p in (root / "models/study").rglob("cold/*/lambda00.json")
    }
    out = run(
        [
            sys.executable,
            "-m",
            "dvc",
            "exp",
            "run",
            "study",
            "-S",
            "lambda_study.grid.factor=4.0",
            "-S",
            "lambda_study.schedules=[ascending,cold]",
        ],
        root,
        env,
    )
    assert "Running stage 'study'" in out and "Running stage 'train'" not in out
    table = yaml.safe_load((root / "params.yaml").read_text())["lambda_study"]
    assert table["grid"]["factor"] == 4.0
    results = pd.read_csv(root / "results/study.csv")
    assert sorted(set(results["lambda"])) == [1.0, 4.0] and set(results["schedule"]) == {
        "ascending",
        "cold",
    }
    assert {
        p: p.stat().st_mtime_ns for p in before
    } == before  # cold starts at lambda = 1 were not retrained
    assert not (root / "models/study/descending").exists()  # stale points pruned


@pytest.mark.integration
def test_dvc_plots_show_renders_every_declared_plot(repro, tmp_path):
    root, env = repro
    run([sys.executable, "-m", "dvc", "plots", "show", "-o", str(tmp_path / "plots")], root, env)
    page = (tmp_path / "plots" / "index.html").read_text()
    for name in (
        "lambda_path",
        "decay_rms",
        "decay_gradient_ratio",
        "losses",
        "plots/dynamics/ratio.csv",
        "path_mse.png",
    ):
        assert name in page, name


@pytest.mark.integration
def test_dvc_plots_render_offline_in_headless_chromium(repro, browser, tmp_path):
    """vega comes inlined from the project's template (.dvc/plots/offline.html), not a CDN:
    with no network every vega plot still draws (the test machine has none)."""
    root, env = repro
    run([sys.executable, "-m", "dvc", "plots", "show", "-o", str(tmp_path / "plots")], root, env)
    page = tmp_path / "plots" / "index.html"
    assert "cdn.jsdelivr" not in page.read_text()
    browser.get(page.as_uri())
    vega = page.read_text().count(
        "vegaEmbed('#"
    )  # DVC's call per vega plot (not the inlined library's)
    drawn = "return document.querySelectorAll('.vega-embed svg, .vega-embed canvas').length"
    WebDriverWait(browser, 30).until(lambda b: b.execute_script(drawn) >= vega)
    assert vega >= 9  # the nine vega plots of dvc.yaml
    errors = [
        entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")
    ]
    assert not errors, errors
    SCREENSHOTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "dvc_plots.png"))


@pytest.mark.integration
def test_mlflow_ui_lists_checkpoints_as_models_and_a_stage_run_its_children(
    repro, browser, tmp_path
):
    """The MLflow 3 UI on the repro's store (a real `mlflow server` on loopback): the Models
    tab lists the checkpoints, and the study run's page names its point runs."""
    root, env = repro
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("l2-weight-decay")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    port, log = free_port(), tmp_path / "mlflow-ui.log"
    server = start(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            client.tracking_uri,
            "--workers",
            "1",
        ],
        root,
        env,
        log,
    )
    try:
        ui = f"http://127.0.0.1:{port}"
        wait_until_healthy(f"{ui}/health", server, log, timeout_s=120)
        body = lambda b: b.find_element("tag name", "body").text  # noqa: E731
        browser.set_window_size(1400, 4000)  # the tables draw only the rows in view
        # A clean profile for this origin: the stage-runs link opens the training view's runs
        # table (not the GenAI overview) and lists a run of every one of the seven stages.
        browser.get(tracking.stage_runs_url(ui, experiment.experiment_id))
        names = {stage: stage_runs(client, stage)[0].info.run_name for stage in STAGES}
        WebDriverWait(browser, 90).until(
            lambda b: "Run Name" in body(b) and all(name in body(b) for name in names.values())
        )
        text = body(browser)
        assert "Model training" in text and not {"Sessions", "Judges", "Detect Issues"} & set(
            text.splitlines()
        ), text[:2000]
        SCREENSHOTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(SCREENSHOTS / "mlflow_stage_runs.png"))
        browser.get(f"{ui}/#/experiments/{experiment.experiment_id}/models")
        # the tab pages its models (the chains' and the exp run's among them), so it is asked
        # for its first page: at least 10 of the store's LoggedModels by name
        stored = {
            m.name
            for m in client.search_logged_models([experiment.experiment_id], max_results=1000)
        }
        WebDriverWait(browser, 90).until(lambda b: sum(name in body(b) for name in stored) >= 10)
        SCREENSHOTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(SCREENSHOTS / "mlflow_models.png"))
        # the study run that trained the points: its description links its children, nested under it
        study = next(
            r
            for r in stage_runs(client, "study")
            if client.search_runs(
                [experiment.experiment_id], f"tags.mlflow.parentRunId = '{r.info.run_id}'"
            )
        )
        children = client.search_runs(
            [experiment.experiment_id], f"tags.mlflow.parentRunId = '{study.info.run_id}'"
        )
        assert study.data.tags["mlflow.note.content"].startswith(f"[{len(children)} child runs]")
        browser.get(f"{ui}/#/experiments/{experiment.experiment_id}/runs/{study.info.run_id}")
        link = WebDriverWait(browser, 90).until(
            lambda b: b.find_elements("partial link text", "child runs")
        )[0]
        browser.get(link.get_attribute("href"))
        expand = WebDriverWait(browser, 90).until(
            lambda b: b.find_elements(
                "css selector", "button[data-component-id*='runnamecellrenderer']"
            )
        )
        expand[0].click()
        WebDriverWait(browser, 30).until(
            lambda b: sum(c.info.run_name in body(b) for c in children) == len(children)
        )
        browser.save_screenshot(str(SCREENSHOTS / "mlflow_study_children.png"))
    finally:
        # off the UI first: left polling a stopped server, its renderer kept about 20 % of a
        # core busy until the module ended
        browser.get("about:blank")
        stop(server)
        browser.get_log(
            "browser"
        )  # the UI's own console noise (a 404 for users/current) stays here


@pytest.mark.integration
def test_report_loads_in_headless_chromium_without_errors(repro, browser):
    """Every image decoded, no console error, a screenshot a person can look at."""
    root, _ = repro
    page = root / "reports" / "index.html"
    browser.get(page.as_uri())
    images = browser.execute_script(
        "return Array.from(document.images)"
        ".map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.alt])"
    )
    assert len(images) >= 5
    assert all(
        complete and width > 100 and height > 100 for complete, width, height, _ in images
    ), images
    errors = [
        entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")
    ]
    assert not errors, errors
    text = browser.find_element("tag name", "body").text
    assert "the in-sample MSE fell as λ rose at" in text and "(b) Per-epoch shrink" in text
    assert browser.find_element("id", "answer").text.startswith(
        ("Yes, it is non-monotone.", "No non-monotone step.")
    )
    assert "dL/dλ = (λ/n²)·wᵀH⁻¹w ≥ 0" in browser.find_element("id", "lemma").text
    verdicts = pd.read_csv(root / "results/verdicts.csv")
    if len(verdicts):  # the evidence beside the answer: one table row per verdict
        rows = browser.find_elements("css selector", "#verdicts tbody tr")
        first = rows[0].find_elements("tag name", "td")[0].text
        assert len(rows) == len(verdicts) and first.split()[-1] in (
            "optimisation",
            "noise",
            "unexplained",
        )
        # the table that carries the answer fits a 1,300 px page, verdict first
        browser.set_window_size(1300, 1000)
        table = browser.find_element("id", "verdict-table")
        assert browser.execute_script(
            "return arguments[0].scrollWidth <= arguments[0].clientWidth", table
        )
        heading = table.find_elements("tag name", "th")
        assert heading[0].text == "verdict" and heading[0].rect["x"] + heading[0].rect[
            "width"
        ] <= browser.execute_script("return document.documentElement.clientWidth")
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1200, min(height + 100, 12000))
    SCREENSHOTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOTS / "report.png"))


SHARED_OUTPUTS = (
    "data/prepared/mnist.npz",
    "models/train/model.pt",
    "models/dynamics/large_seed0_eta0.1_lambda5.pt",
    "results/study.csv",
    "results/dynamics_theory.csv",
    "reports/index.html",
    "metrics/headline.json",
)


def push_clone_pull(root, env, clone, remote: str, configure: list[list[str]]) -> None:
    """Push every output of the repro to ``remote`` (set up by the dvc commands
    ``configure``, run in the repo and again in the clone), commit, clone, pull: the clone
    has the outputs byte for byte with nothing left to run."""
    for command in configure:
        run([sys.executable, "-m", "dvc", *command], root, env)
    run([sys.executable, "-m", "dvc", "push", "-r", remote], root, env)
    git(root, "add", "-A")
    git(
        root,
        "-c",
        "user.name=test",
        "-c",
        "user.email=test@example.invalid",
        "commit",
        "-qm",
        "repro",
        "--allow-empty",
    )
    git(clone.parent, "clone", "-q", str(root), str(clone))
    assert not (clone / "models/train/model.pt").exists()
    for command in configure:
        run([sys.executable, "-m", "dvc", *command], clone, env)
    run([sys.executable, "-m", "dvc", "pull", "-r", remote], clone, env)
    for path in SHARED_OUTPUTS:
        assert (clone / path).read_bytes() == (root / path).read_bytes(), path
    assert "up to date" in run([sys.executable, "-m", "dvc", "status"], clone, env)
    dry = run([sys.executable, "-m", "dvc", "repro", "--dry"], clone, env)
    assert "Running stage" not in dry and "up to date" in dry, dry


@pytest.mark.integration
def test_dvc_push_then_pull_in_a_fresh_clone_restores_the_study_without_rerunning(repro, tmp_path):
    """The default remote (a directory) pointed at a temporary one."""
    root, env = repro
    remote = tmp_path / "remote"
    push_clone_pull(
        root,
        env,
        tmp_path / "clone",
        "local",
        [["remote", "modify", "--local", "local", "url", str(remote)]],
    )


@pytest.mark.integration
def test_an_ssh_remote_round_trip_restores_the_study_in_a_fresh_clone(repro, tmp_path):
    """A networked remote for real: Debian's sshd on 127.0.0.1 with a throwaway key (the
    client trusts exactly its host key), `dvc push` over SSH, a fresh clone pulls over SSH
    (docs/sharing.md's commands) and has every output with nothing to re-run."""
    root, env = repro
    server = start_sshd(tmp_path)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text(server.known_hosts_line + "\n")
    try:
        push_clone_pull(
            root,
            {**env, "HOME": str(home)},
            tmp_path / "clone",
            "team",
            [
                ["remote", "add", "--local", "--force", "team", server.url(tmp_path / "store")],
                ["remote", "modify", "--local", "team", "keyfile", str(server.keyfile)],
            ],
        )
        assert any((tmp_path / "store" / "files" / "md5").iterdir())  # it went over SSH
    finally:
        stop(server.process)


@pytest.mark.integration
def test_forced_reruns_of_unchanged_code_leave_git_clean(repro):
    """No wall time, run id or commit sits in a DVC-tracked output: a `dvc repro --force` run
    rewrites every output with the same bytes as the runs before it (the module's repro and
    the stages its other tests re-ran), so dvc.lock, metrics and plots stay as committed. The
    wall times went to the untracked timings files and to MLflow."""
    root, env = repro
    git(root, "add", "-A")
    git(
        root,
        "-c",
        "user.name=test",
        "-c",
        "user.email=test@example.invalid",
        "commit",
        "-qm",
        "repro",
        "--allow-empty",
    )  # last in the module: committing moves HEAD under the other tests' tag checks
    out = run([sys.executable, "-m", "dvc", "repro", "--force"], root, env)
    assert all(f"Running stage '{stage}'" in out for stage in STAGES)
    assert git(root, "status", "--porcelain") == "", git(root, "diff")
    timings = json.loads((root / "timings/train.json").read_text())
    assert timings["seconds"] > 0 and len(timings["epoch_seconds"]) == SMALL["train.epochs"]
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    assert (
        client.get_run(timings["run_id"]).data.metrics["seconds"] > 0
    )  # per epoch, on the train run
