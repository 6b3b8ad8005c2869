"""Schedules are objects of one registry: a toy schedule registered here runs through the
params, the planner, the study's loop, the monotonicity steps and the verdicts with no edit
anywhere else."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import yaml

from l2path.config import ParamsError, parse_params
from l2path.decomposition import decomposition_table, histories, paired_table
from l2path.monotonicity import MonotonicitySummary, chain_steps, step_table, summary
from l2path.study import schedules
from l2path.study.planner import study_chains
from l2path.study.progress import is_collapsed
from l2path.study.results import results_frame
from l2path.study.schedules import SCHEDULES, Schedule, chained, plan, register, schedule
from l2path.verdicts import VerdictSummary, verdict_counts, verdict_table

from conftest import REPO
from study_setup import point_record, run_small, small_config

TOY = Schedule("ascending_again", +1, True, "λ continuation, ascending again", "tab:purple")


@pytest.fixture
def toy():
    register(TOY)
    yield TOY
    SCHEDULES.pop(TOY.name)


def test_the_registry_holds_the_three_schedules_with_the_report_s_colours():
    assert list(SCHEDULES) == ["ascending", "descending", "cold"]
    assert [(s.direction, s.warm) for s in SCHEDULES.values()] == [
        (1, True),
        (-1, True),
        (0, False),
    ]
    assert {name: s.colour for name, s in SCHEDULES.items()} == {
        "ascending": "tab:blue",
        "descending": "tab:orange",
        "cold": "tab:green",
    }
    assert chained() == ["ascending", "descending"] and schedules.cold() == ["cold"]
    with pytest.raises(KeyError, match=r"sideways.*ascending.*descending.*cold"):
        schedule("sideways")
    with pytest.raises(ValueError, match="direction"):
        Schedule("drifting", 0, True, "drifting", "grey")
    with pytest.raises(ValueError, match="already registered"):
        register(Schedule("cold", 0, False, "another cold", "grey"))


def test_params_accept_a_registered_schedule_and_name_the_allowed_ones(toy):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["lambda_study"]["schedules"] = ["ascending", toy.name]
    raw["hessian"]["schedules"] = [toy.name]
    params = parse_params(raw)
    assert params.lambda_study.schedules == ["ascending", toy.name]
    raw["lambda_study"]["schedules"] = ["sideways"]
    with pytest.raises(
        ParamsError,
        match=r"lambda_study.schedules.0: unknown schedule 'sideways'; "
        r"allowed: \['ascending', 'descending', 'cold', "
        r"'ascending_again'\]",
    ):
        parse_params(raw)


def test_the_planner_chains_a_toy_schedule_from_its_direction(toy):
    grid = [1.0, 2.0, 4.0]
    chains = plan(["cold", toy.name, "descending"], [0], [3], grid)
    names = [chain[0].schedule for chain in chains]
    assert names == ["descending", toy.name, "cold", "cold", "cold"]  # chains first, registry order
    again = chains[1]
    assert [p.key for p in again] == [f"{toy.name}/seed0/lambda0{i}" for i in range(3)]
    assert [p.parent for p in again] == [None, again[0].key, again[1].key]
    config = small_config(schedules=[toy.name], chain_seeds=[0], cold_seeds=[])
    assert [[p.key for p in chain] for chain in study_chains(config)] == [
        [f"{toy.name}/seed0/lambda0{i}" for i in range(5)]
    ]
    collapsed = point_record(f"{toy.name}/seed0/lambda04", 8.0).replace(chain_start_weight_l2=1e9)
    # a chain up the grid ends at collapse, like ascending
    assert is_collapsed(collapsed, 0.5, "sgd")


def test_a_toy_schedule_down_the_grid_chains_from_the_top():
    down = register(Schedule("descending_twice", -1, True, "twice down", "tab:brown"))
    try:
        (points,) = plan([down.name], [7], [], [1.0, 2.0, 4.0])
        assert [p.grid_index for p in points] == [2, 1, 0]
        assert [p.parent for p in points] == [None, points[0].key, points[1].key]
        top = point_record(f"{down.name}/seed7/lambda00", 1.0).replace(chain_start_weight_l2=1e9)
        assert not is_collapsed(top, 0.5, "sgd")  # lambda falls along it: no collapse rule
    finally:
        SCHEDULES.pop(down.name)


def test_a_toy_schedule_runs_through_the_study_monotonicity_and_verdicts(toy, tmp_path):
    config = small_config(schedules=[toy.name, "cold"], chain_seeds=[0], cold_seeds=[0, 1])
    progress = run_small(tmp_path / "points", config)
    table = results_frame(progress.results())
    controls = results_frame(progress.control_results())
    assert set(table["schedule"]) == {toy.name, "cold"}
    assert set(controls["schedule"]) == {toy.name}  # its warm points got same-lambda controls
    records = histories(progress.results() + progress.control_results())
    paired = paired_table(controls, records, config.sgd.window, config.false_alarm)
    steps = step_table(table, config.false_alarm, controls, paired)
    mse = steps[(steps["schedule"] == toy.name) & (steps["metric"] == "train_mse")]
    assert len(mse) == len(table[table["schedule"] == toy.name]) - 1
    assert mse["control_change"].notna().all()  # each step set against its control
    assert mse["control_gap_sd_paired"].notna().all()  # paired from the two histories
    split = decomposition_table(table, controls, paired, config.false_alarm)
    assert len(split) == len(controls)  # one row per warm step
    assert (split["lambda_effect"] + split["optimisation_deficit"]).to_numpy() == pytest.approx(
        split["change"].to_numpy(), abs=1e-15
    )
    assert steps[steps["schedule"] == toy.name]["cold_sd"].notna().all()  # the cold spread
    assert len(chain_steps(steps, [toy.name, "cold"])) == len(mse)
    metrics = summary(steps)
    assert set(metrics.schedules) == {toy.name, "cold"}
    assert metrics.schedules[toy.name].train_mse.steps == len(mse)
    assert MonotonicitySummary.from_json(metrics.to_json()).to_json() == metrics.to_json()
    verdicts = verdict_table(steps)
    counts = verdict_counts(verdicts, config.schedules)
    assert counts.schedules[toy.name].nonmonotone_steps == int(mse["decrease"].sum())
    assert VerdictSummary.from_json(counts.to_json()) == counts
    assert isinstance(verdicts, pd.DataFrame)


@pytest.mark.parametrize("continue_from, ends", [("sgd", False), ("polished", True)])
def test_collapse_is_judged_on_the_weights_the_chain_goes_on_from(continue_from, ends):
    """A polish that reaches the trivial minimum w = 0 ends an ascending chain only when the
    chain continues from the polished weights; from its SGD weights (||w|| = 4 of a start
    of 6) it goes on."""
    record = point_record("ascending/seed0/lambda02", 2.0)
    record = record.replace(
        chain_start_weight_l2=6.0,
        polished=True,
        sgd=dataclasses.replace(record.sgd, weight_l2=4.0),
        final=dataclasses.replace(record.final, weight_l2=0.006),
    )
    assert is_collapsed(record, 0.02, continue_from) is ends
    assert is_collapsed(record.replace(polished=False), 0.02, continue_from) is False
