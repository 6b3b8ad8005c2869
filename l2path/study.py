"""The lambda study: every chain's points trained in rounds of stacked models, resumable.

A round takes the next unfinished point of every live continuation chain and a share of
the cold starts (at most ``stack_width`` models, see ``next_round``) and trains them side
by side:

1. SGD phase: at most ``sgd.max_epochs`` epochs on J_lambda(w) = (1/n) sum_x C_x(w) +
   (lambda / 2n) sum_weights w^2, each model stopped on its own by the plateau rule
   (``plateau.PlateauRule`` on J after each epoch) or when its weights become non-finite
   (diverged). All points share the mini-batch order ``sgd.order_seed``.
2. Certificate: the float64 full-batch gradient norm ||grad J_lambda|| at the SGD point;
   points of the schedules in ``polish.schedules`` are then polished (``polish.polish``).
   A point is certified when its final gradient norm is <= ``polish.grad_tol``.
3. The checkpoint(s) and the record are written (``point_store``); a chain ends at a
   diverged point, or (ascending) when ||w|| < collapse_ratio * ||w at the chain's fresh
   initialisation||.

A re-run skips every point whose record is present with the same fingerprint, so a
killed study resumes from the last finished point of each chain. Stacking changes a
model's numbers only by rounding (``sgd.train_sgd``; the width of a matrix product can
change its kernel), and a resumed study rebuilds the rounds of an uninterrupted one, so
its results are the same bit for bit. Wall times (``train_seconds``) are the round's SGD
time (per-epoch evaluation included) shared out in proportion to each model's epochs.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from .config import LambdaStudy
from .costs import Cost, get_cost
from .dataset import Dataset, Split
from .grid import lambda_grid
from .init import init_stack
from .metrics import evaluate, split_losses, weight_penalty
from .network import StackedMLP
from .checkpoint import load_model
from .plateau import PlateauRule
from .point_store import PointStore
from .polish import objective_and_gradient, polish
from .schedules import Point, plan
from .sgd import SGDSettings, train_sgd
from .training import DTYPES

HISTORY_KEYS = ("objective", "data_loss", "train_mse", "train_accuracy", "weight_l2")


@dataclass
class EpochMonitor:
    """Per-epoch J, losses and weight norm of the models still training, and the plateau stop.

    An ``sgd.EpochCallback``: ``history[k]`` holds model k's records, one per epoch trained.
    """

    train: Split
    cost: Cost
    lams: list[float]
    rule: PlateauRule
    history: list[list[dict]] = field(default_factory=list)
    stopped: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.history = [[] for _ in self.lams]
        self.stopped = [False] * len(self.lams)

    def __call__(self, epoch: int, net: StackedMLP) -> list[bool]:
        finite = net.is_finite().tolist()
        active = [k for k in range(len(self.lams)) if not self.stopped[k] and finite[k]]
        self.stopped = [s or not f for s, f in zip(self.stopped, finite)]
        if active:
            sub = net.select(torch.tensor(active))
            losses, squares = split_losses(sub, self.train, self.cost), weight_penalty(sub)
            n = len(self.train)
            for j, k in enumerate(active):
                record = {"epoch": epoch, "objective": float(losses["loss"][j] + self.lams[k] * squares[j] / (2 * n)),
                          "data_loss": float(losses["loss"][j]), "train_mse": float(losses["mse"][j]),
                          "train_accuracy": float(losses["accuracy"][j]), "weight_l2": float(squares[j].sqrt())}
                self.history[k].append(record)
                objectives = [r["objective"] for r in self.history[k]]
                self.stopped[k] = not math.isfinite(objectives[-1]) or self.rule.has_plateaued(objectives)
        return list(self.stopped)


def study_chains(config: LambdaStudy) -> list[list[Point]]:
    """Every chain of the study, in plan order (``schedules.plan`` on the study's grid)."""
    grid = lambda_grid(config.grid.lambda_start, config.grid.factor, config.grid.lambda_max)
    return plan(config.schedules, config.chain_seeds, config.cold_seeds, grid)


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


class LambdaStudyRunner:
    """Plans the study, resumes what the store holds, and trains the rest round by round.

    ``chain_ids`` restricts the runner to those chains of the plan (a shard, see
    ``shards.shard_chains``); None means every chain.
    """

    def __init__(self, config: LambdaStudy, data: Dataset, store: PointStore, data_md5: str, label: str = "",
                 chain_ids: Sequence[int] | None = None):
        self.config, self.data, self.store, self.label, self.data_md5 = config, data, store, label, data_md5
        every_chain = study_chains(config)
        self.chains = every_chain if chain_ids is None else [every_chain[i] for i in chain_ids]
        self.points = {p.key: p for chain in self.chains for p in chain}
        self.cost = get_cost(config.model.cost)
        self.dtype = DTYPES[config.model.dtype]
        if data.train.x.dtype != self.dtype:
            raise ValueError(f"data are {data.train.x.dtype}, but lambda_study.model.dtype is {config.model.dtype}")
        self._base_recipe = {"model": config.model.model_dump(), "sgd": config.sgd.model_dump(),
                             "n_train": len(data.train), "data_md5": data_md5}
        self._fingerprints: dict[str, str] = {}
        self._train64_cache: tuple[torch.Tensor, torch.Tensor] | None = None
        self.records: dict[str, dict] = {}
        self._pending: dict[str, dict] = {}  # key -> saved SGD phase of a point not yet finished
        self.position = [0] * len(self.chains)
        self.ended = [False] * len(self.chains)
        self.resumed = self._resume()

    # --- identity and resume -------------------------------------------------------------

    def is_polished(self, point: Point) -> bool:
        return point.schedule in self.config.polish.schedules

    def fingerprint(self, point: Point) -> str:
        """Hash of all that determines the point's numbers, its parent's fingerprint included."""
        if point.key not in self._fingerprints:
            parent = self.points[point.parent] if point.parent else None
            recipe = {**self._base_recipe, "key": point.key, "lambda": point.lam,
                      "parent": self.fingerprint(parent) if parent else None,
                      "start_from": self.config.polish.continue_from if parent and self.is_polished(parent) else "sgd",
                      "polish": ({"grad_tol": self.config.polish.grad_tol, "max_iter": self.config.polish.max_iter}
                                 if self.is_polished(point) else None)}
            self._fingerprints[point.key] = _digest(recipe)
        return self._fingerprints[point.key]

    def _resume(self) -> int:
        """Take every finished point from the store, chain by chain; returns how many.

        Points whose SGD phase was saved but not their final record (a study killed while
        finishing a round) are kept in ``_pending``: the next round finishes them alone.
        """
        found = 0
        for c, chain in enumerate(self.chains):
            while not self.ended[c] and self.position[c] < len(chain):
                point = chain[self.position[c]]
                record = self.store.load(point.key, self.fingerprint(point))
                if record is None:
                    phase = self.store.load(point.key, self.fingerprint(point), phase="sgd")
                    if phase is not None:
                        self._pending[point.key] = phase
                    break
                self._accept(c, record)
                found += 1
        return found

    def _accept(self, c: int, record: dict) -> None:
        self.records[record["key"]] = record
        self.position[c] += 1
        self.ended[c] = self._ends_chain(record) or self.position[c] == len(self.chains[c])

    def _collapsed(self, record: dict) -> bool:
        """An ascending point whose weights fell under collapse_ratio * ||w at the chain's start||."""
        return (record["schedule"] == "ascending" and not record["diverged"]
                and record["weight_l2"] < self.config.collapse_ratio * record["chain_start_weight_l2"])

    def _ends_chain(self, record: dict) -> bool:
        """Judged with the current params, so a changed collapse_ratio takes effect on resume."""
        return record["diverged"] or self._collapsed(record)

    # --- rounds --------------------------------------------------------------------------

    def next_round(self) -> list[Point]:
        """The points trained side by side next, at most ``stack_width``.

        The next point of every live continuation chain, plus cold starts spread evenly over
        the rounds the chains need (a round's time is mostly per-step overhead, so a few more
        models in it cost little, while a round of cold starts alone would add its own time).
        If an interrupted round left points with only their SGD phase saved, the next round
        is those points alone, so every round is the same as in an uninterrupted run (the
        stack's width changes the rounding of its matrix products).
        """
        live = [c for c in range(len(self.chains)) if not self.ended[c]]
        batch = [self.chains[c][self.position[c]] for c in live]
        if self._pending:
            return [point for point in batch if point.key in self._pending]
        chained = [p for p in batch if p.schedule != "cold"]
        cold = [p for p in batch if p.schedule == "cold"]
        rounds_left = max((len(self.chains[c]) - self.position[c] for c in live
                           if self.chains[c][0].schedule != "cold"), default=0)
        share = math.ceil(len(cold) / rounds_left) if rounds_left else len(cold)
        return (chained + cold[:share])[:self.config.stack_width]

    def run(self, on_point: Callable[[dict], None] | None = None) -> list[dict]:
        """Train every unfinished point; ``on_point`` gets each new record once it is saved."""
        while batch := self.next_round():
            for record in self.train_round(batch):
                if on_point is not None:
                    on_point(record)
        return self.results()

    def attach_run(self, key: str, run_id: str) -> None:
        """Record the id of the tracking run that logged a finished point (saved with it)."""
        self.records[key] = {**self.records[key], "mlflow_run_id": run_id}
        self.store.update(self.records[key])

    def results(self) -> list[dict]:
        """Records of the finished points, in plan order ("collapsed" judged with the current params)."""
        return [{**self.records[p.key], "collapsed": self._collapsed(self.records[p.key])}
                for chain in self.chains for p in chain if p.key in self.records]

    def train_round(self, batch: list[Point]) -> list[dict]:
        """SGD phase of the stacked batch (saved at once), then each point finished and saved."""
        phases = {point.key: self._pending.pop(point.key) for point in batch if point.key in self._pending}
        to_train = [point for point in batch if point.key not in phases]
        if to_train:
            phases.update(self._sgd_phase(to_train))
        records = []
        for point in batch:
            record = self._finish(point, phases[point.key])
            chain_index = next(c for c, chain in enumerate(self.chains) if not self.ended[c]
                               and chain[self.position[c]].key == point.key)
            self._accept(chain_index, record)
            records.append(record)
        return records

    def _sgd_phase(self, batch: list[Point]) -> dict[str, dict]:
        """Train the batch side by side; save each point's SGD checkpoint and phase record."""
        sgd = self.config.sgd
        starts = [self._start(point) for point in batch]
        net = StackedMLP.stack([net for net, _ in starts])
        lams = [point.lam for point in batch]
        monitor = EpochMonitor(self.data.train, self.cost, lams,
                               PlateauRule(sgd.patience, sgd.rel_tol, sgd.min_epochs))
        settings = SGDSettings(eta=[sgd.eta] * len(batch), lam=lams, seeds=[sgd.order_seed] * len(batch),
                               batch_size=sgd.batch_size, epochs=sgd.max_epochs, optimizer=sgd.optimizer)
        clock = time.perf_counter()
        outcome = train_sgd(net, self.data.train.x, self.data.train.y, self.cost, settings, callbacks=[monitor])
        seconds = time.perf_counter() - clock
        finals = evaluate(net, self.data, self.cost, lams)
        total_epochs = max(sum(outcome.model_epochs), 1)
        phases = {}
        for k, point in enumerate(batch):
            phase = {"key": point.key, "fingerprint": self.fingerprint(point),
                     "checkpoint": str(self.store.checkpoint_path(point.key)),
                     "epochs": outcome.model_epochs[k], "diverged": outcome.diverged[k],
                     "train_seconds": seconds * outcome.model_epochs[k] / total_epochs,
                     "chain_start_weight_l2": starts[k][1], "history": monitor.history[k],
                     **{f"sgd_{key}": value for key, value in finals[k].items()}}
            self.store.save(phase, net.model(k), phase="sgd")
            phases[point.key] = phase
        return phases

    # --- one point -------------------------------------------------------------------------

    def _start(self, point: Point) -> tuple[StackedMLP, float]:
        """Starting weights (a stack of one) and the weight norm at the chain's fresh initialisation."""
        if point.parent is None:
            net = init_stack(self.config.model.sizes, [self.config.model.init], [point.seed], self.dtype)
            return net, float(weight_penalty(net)[0].sqrt())
        net, _ = load_model(self._parent_checkpoint(point), self.dtype)
        return net, self.records[point.parent]["chain_start_weight_l2"]

    def _parent_checkpoint(self, point: Point) -> str | None:
        """The checkpoint a warm-started point starts from: the parent's SGD or polished weights."""
        if point.parent is None:
            return None
        parent = self.records[point.parent]
        use_polished = self.is_polished(self.points[point.parent]) and self.config.polish.continue_from == "polished"
        return parent["polished_checkpoint"] if use_polished else parent["checkpoint"]

    def _train64(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._train64_cache is None:
            self._train64_cache = (self.data.train.x.to(torch.float64), self.data.train.y.to(torch.float64))
        return self._train64_cache

    def _grad_norm(self, model: StackedMLP, lam: float) -> float:
        x, y = self._train64()
        _, grads = objective_and_gradient(model.to(torch.float64), x, y, self.cost, lam)
        return float(torch.sqrt(sum(g.square().sum() for g in grads)))

    def _finish(self, point: Point, phase: dict) -> dict:
        """Certificate, optional polish and chain-end test of a point after its SGD phase; saved."""
        polish_config = self.config.polish
        model, _ = load_model(phase["checkpoint"], self.dtype)
        final = {key.removeprefix("sgd_"): value for key, value in phase.items() if key.startswith("sgd_")}
        diverged = phase["diverged"] or not math.isfinite(final["objective"])
        start_norm = phase["chain_start_weight_l2"]
        parent = self.records.get(point.parent) if point.parent else None
        record = {
            "key": point.key, "schedule": point.schedule, "seed": point.seed, "grid_index": point.grid_index,
            "lambda": point.lam, "log2_lambda": math.log2(point.lam), "fingerprint": phase["fingerprint"],
            "start": "warm" if parent else "fresh", "parent": point.parent,
            "parent_checkpoint": self._parent_checkpoint(point),
            "parent_mlflow_run_id": parent.get("mlflow_run_id") if parent else None,
            "checkpoint": phase["checkpoint"], "polished_checkpoint": None,
            "epochs": phase["epochs"], "diverged": diverged, "message": "", "chain_start_weight_l2": start_norm,
            "train_seconds": phase["train_seconds"], "polish_seconds": 0.0, "polished": False,
            "polish_iterations": 0, "history": phase["history"], "execution": self.label, "mlflow_run_id": None,
            **{key: value for key, value in phase.items() if key.startswith("sgd_")},
        }
        polished_net = None
        if diverged:
            record.update(message=f"diverged: non-finite weights or objective within {phase['epochs']} epoch(s) "
                                  f"(eta*lambda/n = {self.config.sgd.eta * point.lam / len(self.data.train):.3g})",
                          sgd_grad_norm=math.nan, grad_norm=math.nan, certified=False, **final)
        else:
            record["sgd_grad_norm"] = self._grad_norm(model, point.lam)
            record.update(grad_norm=record["sgd_grad_norm"], **final)
            if self.is_polished(point):
                polished_net = self._polish(point, model, record)
            record["certified"] = bool(record["grad_norm"] <= polish_config.grad_tol)
        collapsed = self._collapsed(record)
        record["collapsed"] = collapsed
        if collapsed:
            record["message"] = (f"weights collapsed: ||w|| = {record['weight_l2']:.3g} < "
                                 f"{self.config.collapse_ratio:g} * {start_norm:.3g}; chain ends")
        self.store.save(record, polished_net=polished_net)
        return record

    def _polish(self, point: Point, model: StackedMLP, record: dict) -> StackedMLP:
        x, y = self._train64()
        clock = time.perf_counter()
        result = polish(model, x, y, self.cost, point.lam, self.config.polish.grad_tol, self.config.polish.max_iter)
        final = evaluate(result.net, self.data, self.cost, [point.lam])[0]
        record.update(final, grad_norm=result.grad_norm, polished=True, polish_iterations=result.iterations,
                      polish_seconds=time.perf_counter() - clock,
                      polished_checkpoint=str(self.store.checkpoint_path(point.key, polished=True)))
        return result.net
