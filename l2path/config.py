"""Validated params: every section of params.yaml as a pydantic model.

Unknown keys are rejected, and every error names the key (``train.lambda``) and what
is allowed, before any data is read or any run is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .schedules import SCHEDULES

N_PIXELS, N_CLASSES = 784, 10


class ParamsError(ValueError):
    """params.yaml is missing, unreadable or invalid; the message names each bad key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Paths(Section):
    """Where each stage reads and writes, relative to the repository root (dvc.yaml uses them)."""

    raw_dir: str
    prepared: str
    manifest: str
    train_checkpoint: str
    train_metrics: str
    train_epochs: str
    study_dir: str
    study_results: str
    monotonicity_table: str
    monotonicity_metrics: str
    controls: str
    verdicts: str
    verdicts_metrics: str
    decomposition: str
    hessian_table: str
    spectra_dir: str
    escapes: str
    interpolation: str
    saddle_steps: str
    hessian_metrics: str
    chain_points: str
    chain_steps: str
    chain_metrics: str
    chains: str
    chain_weights: str
    dynamics_dir: str
    dynamics_epochs: str
    dynamics_plots_dir: str
    dynamics_theory: str
    dynamics_costs: str
    dynamics_budget: str
    dynamics_metrics: str
    report_dir: str
    report_metrics: str
    headline_metrics: str
    lineage_dir: str


class Study(Section):
    name: str = Field(min_length=1)


