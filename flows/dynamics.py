"""Stage ``dynamics``: Nielsen's weight-decay exercise, measured per layer against the theory."""
from __future__ import annotations

from prefect import flow, get_run_logger

from l2path.config import load_params
from l2path.split import file_md5
from tasks import tracking
from tasks.dynamics import study_dynamics
from tasks.stage import require_inputs, section_params, stage_tags, tracked_stage


@flow(name="dynamics", description="How weights shrink under L2 (Nielsen ch. 3), per layer and initialiser.")
def dynamics(params_file: str = "params.yaml", execution_id: str | None = None) -> dict:
    params = load_params(params_file)
    paths = params.paths
    require_inputs(paths.prepared, hint="run the prepare stage first (dvc repro prepare)")
    logged = {f"dynamics.{k}": v for k, v in section_params(params, "dynamics").items()}
    with tracked_stage(params, "dynamics", logged, execution_id, run_name="weight-decay dynamics") as run_id:
        tracking.log_dataset(run_id, paths.prepared, "mnist-nielsen-split", digest=file_md5(paths.prepared),
                             context="training")
        numbers = study_dynamics(params, run_id, stage_tags("dynamics.model", execution_id))
        for path in (paths.dynamics_epochs, paths.dynamics_theory, paths.dynamics_metrics):
            tracking.log_artifact(run_id, path)
        tracking.log_metrics(run_id, {f"{init}.{lam}.{layer}.{key}": value
                                      for init, by_lam in numbers.items() for lam, by_layer in by_lam.items()
                                      for layer, values in by_layer.items() for key, value in values.items()
                                      if isinstance(value, (int, float))})
        get_run_logger().info("theory vs measured: %s", numbers)
    return numbers


if __name__ == "__main__":
    from flows.cli import run_stage

    run_stage(dynamics)
