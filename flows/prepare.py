"""Stage ``prepare``: MNIST from the first source that verifies, then Nielsen's split."""
from __future__ import annotations

from prefect import flow

from l2path.config import load_params
from tasks import tracking
from tasks.prepare import build_split, fetch_raw, mnist_sources
from tasks.stage import section_params, tracked_stage


@flow(name="prepare", description="Obtain verified MNIST IDX files and write Nielsen's split.")
def prepare(params_file: str = "params.yaml", execution_id: str | None = None) -> dict:
    params = load_params(params_file)
    logged = {**section_params(params, "data"), "sources": mnist_sources(params)}
    with tracked_stage(params, "prepare", logged, execution_id) as run_id:
        fetch_raw(params)
        manifest = build_split(params)
        tracking.log_dataset(run_id, params.paths.prepared, "mnist-nielsen-split",
                             digest=manifest["prepared_md5"], context="prepared")
        tracking.log_metrics(run_id, {f"n_{split}": count for split, count in manifest["counts"].items()})
        tracking.log_artifact(run_id, params.paths.manifest)
    return manifest


if __name__ == "__main__":
    from flows.cli import run_stage

    run_stage(prepare)
