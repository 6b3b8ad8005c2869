"""Training one round of the lambda study: its points side by side, then each one finished.

1. SGD phase (``sgd_phase``): the round's points start from a fresh initialisation (seed)
   or their parent's final weights and train as one stack for at most ``sgd.max_epochs``
   epochs on J_lambda(w) = (1/n) sum_x C_x(w) + (lambda / 2n) sum_weights w^2, each model
   stopped on its own by the plateau rule on the running mean of J
   (``train.monitor.EpochMonitor``) or when its weights become non-finite (diverged). All
   points share the mini-batch order ``sgd.order_seed``. Each point keeps its best epoch's
   iterate (lowest full-batch J) with the sd of J and MSE over its last epochs; its SGD
   checkpoint and phase record are saved at once.
2. Finish (``finish_point``): the float64 full-batch ||grad J_lambda|| at the SGD point (one
   stacked pass for the round, ``train.metrics.gradient_norms``);
   points of ``polish.schedules`` are then polished (``curvature.polish``, L-BFGS then
   Newton-CG: ``polish.study_polish``); certified when
   the final gradient norm is <= ``polish.grad_tol``; the record is saved.

Stacking changes a model's numbers only by rounding (``train.sgd.train_sgd``). Wall times
(``train_seconds``) are the round's SGD time (per-epoch evaluation included) shared out in
proportion to each model's epochs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from ..curvature.polish import polish, study_polish
from ..data.dataset import Dataset
from ..model.checkpoint import load_model
from ..model.costs import Cost, get_cost
from ..model.init import init_stack
from ..model.network import DTYPES, StackedMLP
from ..objective import Objective
from ..train.metrics import evaluate, gradient_norms, weight_penalty
from ..train.monitor import EpochMonitor
from ..train.plateau import PlateauRule
from ..train.sgd import SGDSettings, train_sgd
from .planner import StudyPlan
from .progress import Progress, continued_weight_l2, is_collapsed
from .records import EpochRecord, Evaluation, PointRecord, SGDPhase
from .schedules import Point
from .store import PointStore


@dataclass
class RoundContext:
    """What every round of one study shares: its plan, data, store and execution label."""

    plan: StudyPlan
    data: Dataset
    store: PointStore
    label: str = ""

    def __post_init__(self) -> None:
        self.cost: Cost = get_cost(self.plan.config.model.cost)
        self.dtype = DTYPES[self.plan.config.model.dtype]
        if self.data.train.x.dtype != self.dtype:
            raise ValueError(
                f"data are {self.data.train.x.dtype}, but lambda_study.model.dtype is "
                f"{self.plan.config.model.dtype}"
            )
        self._train64: tuple[torch.Tensor, torch.Tensor] | None = None

    def train64(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training data in float64 (gradient norms and the polish), converted once."""
        if self._train64 is None:
            self._train64 = (
                self.data.train.x.to(torch.float64),
                self.data.train.y.to(torch.float64),
            )
        return self._train64


def train_round(context: RoundContext, progress: Progress, batch: list[Point]) -> list[PointRecord]:
    """SGD phase of the batch's points not already through it (pending), then every point
    finished; the records are saved and returned in batch order (``progress`` is not changed
    except that the batch's pending phases are taken from it)."""
    phases = {
        point.key: progress.pending.pop(point.key)
        for point in batch
        if point.key in progress.pending
    }
    to_train = [point for point in batch if point.key not in phases]
    if to_train:
        phases.update(sgd_phase(context, progress, to_train))
    models = [load_model(phases[point.key].checkpoint, context.dtype)[0] for point in batch]
    norms = gradient_norms_of(context, models, [point.lam for point in batch])
    return [
        finish_point(context, progress, point, phases[point.key], model, norm)
        for point, model, norm in zip(batch, models, norms)
    ]


