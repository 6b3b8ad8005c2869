import numpy as np
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


def test_noise_tolerance_is_the_sd_of_the_running_mean_difference():
    """On independent N(0, s^2) epochs the rule's noise term (noise_sds = 1) equals, in
    expectation of s_e, the sd of Jbar_{e-p} - Jbar_e; checked by simulation for p < w, p = w
    and p > w against the closed form s * sqrt(2 min(p, w)) / w."""
    rng = np.random.default_rng(0)
    s = 0.3
    for patience, window in [(1, 3), (2, 3), (3, 3), (4, 2)]:
        draws = rng.normal(0.0, s, size=(200_000, window + patience))
        before = draws[:, :window].mean(axis=1)
        now = draws[:, -window:].mean(axis=1)
        closed_form = s * np.sqrt(2 * min(patience, window)) / window
        assert np.std(before - now) == pytest.approx(closed_form, rel=0.01)
        rule = PlateauRule(patience, 0.0, 1, window, noise_sds=1.0)
        # the last w epochs c * (-1, 1, 0, ...) have sample sd c * sqrt(2 / (w - 1)) = s
        c = s * np.sqrt((window - 1) / 2)
        objectives = [0.0] * patience + [-c, c] + [0.0] * (window - 2)
        assert np.std(objectives[-window:], ddof=1) == pytest.approx(s)
        assert rule.noise_tolerance(objectives) == pytest.approx(closed_form)


def test_noise_scaled_rule_stops_on_jitter_but_not_on_a_trend():
    """Hand-computed, w = 3, p = 2: running means 0.5533, 0.5, 0.5033, 0.49, so the improvement
    over p is 0.5 - 0.49 = 0.01, twenty times rel_tol * |J|; the last three J = 0.44, 0.54, 0.49
    have sd 0.05, so the noise term is 0.05 * sqrt(4) / 3 = 0.0333 >= 0.01: stop. A steady 1 %
    decline never stops."""
    jitter = [0.6, 0.53, 0.53, 0.44, 0.54, 0.49]
    means = PlateauRule(2, 1e-3, 1, 3).smoothed(jitter)
    assert list(means) == pytest.approx([1.66 / 3, 0.5, 1.51 / 3, 0.49])
    assert not PlateauRule(2, 1e-3, 1, 3, noise_sds=0.0).has_plateaued(jitter)
    assert PlateauRule(2, 1e-3, 1, 3, noise_sds=1.0).has_plateaued(jitter)
    assert PlateauRule(2, 1e-3, 1, 3, noise_sds=1.0).noise_tolerance(jitter) == pytest.approx(
        0.05 * 2 / 3
    )
    decline = [0.99**e for e in range(40)]
    rule = PlateauRule(2, 1e-3, 1, 3, noise_sds=1.0)
    assert not any(rule.has_plateaued(decline[:e]) for e in range(1, 41))
    with pytest.raises(ValueError, match="noise_sds"):
        PlateauRule(2, 1e-3, 1, 3, noise_sds=-1.0)
