"""The paired noise of a child-control gap (l2path/paired.py) against simulations with a known
correlation, and the detectable gap against a simulated test's power."""

from __future__ import annotations

import math

import numpy as np
import pytest

from l2path.paired import detectable, paired_noise


def correlated_series(rho: float, sigma: float, epochs: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Two series with per-epoch sd sigma and correlation rho: the shared mini-batch noise."""
    shared = rng.standard_normal(epochs)
    own = rng.standard_normal(epochs)
    child = 1.0 + sigma * shared
    control = 0.5 + sigma * (rho * shared + math.sqrt(1 - rho**2) * own)
    return child, control


@pytest.mark.parametrize("rho", [0.0, 0.9, 0.99])
def test_paired_sd_matches_the_known_sd_of_the_difference(rho):
    rng = np.random.default_rng(1)
    sigma, window = 0.02, 8
    estimates = [paired_noise(*correlated_series(rho, sigma, 20, rng), window) for _ in range(4000)]
    true_sd = sigma * math.sqrt(2 * (1 - rho))
    # the mean of sample variances is unbiased
    assert np.mean([e.sd_paired**2 for e in estimates]) == pytest.approx(true_sd**2, rel=0.03)
    assert np.mean([e.sd_unpaired**2 for e in estimates]) == pytest.approx(2 * sigma**2, rel=0.03)
    assert np.mean([e.correlation for e in estimates]) == pytest.approx(rho, abs=0.05)


def test_the_detectable_gap_is_detected_with_the_stated_power():
    rng = np.random.default_rng(2)
    sd, alpha, power = 0.01, 0.05, 0.8
    gap = detectable(sd, alpha, power)
    threshold = 1.6448536269514722 * sd  # z_0.05
    detected = np.mean(gap + sd * rng.standard_normal(200_000) > threshold)
    assert detected == pytest.approx(power, abs=0.005)


def test_bad_series_and_levels_are_refused():
    with pytest.raises(ValueError, match="one length"):
        paired_noise(np.zeros(5), np.zeros(4), 3)
    with pytest.raises(ValueError, match="window"):
        paired_noise(np.zeros(3), np.zeros(3), 4)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        detectable(1.0, 0.0, 0.8)
