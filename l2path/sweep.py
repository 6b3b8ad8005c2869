"""Is the converged chains' answer general? A sweep profile of seeds x hidden widths x n_sub.

A profile (``sweeps/*.yaml``, ``SweepProfile``) names the seeds, the hidden widths and the
subset sizes; every combination is a *case*. A case runs one ascending converged chain exactly
as the continuation stage does (``chain.stage.run_seed``: polish of J_lambda on the first
n_sub training images, warm-started from the previous point, every point proved by inertia,
every step judged by pseudo-arclength, the ``chain`` params), on the network
[784, hidden, 10] with the study's cost and lambda/n. The one difference: the chain starts from
the study's fresh initialisation (``lambda_study.init``, the case's seed) polished at the grid's
first lambda, not from an SGD point, because the study trained no SGD point at the other
widths. Descending chains are left out (the stage follows only their drops, and it had none).

A case's row (``SweepRow``) holds the chain's counts (``chain.stage.summary``) and, for the
question "how often do converged chains drop, and how often at a located fold",
``drops_at_fold``: the drops whose verdict is a fold jump.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .chain.records import ChainDirection, StepVerdictKind
from .chain.stage import ChainPlan, chain_plan, run_seed, summary
from .chain.subset import SubsetProblem
from .config import Params
from .data.dataset import Dataset
from .model.init import init_stack
from .rows import Row


class SweepProfile(BaseModel):
    """A sweep profile file: every combination of ``seeds`` x ``hidden`` x ``n_sub`` is a case,
    ``workers`` cases at a time (one BLAS thread each)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    seeds: list[int] = Field(min_length=1)
    hidden: list[int] = Field(min_length=1)
    n_sub: list[int] = Field(min_length=1)
    workers: int = Field(default=1, ge=1)

    def model_post_init(self, _context) -> None:
        for key in ("seeds", "hidden", "n_sub"):
            values = getattr(self, key)
            if len(set(values)) != len(values) or min(values) < (0 if key == "seeds" else 1):
                raise ValueError(f"{key} must be distinct and positive (seeds >= 0): {values}")


def load_profile(path: str | Path) -> SweepProfile:
    """The profile in ``path``; a missing file or a bad key is an error that names it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sweep profile {path} not found")
    try:
        return SweepProfile.model_validate(yaml.safe_load(path.read_text()) or {})
    except (ValidationError, ValueError) as error:
        raise ValueError(f"sweep profile {path}: {error}") from error


def check_subsets(profile: SweepProfile, available: int) -> None:
    """Refuse, before any case runs, an n_sub beyond the ``available`` training images."""
    too_large = [n for n in profile.n_sub if n > available]
    if too_large:
        raise ValueError(
            f"sweep profile {profile.name}: n_sub {too_large} exceed the {available} training "
            "images of lambda_study.model.n_train"
        )


@dataclass(frozen=True)
class SweepCase:
    seed: int
    hidden: int
    n_sub: int

    @property
    def label(self) -> str:
        return f"seed{self.seed}_hidden{self.hidden}_nsub{self.n_sub}"


def cases(profile: SweepProfile) -> list[SweepCase]:
    """Every combination, the cheapest (smallest n_sub, then width) first."""
    combos = itertools.product(sorted(profile.n_sub), sorted(profile.hidden), profile.seeds)
    return [SweepCase(seed, hidden, n_sub) for n_sub, hidden, seed in combos]


@dataclass(frozen=True)
class SweepRow(Row):
    """One case of ``results/sweep_<name>.csv``: the ascending converged chain's counts."""

    seed: int
    hidden: int
    n_sub: int
    parameters: int  # of the span-reduced problem
    points: int
    converged_points: int
    proved_minima: int
    proved_saddles: int
    degenerate_points: int  # neither class proved: eigenvalues in [-delta, delta] (chain.witness)
    escapes: int  # proved saddles left along their witness (chain.settle)
    steps: int
    drops: int  # steps whose in-sample MSE fell as lambda rose
    drops_at_fold: int  # of those, the ones judged a fold jump (located)
    one_branch_of_minima: int
    fold_jumps: int
    saddle_branches: int
    branch_switches: int
    branches_lost: int
    drops_on_one_branch_of_minima: int  # the lemma says 0
    lemma_ratio_min: float | None
    lemma_ratio_max: float | None
    last_lambda: float  # where the chain ended (collapse, or the grid's end)
    seconds: float


def case_plan(params: Params, case: SweepCase, data: Dataset) -> ChainPlan:
    """The stage's plan (``chain.stage.chain_plan``) for the case's network and subset, on the
    CPU, with the case's fresh initialisation as the ascending start: the ascending chain only."""
    study, model = params.lambda_study, params.lambda_study.model
    sizes = [model.sizes[0], case.hidden, model.sizes[-1]]
    full = SubsetProblem(
        sizes, data.train.x, data.train.y, model.cost, len(data.train.x), case.n_sub
    )
    fresh = init_stack(sizes, [study.init], [case.seed], torch.float64)
    return chain_plan(
        params,
        full,
        len(data.train.x),
        {case.seed: full.mse.flat(fresh)},
        torch.device("cpu"),
        follow={"ascending": "all", "descending": "drops"},
        only=(ChainDirection.UP,),
    )


def run_case(params: Params, case: SweepCase, data: Dataset, log=lambda m: None) -> SweepRow:
    """The case's ascending converged chain and its counts."""
    clock = time.perf_counter()
    plan = case_plan(params, case, data)
    results = run_seed(plan, case.seed, log)
    points, steps = results.points, results.steps
    counts = summary(plan, results)
    return SweepRow(
        seed=case.seed,
        hidden=case.hidden,
        n_sub=case.n_sub,
        parameters=counts.parameters,
        points=counts.points,
        converged_points=counts.converged_points,
        proved_minima=counts.proved_minima,
        proved_saddles=counts.proved_saddles,
        degenerate_points=counts.degenerate_points,
        escapes=counts.escapes,
        steps=counts.steps,
        drops=counts.drops,
        drops_at_fold=sum(s.drop and s.verdict is StepVerdictKind.FOLD_JUMP for s in steps),
        one_branch_of_minima=counts.one_branch_of_minima,
        fold_jumps=counts.fold_jumps,
        saddle_branches=counts.saddle_branches,
        branch_switches=counts.branch_switches,
        branches_lost=counts.branches_lost,
        drops_on_one_branch_of_minima=counts.drops_on_one_branch_of_minima,
        lemma_ratio_min=counts.lemma_ratio_min,
        lemma_ratio_max=counts.lemma_ratio_max,
        last_lambda=max((p.lam for p in points), default=math.nan),
        seconds=time.perf_counter() - clock,
    )
