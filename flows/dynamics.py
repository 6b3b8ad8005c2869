"""Stage ``dynamics``: Nielsen's weight-decay exercise, measured per layer against the theory."""

from __future__ import annotations

from prefect import flow

from edge.stage import open_stage
from l2path.config import load_params
from tasks.dynamics import study_dynamics


@flow(
    name="dynamics",
    description="How weights shrink under L2 (Nielsen ch. 3), per layer and initialiser.",
)
def dynamics(params_file: str = "params.yaml", execution_id: str | None = None) -> dict:
    params = load_params(params_file)
    with open_stage(params, "dynamics", execution_id, run_name="weight-decay dynamics") as stage:
        return study_dynamics(params, stage)


if __name__ == "__main__":
    from edge.cli import run_stage

    run_stage(dynamics)
