import pytest

from l2path.study.grid import lambda_grid
from l2path.train.plateau import PlateauRule


def test_factor_two_grid_from_two_to_the_minus_eight():
    grid = lambda_grid(2.0**-8, 2.0, 2.0**4)
    assert grid == [2.0**e for e in range(-8, 5)]
    assert lambda_grid(1.0, 10.0, 999.0) == [1.0, 10.0, 100.0]


@pytest.mark.parametrize(
    "args, message",
    [
        ((0.0, 2.0, 1.0), "lambda_start"),
        ((1.0, 1.0, 4.0), "factor"),
        ((1.0, 2.0, 0.5), "lambda_max"),
    ],
)
def test_bad_grid(args, message):
    with pytest.raises(ValueError, match=message):
        lambda_grid(*args)


def test_plateau_rule_on_two_curves():
    rule = PlateauRule(patience=2, rel_tol=1e-3, min_epochs=2)
    improving = [1.0, 0.9, 0.81, 0.729, 0.656, 0.59]  # 10% per epoch: never a plateau
    flattening = [1.0, 0.5, 0.4, 0.3999, 0.3998, 0.3998]
    assert [rule.has_plateaued(improving[:e]) for e in range(1, 7)] == [False] * 6
    # epoch 5: J_3 - J_5 = 0.4 - 0.3998 = 2e-4 <= 1e-3 * 0.4; epoch 4: 0.5 - 0.3999 > 4e-4
    assert [rule.has_plateaued(flattening[:e]) for e in range(1, 7)] == [
        False,
        False,
        False,
        False,
        True,
        True,
    ]


def test_plateau_rule_counts_a_rise_as_plateau_but_not_before_min_epochs():
    assert PlateauRule(patience=1, rel_tol=0.0, min_epochs=1).has_plateaued([1.0, 1.2])
    assert not PlateauRule(patience=1, rel_tol=0.0, min_epochs=3).has_plateaued([1.0, 1.2])
    with pytest.raises(ValueError):
        PlateauRule(patience=0, rel_tol=1e-3, min_epochs=1)


def test_smoothed_rule_ignores_single_epoch_rises():
    """J oscillates +-0.025 around its floor from epoch 4: the plain rule stops on the first
    rise (epoch 3), the running mean of 2 epochs only once it is flat (hand-computed means
    from epoch 2: 0.9, 0.825, 0.725, 0.625, 0.625, 0.625, ...)."""
    objectives = [1.0, 0.8, 0.85, 0.6, 0.65, 0.6, 0.65, 0.6, 0.65]
    plain = PlateauRule(patience=1, rel_tol=1e-3, min_epochs=1)
    smoothed = PlateauRule(patience=2, rel_tol=1e-3, min_epochs=1, window=2)
    first_stop = lambda rule: next(e for e in range(1, 10) if rule.has_plateaued(objectives[:e]))  # noqa: E731
    assert first_stop(plain) == 3
    assert first_stop(smoothed) == 7
    assert list(smoothed.smoothed(objectives[:5])) == pytest.approx([0.9, 0.825, 0.725, 0.625])
