"""What the report reads: every stage's output as that stage's own types (one schema module
per stage), so the report reads attributes, never nested string keys.

| field | file | type (module) |
|---|---|---|
| ``study`` | results/study.csv | a table of ``study.records.PointRecord`` rows |
| ``steps`` | results/monotonicity.csv | table |
| ``monotonicity`` | metrics/monotonicity.json | ``monotonicity.MonotonicitySummary`` |
| ``verdicts`` | metrics/verdicts.json | ``verdicts.VerdictSummary`` |
| ``verdict_steps`` | results/verdicts.csv | table (shown as it is) |
| ``decomposition`` | results/decomposition.csv | table (``decomposition.COLUMNS``) |
| ``chain`` | metrics/chain.json | ``chain.records.ChainSummary`` |
| ``chain_points`` | results/chain_points.csv | ``chain.records.ChainPoint`` |
| ``chain_steps`` | results/chain_steps.csv | ``chain.records.ChainStep`` |
| ``chains`` | results/chains.csv | ``chain.records.ChainRecord`` |
| ``hessian`` | results/hessian.csv | ``landscape_records.CurvaturePoint`` |
| ``saddle_steps`` | results/saddle_steps.csv | ``landscape_records.SaddleStep`` |
| ``escapes`` | results/escapes.csv | ``landscape_records.EscapeRow`` |
| ``interpolation`` | results/interpolation.csv | ``landscape_records.InterpolationRow`` |
| ``dynamics_plots`` | plots/dynamics/<name>.csv | tables (columns ``dynamics.tables.curves``) |
| ``theory`` | results/dynamics_theory.csv | ``dynamics.summary.TheoryRow`` |
| ``costs`` | results/dynamics_costs.csv | table (``dynamics.cost_test.COLUMNS``) |
| ``budget`` | results/dynamics_budget.csv | table (``dynamics.budget.budget_table``) |

The study's tables, which the figures draw, and the verdicts' table, which the page shows as
it is, stay DataFrames. ``None`` is a stage not run (or a file it did not write).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..chain.records import ChainPoint, ChainRecord, ChainStep, ChainSummary
from ..dynamics.summary import TheoryRow
from ..landscape_records import CurvaturePoint, EscapeRow, InterpolationRow, SaddleStep
from ..monotonicity import MonotonicitySummary
from ..verdicts import VerdictSummary


@dataclass(frozen=True)
class ReportInputs:
    study: pd.DataFrame  # results/study.csv
    steps: pd.DataFrame  # results/monotonicity.csv
    monotonicity: MonotonicitySummary
    verdicts: VerdictSummary | None  # None: not written
    verdict_steps: pd.DataFrame | None  # every non-monotone step, its verdict and evidence
    hessian: list[CurvaturePoint] | None  # the analysed points
    saddle_steps: list[SaddleStep] | None  # non-monotone chain steps and their start's class
    escapes: list[EscapeRow] | None
    interpolation: list[InterpolationRow] | None
    spectra: dict  # point key -> arrays of its spectrum file
    dynamics_plots: dict[str, pd.DataFrame]  # name -> plots/dynamics/<name>.csv
    theory: list[TheoryRow] | None  # results/dynamics_theory.csv, in its order
    dynamics_config: object  # the dynamics params section
    provenance: dict  # label -> value (params, data md5)
    links: dict = field(default_factory=dict)  # label -> URL of the MLflow runs it names, or None
    chain: ChainSummary | None = None  # None: no converged chain written
    decomposition: pd.DataFrame | None = None  # every warm step's lambda effect and deficit
    false_alarm: float | None = None  # lambda_study.false_alarm: the tests' (and bars') alpha
    chain_points: list[ChainPoint] | None = None
    chain_steps: list[ChainStep] | None = None
    chains: list[ChainRecord] | None = None  # each chain's lambdas, escapes, lambda_c
    costs: pd.DataFrame | None = None  # the causal test: one row per (cost, init, layer)
    budget: pd.DataFrame | None = None  # the balance's gap split: one row per (init, lambda, layer)
