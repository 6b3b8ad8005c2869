"""The continuation stage's ``execute`` spreads one plan's chains over jobs (ascending points,
then descending chains, cold starts and single ascending steps) and gives what running each
seed and each cold start in order gives (``run_seed``, ``run_cold``), in spawned processes too."""

from __future__ import annotations

import torch
from dataclasses import replace

from edge.process_pool import process_map
from l2path.chain.records import ChainDirection
from l2path.chain.stage import chain_plan, execute, run_cold, run_seed
from l2path.chain.subset import SubsetProblem
from l2path.config import Params
from l2path.model.init import init_stack

from conftest import synthetic_dataset
from test_sweep import small_raw


def tiny_plan():
    raw = small_raw()
    raw["chain"]["cold_seeds"] = [5]
    raw["lambda_study"]["grid"]["lambda_start"] = 1.0  # lambda = 1, 2, 4
    params = Params.model_validate(raw)
    data = synthetic_dataset(n_train=60)
    sizes = [784, 3, 10]
    full = SubsetProblem(sizes, data.train.x, data.train.y, "quadratic", 60, 16)  # every class
    starts = {
        seed: full.mse.flat(init_stack(sizes, [params.lambda_study.init], [seed], torch.float64))
        for seed in (0, 2)
    }
    every = (ChainDirection.UP, ChainDirection.DOWN, ChainDirection.COLD)
    plan = chain_plan(params, full, 60, starts, torch.device("cpu"), only=every)
    return replace(plan, follow={"ascending": "all", "descending": "all", "cold": "all"})


def in_order(plan, seeds):
    tables = [run_seed(plan, seed, lambda m: None) for seed in seeds]
    tables += [run_cold(plan, seed, lambda m: None) for seed in plan.cold_starts]
    first = tables[0]
    for other in tables[1:]:
        first.extend(other)
    return first


def assert_same(a, b):
    assert a.points == b.points and a.steps == b.steps and a.chains == b.chains
    assert a.thetas.keys() == b.thetas.keys()
    for key in a.thetas:
        assert all(torch.equal(x, y) for x, y in zip(a.thetas[key], b.thetas[key]))


def test_execute_gives_each_seed_and_cold_start_as_run_in_order():
    plan = tiny_plan()
    expected = in_order(plan, [0])  # seed 2 has a start but is not asked for
    directions = {(p.seed, p.direction) for p in expected.points}
    assert directions == {
        (0, ChainDirection.UP),
        (0, ChainDirection.DOWN),
        (5, ChainDirection.COLD),
    }
    judged = [s for s in expected.steps if s.direction is ChainDirection.UP]
    assert len(judged) == 2 and all(s.verdict is not None for s in judged)
    messages = []
    with process_map(2, messages.append) as (map_, log):
        assert_same(execute(plan, [0], log=log, map_=map_), expected)
    assert any("ascending seed 0, lambda 2 to 4" in m for m in messages)  # judged in a worker
