import pytest
import torch

from l2path.grid import lambda_grid
from l2path.plateau import PlateauStop


def test_factor_two_grid_from_two_to_the_minus_eight():
    grid = lambda_grid(2.0 ** -8, 2.0, 2.0 ** 4)
    assert grid == [2.0 ** e for e in range(-8, 5)]
    assert lambda_grid(1.0, 10.0, 999.0) == [1.0, 10.0, 100.0]


@pytest.mark.parametrize("args, message", [((0.0, 2.0, 1.0), "lambda_start"), ((1.0, 1.0, 4.0), "factor"),
                                           ((1.0, 2.0, 0.5), "lambda_max")])
def test_bad_grid(args, message):
    with pytest.raises(ValueError, match=message):
        lambda_grid(*args)


class FakeNet:
    n_models = 2


def test_plateau_stops_each_model_on_its_own_curve():
    # model 0 keeps improving by 10% per epoch; model 1 flattens after epoch 3
    curves = [[1.0, 0.9, 0.81, 0.729, 0.656, 0.59], [1.0, 0.5, 0.4, 0.3999, 0.3998, 0.3998]]
    epoch_index = {"e": 0}
    def objective(net):
        return torch.tensor([curve[epoch_index["e"]] for curve in curves])
    rule = PlateauStop(objective, patience=2, rel_tol=1e-3, min_epochs=2)
    answers = []
    for epoch in range(1, 7):
        epoch_index["e"] = epoch - 1
        answers.append(rule(epoch, FakeNet()))
    assert [a[0] for a in answers] == [False] * 6
    # epoch 5: J_3 - J_5 = 0.4 - 0.3998 = 2e-4 <= 1e-3 * 0.4
    assert [a[1] for a in answers] == [False, False, False, False, True, True]
