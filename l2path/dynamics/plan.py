"""Which models the dynamics stage trains, and for how many epochs.

A model is (init, seed, eta, lambda, cost). The question's setting trains ``epochs`` epochs
(its lambda = 0 control only ``question_epochs``: it answers the question at that epoch); the
book's setting and the sweep add their (eta, lambda) pairs for every initialiser. A model
named by two settings is trained once, for the longer of their runs. With ``other_cost`` the
question's decayed models are trained again with that cost for ``question_epochs`` epochs
(the causal test of the mechanism). The models of one seed share its mini-batch order.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Model:
    init: str
    seed: int
    eta: float
    lam: float
    cost: str = ""  # "": the stage's cost (dynamics.model.cost); else the comparison cost


def cost_name(model: Model, config) -> str:
    """The cost a model trains with (``config``: the ``dynamics`` section)."""
    return model.cost or config.model.cost


def model_epochs(config) -> dict[Model, int]:
    """Every model of the ``dynamics`` params section with its number of epochs, in a fixed
    order."""
    epochs: dict[Model, int] = {}

    def add(eta: float, lambdas: list[float], seeds: list[int], run: int, control_run: int) -> None:
        for seed in seeds:
            for init in config.inits:
                for lam in lambdas:
                    model = Model(init, seed, eta, lam)
                    epochs[model] = max(epochs.get(model, 0), control_run if lam == 0 else run)

    add(config.eta, config.lambdas, config.seeds, config.epochs, config.question_epochs)
    if config.other_cost is not None:
        for seed in config.seeds:
            for init in config.inits:
                for lam in (lam for lam in config.lambdas if lam > 0):
                    epochs[Model(init, seed, config.eta, lam, config.other_cost)] = (
                        config.question_epochs
                    )
    for setting in (config.book, config.sweep):
        if setting is not None:
            add(
                setting.eta,
                setting.lambdas,
                setting.seeds or config.seeds,
                setting.epochs,
                setting.epochs,
            )
    return epochs


def stacks(epochs: dict[Model, int]) -> dict[int, list[Model]]:
    """The models of each seed (one stack: they share the seed's mini-batch order)."""
    by_seed: dict[int, list[Model]] = {}
    for model in epochs:
        by_seed.setdefault(model.seed, []).append(model)
    return by_seed