class Runtime(Section):
    """Torch (and BLAS) threads: ``threads`` for the SGD stages, ``curvature_threads`` for the
    hessian stage, which runs alone and whose large products use every core."""

    threads: int = Field(ge=1)
    curvature_threads: int = Field(ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"


class Data(Section):
    mirror: str | None = None
    public_mirrors: list[str]
    timeout_s: float = Field(gt=0)
    n_validation: int = Field(ge=1, le=59_999)


def _mnist_shape(sizes: list[int]) -> list[int]:
    if len(sizes) < 2 or sizes[0] != N_PIXELS or sizes[-1] != N_CLASSES:
        raise ValueError(f"must start with {N_PIXELS} and end with {N_CLASSES}, e.g. [784, 30, 10]")
    if any(size < 1 for size in sizes):
        raise ValueError("every layer needs at least one unit")
    return sizes


Initialiser = Literal["large", "default"]


class ModelSpec(Section):
    """The network, its cost, its precision and the training images it sees: the one
    model spec every stage uses (``train.model``, ``lambda_study.model``, ``dynamics.model``)."""

    sizes: list[int]
    cost: Literal["quadratic", "cross_entropy"]
    dtype: Literal["float32", "float64"]
    n_train: int | None = Field(default=None, ge=1)

    _sizes = field_validator("sizes")(_mnist_shape)


class Train(Section):
    model: ModelSpec
    init: Initialiser
    eta: float = Field(gt=0)
    lam: float = Field(ge=0, alias="lambda")
    batch_size: int = Field(ge=1)
    epochs: int = Field(ge=1)
    seed: int = Field(ge=0)


def _registered(name: str) -> str:
    """A schedule of the registry at validation time (so a schedule a test registers is valid)."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; allowed: {list(SCHEDULES)}")
    return name


ScheduleName = Annotated[str, AfterValidator(_registered)]


def _unique(values: list) -> list:
    if len(set(values)) != len(values):
        raise ValueError("entries must be unique")
    return values


def _non_negative_seeds(seeds: list[int]) -> list[int]:
    if any(seed < 0 for seed in seeds):
        raise ValueError("seeds must be >= 0")
    return seeds


class Grid(Section):
    lambda_start: float = Field(gt=0)
    factor: float = Field(gt=1)
    lambda_max: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> "Grid":
        if self.lambda_max < self.lambda_start:
            raise ValueError(
                f"lambda_max ({self.lambda_max}) must be >= lambda_start ({self.lambda_start})"
            )
        return self


class StudySGD(Section):
    """The SGD phase of every point: at most max_epochs, stopped earlier by the plateau test
    on the running mean of J over ``window`` epochs, with a tolerance of rel_tol * |J| or
    ``noise_sds`` sds of that test's own noise, whichever is larger (``train.plateau``); the
    best epoch's iterate is reported."""

    optimizer: Literal["sgd", "adam"]
    eta: float = Field(gt=0)
    batch_size: int = Field(ge=1)
    max_epochs: int = Field(ge=1)
    min_epochs: int = Field(ge=1)
    patience: int = Field(ge=1)
    rel_tol: float = Field(ge=0)
    window: int = Field(ge=1)
    noise_sds: float = Field(ge=0)
    order_seed: int = Field(ge=0)


class Polish(Section):
    schedules: list[ScheduleName]
    grad_tol: float = Field(gt=0)
    max_iter: int = Field(ge=0)
    continue_from: Literal["sgd", "polished"]

    _unique_schedules = field_validator("schedules")(_unique)


class LambdaStudy(Section):
    schedules: list[ScheduleName] = Field(min_length=1)
    chain_seeds: list[int] = Field(min_length=1)
    cold_seeds: list[int]
    collapse_ratio: float = Field(gt=0, lt=1)
    stack_width: int = Field(ge=1)
    shards: int = Field(ge=1)
    false_alarm: float = Field(gt=0, lt=0.5)
    controls: bool
    model: ModelSpec
    init: Initialiser
    grid: Grid
    sgd: StudySGD
    polish: Polish

    _unique_lists = field_validator("schedules", "chain_seeds", "cold_seeds")(_unique)
    _seeds = field_validator("chain_seeds", "cold_seeds")(_non_negative_seeds)


class Hessian(Section):
    """Curvature of J_lambda at the study's points (l2path.curvature.saddle)."""

    schedules: list[ScheduleName]
    select: Literal["none", "nonmonotone", "all"]
    n_train: int | None = Field(default=None, ge=1)
    k: int = Field(ge=1)
    eig_tol: float = Field(gt=0)
    lanczos_steps: int = Field(ge=2)
    slq_probes: int = Field(ge=2)
    slq_steps: int = Field(ge=2)
    trace_probes: int = Field(ge=2)
    saddle_rel_tol: float = Field(ge=0)
    escape_drop: float = Field(gt=0)
    escape_max_iter: int = Field(ge=1)
    interpolation_points: int = Field(ge=2)

    _unique_schedules = field_validator("schedules")(_unique)


class ChainFollow(Section):
    """Which steps of each direction's converged chains are followed by pseudo-arclength: all,
    or the drops only (the others keep their change and classes, verdict "not followed")."""

    ascending: Literal["all", "drops"]
    descending: Literal["all", "drops"]


class Chain(Section):
    """The converged warm-started chain (l2path.chain): J on the first n_sub images, span-reduced,
    every point polished from the previous one and its class proved by inertia."""

    n_sub: int = Field(ge=1)
    n_sub_gpu: int | None = Field(default=None, ge=1)
    arc_step: float = Field(gt=0)
    arc_max_step: float = Field(gt=0)
    corrector_iterations: int = Field(ge=1)
    gmres_restarts: int = Field(ge=1)
    gmres_rtol: float = Field(gt=0, lt=1)
    fold_tol: float = Field(gt=0)
    same_point_tol: float = Field(gt=0)
    fraction: float = Field(gt=0, lt=1)
    grad_tol: float = Field(gt=0)
    lbfgs_tol: float = Field(gt=0)
    lbfgs_iterations: int = Field(ge=0)
    newton_iterations: int = Field(ge=1)
    cg_iterations: int = Field(ge=1)
    workers: int = Field(ge=1)
    follow: ChainFollow
    cold_seeds: list[int]  # fresh initialisations settled at every lambda (none: [])
    max_escapes: int = Field(ge=0)  # saddles left per point along their witness

    _unique_seeds = field_validator("cold_seeds")(_unique)
    _seeds = field_validator("cold_seeds")(_non_negative_seeds)

    @model_validator(mode="after")
    def _arc_steps_ordered(self) -> "Chain":
        if self.arc_step > self.arc_max_step:
            raise ValueError(
                f"arc_step ({self.arc_step}) is larger than arc_max_step ({self.arc_max_step})"
            )
        return self


class DynamicsSetting(Section):
    """A further (eta, lambdas, epochs) setting of the dynamics stage, every initialiser in it."""

    eta: float = Field(gt=0)
    lambdas: list[float] = Field(min_length=1)
    epochs: int = Field(ge=1)
    seeds: list[int] | None = None  # None: the stage's seeds

    _unique_lists = field_validator("lambdas", "seeds")(_unique)

    @field_validator("lambdas")
    @classmethod
    def _decayed(cls, lambdas: list[float]) -> list[float]:
        if any(lam <= 0 for lam in lambdas):
            raise ValueError(
                "the lambdas of a further setting must be > 0 (the control is the main setting's)"
            )
        return lambdas


class Dynamics(Section):
    """Nielsen's weight-decay exercise (l2path.dynamics): the question's setting (eta,
    lambdas, epochs; the lambda = 0 control stops at ``question_epochs``), the book's
    setting and a lambda sweep; one stack per seed holds every model of that seed."""

    model: ModelSpec
    eta: float = Field(gt=0)
    lambdas: list[float] = Field(min_length=1)
    batch_size: int = Field(ge=1)
    epochs: int = Field(ge=1)
    question_epochs: int = Field(ge=1)  # the question's figures are read after this many epochs
    inits: list[Initialiser] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    book: DynamicsSetting | None = None
    sweep: DynamicsSetting | None = None
    # the question's setting (eta, its lambdas > 0, inits, seeds) trained again with this cost
    # for question_epochs epochs: the causal test of why a layer grows (None: not run)
    other_cost: Literal["quadratic", "cross_entropy"] | None = None
    small_gradient_ratio: float = Field(gt=0)
    tail_off_fraction: float = Field(gt=0, lt=1)
    trend_epochs: int = Field(
        ge=1
    )  # the per-epoch shrink rate's trend: a centred moving mean over this many epochs
    level_off_rate: float = Field(
        gt=0, lt=1
    )  # levelled off: |trend of the last epochs| < this share of the decay rate
    gradient_every: int = Field(
        ge=1
    )  # beyond the question's epochs, the full record every this many epochs
    workers: int = Field(ge=1)  # processes training stacks side by side (one torch thread each)
    # the per-layer weight variances the question reports after training from the large
    # initialiser, set beside ours in the report (empty: none)
    reported_variances: list[float] = Field(default_factory=list)
    mechanism_images: int = Field(ge=1)  # the quadratic-cost share on the first this many images
    # the sweep's models stepped through one more epoch (``dynamics.budget``): the full-batch
    # share r at this many points of it, both ends included
    along_points: int = Field(ge=2)

    _unique_lists = field_validator("lambdas", "inits", "seeds")(_unique)

    @field_validator("lambdas")
    @classmethod
    def _decayed(cls, lambdas: list[float]) -> list[float]:
        if any(lam < 0 for lam in lambdas):
            raise ValueError("lambdas must be >= 0")
        if not any(lam > 0 for lam in lambdas):
            raise ValueError("at least one lambda must be > 0 (0 is only the control)")
        return lambdas

    _seeds = field_validator("seeds")(_non_negative_seeds)

    @model_validator(mode="after")
    def _question_within_run(self) -> "Dynamics":
        if self.question_epochs > self.epochs:
            raise ValueError(
                f"question_epochs ({self.question_epochs}) must be <= epochs ({self.epochs})"
            )
        if self.other_cost == self.model.cost:
            raise ValueError(
                f"other_cost ({self.other_cost}) must differ from model.cost: it is the comparison"
            )
        return self


class Report(Section):
    """What the report links to and how many spectra it draws. ``mlflow_ui``: where ``mlflow
    ui`` serves the store (the report's links, the run URL each stage prints); None: no links,
    the report and the terminal name the runs instead."""

    mlflow_ui: str | None = Field(default=None, min_length=1)
    densities: int = Field(ge=0)


class ScaleOut(Section):
    """Where the study's shards run. Not a DVC dependency: it changes no number."""

    executor: Literal["local", "dask"]
    dask_address: str | None = None
    local_workers: int = Field(ge=1)

    @model_validator(mode="after")
    def _address_needs_dask(self) -> "ScaleOut":
        if self.dask_address and self.executor != "dask":
            raise ValueError("dask_address is set but executor is not 'dask'")
        return self


class Params(Section):
    paths: Paths
    study: Study
    runtime: Runtime
    data: Data
    train: Train
    lambda_study: LambdaStudy
    hessian: Hessian
    chain: Chain
    dynamics: Dynamics
    report: Report
    scale_out: ScaleOut


def _describe(error: dict) -> str:
    key = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (not a param of this section)"
    got = (
        f" (got {error['input']!r})"
        if "input" in error and error["type"] not in ("missing", "model_type")
        else ""
    )
    return f"{key}: {message}{got}"


def parse_params(raw: dict) -> Params:
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        problems = "\n".join(f"  - {_describe(e)}" for e in exc.errors())
        raise ParamsError(f"invalid params:\n{problems}") from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml; raises ParamsError naming every bad key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ParamsError(f"cannot read {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    return parse_params(raw)