def parent_checkpoint(context: RoundContext, progress: Progress, point: Point) -> str | None:
    """The checkpoint a warm-started point starts from: its parent's SGD or polished weights."""
    parent = progress.parent_record(point)
    if parent is None:
        return None
    return (
        parent.polished_checkpoint
        if context.plan.starts_from_polished(point)
        else parent.checkpoint
    )


def starting_weights(
    context: RoundContext, progress: Progress, point: Point
) -> tuple[StackedMLP, float]:
    """Starting weights (a stack of one) and ||w|| at the chain's fresh initialisation."""
    config = context.plan.config
    if point.parent is None:
        net = init_stack(config.model.sizes, [config.init], [point.seed], context.dtype)
        return net, float(weight_penalty(net)[0].sqrt())
    net, _ = load_model(parent_checkpoint(context, progress, point), context.dtype)
    return net, progress.records[point.parent].chain_start_weight_l2


def sgd_phase(context: RoundContext, progress: Progress, batch: list[Point]) -> dict[str, SGDPhase]:
    """Train the batch side by side; save each point's SGD checkpoint and phase record."""
    sgd, data = context.plan.config.sgd, context.data
    starts = [starting_weights(context, progress, point) for point in batch]
    net = StackedMLP.stack([start for start, _ in starts])
    lams = [point.lam for point in batch]
    rule = PlateauRule(sgd.patience, sgd.rel_tol, sgd.min_epochs, sgd.window, sgd.noise_sds)
    position = {point.key: k for k, point in enumerate(batch)}
    follow = [position.get(p.control_of) if p.control_of else None for p in batch]
    stop_after = [
        progress.records[p.control_of].epochs
        if p.control_of and p.control_of not in position
        else None
        for p in batch
    ]  # an orphan control: as many epochs as its finished point
    monitor = EpochMonitor(
        data.train, context.cost, lams, rule, follow=follow, stop_after=stop_after
    )
    settings = SGDSettings(
        eta=[sgd.eta] * len(batch),
        lam=lams,
        seeds=[sgd.order_seed] * len(batch),
        batch_size=sgd.batch_size,
        epochs=sgd.max_epochs,
        optimizer=sgd.optimizer,
    )
    clock = time.perf_counter()
    outcome = train_sgd(
        net, data.train.x, data.train.y, context.cost, settings, callbacks=[monitor]
    )
    seconds = time.perf_counter() - clock
    for k, best in enumerate(
        monitor.best
    ):  # report the best epoch's iterate (a diverged model keeps its last)
        if best is not None and not outcome.diverged[k]:
            net.assign(torch.tensor([k]), best)
    finals = evaluate(net, data, context.cost, lams)
    total_epochs = max(sum(outcome.model_epochs), 1)
    phases = {}
    for k, point in enumerate(batch):
        phase = SGDPhase(
            key=point.key,
            fingerprint=context.plan.fingerprint(point),
            checkpoint=str(context.store.checkpoint_path(point.key)),
            epochs=outcome.model_epochs[k],
            best_epoch=monitor.best_epoch[k],
            objective_sd=monitor.noise(k, "objective"),
            data_loss_sd=monitor.noise(k, "data_loss"),
            train_mse_sd=monitor.noise(k, "train_mse"),
            diverged=outcome.diverged[k],
            train_seconds=seconds * outcome.model_epochs[k] / total_epochs,
            chain_start_weight_l2=starts[k][1],
            history=tuple(EpochRecord.from_mapping(h) for h in monitor.history[k]),
            evaluation=Evaluation.from_mapping(finals[k]),
        )
        context.store.save_phase(phase, net.model(k))
        phases[point.key] = phase
    return phases


def gradient_norms_of(
    context: RoundContext, models: list[StackedMLP], lams: list[float]
) -> list[float]:
    """||grad J_lambda|| of each model (stacks of one) in float64 on the full training set,
    in one stacked pass."""
    x, y = context.train64()
    stack = StackedMLP.stack([model.to(torch.float64) for model in models])
    return gradient_norms(stack, x, y, context.cost, lams).tolist()


