"""The decomposition's power statement: counts of ``power_ok`` per schedule and the ascending
falls the paired test could not see, from hand-made rows."""

from __future__ import annotations

import pandas as pd

from l2path.report.power_sentence import power_sentence


def rows(power_ok: list[bool]) -> pd.DataFrame:
    """Three ascending steps (two falls), one descending step, one data-loss row that must not
    count."""
    return pd.DataFrame(
        {
            "schedule": ["ascending", "ascending", "ascending", "descending", "ascending"],
            "seed": [0, 0, 1, 0, 0],
            "metric": ["train_mse"] * 4 + ["data_loss"],
            "lambda_from": [0.5, 1.0, 2.0, 8.0, 0.5],
            "lambda_to": [1.0, 2.0, 4.0, 4.0, 1.0],
            "change": [-0.006, 0.001, -0.0002, 0.002, -0.9],
            "power_ok": power_ok,
        }
    )


def test_power_sentence_counts_per_schedule_and_names_the_blind_falls():
    sentence = power_sentence(rows([True, False, False, True, False]), 0.05)
    assert "α = 0.05, power 0.8" in sentence
    assert "at 1 of 3 ascending steps, 1 of 1 descending steps" in sentence
    assert "could not at 1 of the 2 ascending falls (2 → 4 (seed 1))" in sentence


def test_power_sentence_when_every_fall_is_seen_and_when_nothing_to_say():
    sentence = power_sentence(rows([True, True, True, False, False]), 0.05)
    assert "at 3 of 3 ascending steps, 0 of 1 descending steps" in sentence
    assert sentence.endswith("; at every one of the 2 ascending falls it could.")
    assert power_sentence(None, 0.05) is None
    assert power_sentence(rows([True] * 5).iloc[:0], 0.05) is None
    assert power_sentence(rows([True] * 5), None) is None