def finish_point(
    context: RoundContext,
    progress: Progress,
    point: Point,
    phase: SGDPhase,
    model: StackedMLP,
    norm: float,
) -> PointRecord:
    """Certificate, optional polish and chain-end test of a point after its SGD phase; saved.
    ``model`` holds its SGD weights and ``norm`` their ||grad J_lambda|| (float64)."""
    config = context.plan.config
    diverged = phase.diverged or not math.isfinite(phase.evaluation.objective)
    parent = progress.parent_record(point)
    record = PointRecord(
        key=point.key,
        schedule=point.schedule,
        seed=point.seed,
        grid_index=point.grid_index,
        lam=point.lam,
        log2_lambda=math.log2(point.lam),
        fingerprint=phase.fingerprint,
        start="warm" if parent else "fresh",
        parent=point.parent,
        parent_checkpoint=parent_checkpoint(context, progress, point),
        parent_mlflow_run_id=parent.mlflow_run_id if parent else None,
        checkpoint=phase.checkpoint,
        polished_checkpoint=None,
        epochs=phase.epochs,
        best_epoch=phase.best_epoch,
        objective_sd=phase.objective_sd,
        data_loss_sd=phase.data_loss_sd,
        train_mse_sd=phase.train_mse_sd,
        diverged=diverged,
        message="",
        chain_start_weight_l2=phase.chain_start_weight_l2,
        train_seconds=phase.train_seconds,
        polish_seconds=0.0,
        polished=False,
        polish_iterations=0,
        control_of=point.control_of,
        execution=context.label,
        mlflow_run_id=None,
        sgd_grad_norm=math.nan,
        grad_norm=math.nan,
        critical=False,
        collapsed=False,
        sgd=phase.evaluation,
        final=phase.evaluation,
        history=phase.history,
    )
    polished_net = None
    if diverged:
        record = record.replace(
            message=f"diverged: non-finite weights or objective within {phase.epochs} epoch(s) "
            f"(eta*lambda/n = {config.sgd.eta * point.lam / len(context.data.train):.3g})"
        )
    else:
        record = record.replace(sgd_grad_norm=norm, grad_norm=norm)
        if context.plan.is_polished(point):
            record, polished_net = polish_point(context, point, model, record)
        record = record.replace(critical=bool(record.grad_norm <= config.polish.grad_tol))
    if is_collapsed(record, config.collapse_ratio, config.polish.continue_from):
        weight_l2 = continued_weight_l2(record, config.polish.continue_from)
        record = record.replace(
            collapsed=True,
            message=(
                f"weights collapsed: ||w|| = {weight_l2:.3g} < "
                f"{config.collapse_ratio:g} * "
                f"{record.chain_start_weight_l2:.3g}; chain ends"
            ),
        )
    context.store.save(record, polished_net=polished_net)
    return record


def polish_point(
    context: RoundContext, point: Point, model: StackedMLP, record: PointRecord
) -> tuple[PointRecord, StackedMLP]:
    """Float64 full-batch polish of J_lambda from the SGD point (``curvature.polish``: L-BFGS
    for at most ``polish.max_iter`` iterations, then Newton-CG, to ``polish.grad_tol``);
    ``polish_iterations`` counts both phases' iterations."""
    x, y = context.train64()
    polish_config = context.plan.config.polish
    clock = time.perf_counter()
    objective = Objective(model.sizes, x, y, context.cost, point.lam)
    result = polish(
        objective,
        objective.flat(model),
        study_polish(polish_config.grad_tol, polish_config.max_iter),
    )
    net = objective.network(result.theta)
    final = Evaluation.from_mapping(evaluate(net, context.data, context.cost, [point.lam])[0])
    path = str(context.store.checkpoint_path(point.key, polished=True))
    return record.replace(
        final=final,
        grad_norm=result.grad_norm,
        polished=True,
        polish_iterations=result.lbfgs_iterations + result.newton_iterations,
        polish_seconds=time.perf_counter() - clock,
        polished_checkpoint=path,
    ), net
