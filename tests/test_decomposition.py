"""The split of a warm step into the lambda effect and the optimisation deficit
(l2path/decomposition.py), its paired noise from the per-epoch histories, the monotonicity
table's use of that noise for ``explained``, and the figure drawing the table
(l2path/report/decomposition_figure.py). Expected numbers are computed by hand or by the
standard library in float64; the paired sd against simulations is tested in test_paired.py."""

from __future__ import annotations

import math
import statistics
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from l2path.decomposition import (
    COLUMNS,
    POWER,
    decomposition_table,
    histories,
    paired_table,
    split,
)
from l2path.monotonicity import METRICS, STEP_COLUMNS, step_table
from l2path.report.decomposition_figure import decomposition_figure, line_label
from l2path.study.records import EpochRecord
from l2path.verdicts import EVIDENCE, verdict_table

Z_05 = 1.6448536269514722  # Phi^-1(0.95)
Z_POWER = 0.8416212335729143  # Phi^-1(0.8)


def point(key, lam, mse, parent=None, control_of=None, sd=0.001):
    """A results row whose three metrics share the value ``mse`` and the noise ``sd``."""
    return {
        "key": key,
        "schedule": key.split("/")[0],
        "seed": int(key.split("/")[1].removeprefix("seed")),
        "lambda": lam,
        "parent": parent,
        "control_of": control_of,
        **{metric: mse for metric in METRICS},
        **{f"{metric}_sd": sd for metric in METRICS},
        "critical": False,
        "diverged": False,
    }


def history(values, first_epoch=1):
    """Per-epoch records whose three metrics are ``values``."""
    return [
        {"epoch": first_epoch + e, **{metric: v for metric in METRICS}}
        for e, v in enumerate(values)
    ]


# parent 0.5 at lambda 1; child 0.375 at lambda 2; control (parent continued at lambda 1) 0.25:
# change -0.125 = lambda effect +0.125 + deficit -0.25, all exact in binary
ASC = [
    point("ascending/seed0/lambda00", 1.0, 0.5),
    point("ascending/seed0/lambda01", 2.0, 0.375, "ascending/seed0/lambda00"),
]
ASC_CONTROL = point(
    "ascending/seed0/control01", 1.0, 0.25, "ascending/seed0/lambda00", "ascending/seed0/lambda01"
)
# descending: parent 0.5 at lambda 2; child 0.625 at lambda 1; control 0.75 at lambda 2
DESC = [
    point("descending/seed0/lambda01", 2.0, 0.5),
    point("descending/seed0/lambda00", 1.0, 0.625, "descending/seed0/lambda01"),
]
DESC_CONTROL = point(
    "descending/seed0/control00",
    2.0,
    0.75,
    "descending/seed0/lambda01",
    "descending/seed0/lambda00",
)


@pytest.fixture
def study():
    results = pd.DataFrame(ASC + DESC)
    controls = pd.DataFrame([ASC_CONTROL, DESC_CONTROL])
    records = {
        # child 5 epochs, control 4: epochs 2, 3, 4 are the last three both ran
        "ascending/seed0/lambda01": history([9.0, 0.40, 0.38, 0.37, 9.0]),
        "ascending/seed0/control01": history([9.0, 0.26, 0.25, 0.23]),
        # descending: the child's history is missing
        "descending/seed0/control00": history([0.7, 0.75, 0.8]),
    }
    return results, controls, records


def test_the_split_adds_up_exactly_on_hand_made_data(study):
    results, controls, records = study
    table = decomposition_table(results, controls, paired_table(controls, records, 3, 0.05), 0.05)
    assert list(table.columns) == COLUMNS
    asc, desc = table.iloc[0], table.iloc[1]
    assert (asc["schedule"], asc["lambda_from"], asc["lambda_to"]) == ("ascending", 1.0, 2.0)
    assert (asc["change"], asc["lambda_effect"], asc["optimisation_deficit"]) == (
        -0.125,
        0.125,
        -0.25,
    )
    assert (desc["change"], desc["lambda_effect"], desc["optimisation_deficit"]) == (
        0.125,
        -0.125,
        0.25,
    )
    assert (table["lambda_effect"] + table["optimisation_deficit"] == table["change"]).all()
    assert list(table["lemma_sign"]) == [1, -1]
    # deficit: parent and control are not paired; sqrt(0.001^2 + 0.001^2)
    assert list(table["deficit_sd"]) == pytest.approx([math.sqrt(2e-6)] * 2)
    assert list(table["sd_unpaired"]) == pytest.approx([math.sqrt(2e-6)] * 2)


def test_the_split_of_any_three_values_adds_up_to_rounding():
    rng = np.random.default_rng(3)
    for parent, control, child in rng.uniform(0.0, 0.2, size=(1000, 3)):
        change, effect, deficit = split(parent, control, child)
        assert change == child - parent
        assert abs(effect + deficit - change) <= 2 * np.finfo(float).eps * (
            abs(effect) + abs(deficit)
        )


def test_the_paired_noise_pairs_the_last_common_epochs(study):
    _, controls, records = study
    paired = paired_table(controls, records, 3, 0.05)
    assert list(paired["metric"]) == list(METRICS) * 2
    asc = paired[
        (paired["control_of"] == "ascending/seed0/lambda01") & (paired["metric"] == "train_mse")
    ].iloc[0]
    child, control = [0.40, 0.38, 0.37], [0.26, 0.25, 0.23]  # epochs 2, 3, 4
    sd = statistics.stdev([x - y for x, y in zip(child, control)])
    assert asc["sd_paired"] == pytest.approx(sd, rel=1e-12)
    assert asc["sd_unpaired"] == pytest.approx(
        math.hypot(statistics.stdev(child), statistics.stdev(control)), rel=1e-12
    )
    assert asc["correlation"] == pytest.approx(statistics.correlation(child, control), rel=1e-12)
    assert asc["paired_epochs"] == 3
    assert asc["detectable"] == pytest.approx((Z_05 + Z_POWER) * sd, rel=1e-9)
    assert POWER == 0.8
    desc = paired[paired["control_of"] == "descending/seed0/lambda00"]
    assert desc["sd_paired"].isna().all() and (desc["paired_epochs"] == 0).all()


def test_a_short_overlap_uses_the_epochs_there_are_and_one_epoch_gives_nan():
    controls = pd.DataFrame([{"key": "c", "control_of": "x"}])
    two = paired_table(
        controls, {"x": history([1.0, 2.0]), "c": history([0.5, 0.75, 9.0])}, 3, 0.05
    )
    assert list(two["paired_epochs"]) == [2] * 3
    assert two["sd_paired"].iloc[0] == pytest.approx(statistics.stdev([0.5, 1.25]))
    one = paired_table(controls, {"x": history([1.0]), "c": history([0.5, 0.7])}, 3, 0.05)
    assert one["sd_paired"].isna().all() and (one["paired_epochs"] == 1).all()
    assert paired_table(None, {}, 3, 0.05).empty


def test_histories_are_read_from_the_records():
    record = SimpleNamespace(
        key="k",
        history=(EpochRecord(1, 0.3, 0.2, 0.2, 0.9, 5.0), EpochRecord(2, 0.2, 0.1, 0.1, 0.95, 4.0)),
    )
    assert histories([record]) == {
        "k": [
            {
                "epoch": 1,
                "objective": 0.3,
                "data_loss": 0.2,
                "train_mse": 0.2,
                "train_accuracy": 0.9,
                "weight_l2": 5.0,
            },
            {
                "epoch": 2,
                "objective": 0.2,
                "data_loss": 0.1,
                "train_mse": 0.1,
                "train_accuracy": 0.95,
                "weight_l2": 4.0,
            },
        ]
    }


@pytest.fixture
def close_gap():
    """Ascending 0.100 -> 0.079 with the control at 0.080: the child is 0.001 below the control.
    Unpaired sd sqrt(2) * 0.001: -z * sd = -0.00233, the gap is within it (explained). The two
    histories move together (differences -0.001, -0.001, -0.0008: paired sd 0.000115), so
    -z * sd_paired = -0.00019 and the gap is beyond it (not explained)."""
    results = pd.DataFrame(
        [
            point("ascending/seed0/lambda00", 1.0, 0.100),
            point("ascending/seed0/lambda01", 2.0, 0.079, "ascending/seed0/lambda00"),
        ]
    )
    control = point(
        "ascending/seed0/control01",
        1.0,
        0.080,
        "ascending/seed0/lambda00",
        "ascending/seed0/lambda01",
    )
    records = {
        "ascending/seed0/lambda01": history([0.0800, 0.0785, 0.0792]),
        "ascending/seed0/control01": history([0.0810, 0.0795, 0.0800]),
    }
    return results, pd.DataFrame([control]), records


def test_explained_is_judged_against_the_paired_sd(close_gap):
    results, controls, records = close_gap
    paired = paired_table(controls, records, 3, 0.05)
    unpaired = step_table(results, 0.05, controls)
    steps = step_table(results, 0.05, controls, paired)
    assert list(steps.columns) == STEP_COLUMNS
    for table in (unpaired, steps):
        mse = table[table["metric"] == "train_mse"].iloc[0]
        assert mse["decrease"] and mse["control_gap"] == pytest.approx(-0.001)
        assert mse["control_gap_sd"] == pytest.approx(math.sqrt(2e-6))
    before = unpaired[unpaired["metric"] == "train_mse"].iloc[0]
    after = steps[steps["metric"] == "train_mse"].iloc[0]
    sd = statistics.stdev([-0.001, -0.001, -0.0008])
    assert math.isnan(before["control_gap_sd_paired"]) and before["explained"]  # unpaired rule
    assert after["control_gap_sd_paired"] == pytest.approx(sd, rel=1e-9)
    assert after["control_gap_detectable"] == pytest.approx((Z_05 + Z_POWER) * sd, rel=1e-9)
    assert after["control_gap_correlation"] == pytest.approx(
        statistics.correlation([0.0800, 0.0785, 0.0792], [0.0810, 0.0795, 0.0800]), rel=1e-9
    )
    assert not after["explained"]  # -0.001 < -z * 0.000115
    verdicts = verdict_table(steps)
    assert list(verdicts.columns) == EVIDENCE + ["verdict"]
    assert verdicts["verdict"].iloc[0] != "continued optimisation"


def test_a_noisy_pair_explains_what_the_unpaired_test_would_not():
    """The reverse: a gap of -0.003 is beyond the unpaired -z * sqrt(2) * 0.001 = -0.00233 but
    within the paired noise of two histories that move against each other."""
    results = pd.DataFrame(
        [
            point("ascending/seed0/lambda00", 1.0, 0.100),
            point("ascending/seed0/lambda01", 2.0, 0.077, "ascending/seed0/lambda00"),
        ]
    )
    controls = pd.DataFrame(
        [point("ascending/seed0/control01", 1.0, 0.080, None, "ascending/seed0/lambda01")]
    )
    records = {
        "ascending/seed0/lambda01": history([0.079, 0.077, 0.079]),
        "ascending/seed0/control01": history([0.078, 0.081, 0.078]),
    }
    unpaired = step_table(results, 0.05, controls)
    steps = step_table(results, 0.05, controls, paired_table(controls, records, 3, 0.05))
    assert not unpaired[unpaired["metric"] == "train_mse"]["explained"].iloc[0]
    mse = steps[steps["metric"] == "train_mse"].iloc[0]
    assert mse["control_gap_correlation"] < 0
    assert mse["control_gap"] >= -Z_05 * mse["control_gap_sd_paired"] and mse["explained"]


def test_the_figure_draws_the_tables_columns(study):
    results, controls, records = study
    records = {**records, "descending/seed0/lambda00": history([0.6, 0.65, 0.7])}
    table = decomposition_table(results, controls, paired_table(controls, records, 3, 0.05), 0.05)
    figure = decomposition_figure(table, 0.05)
    axes = [ax for ax in figure.axes if ax.get_visible()]
    assert len(axes) == 2  # ascending, descending
    for ax, name in zip(axes, ["ascending", "descending"]):
        part = table[table["schedule"] == name]
        assert ax.get_xscale() == "log"
        containers = {c.get_label(): c for c in ax.containers}
        for term, sd in (("lambda_effect", "sd_paired"), ("optimisation_deficit", "deficit_sd")):
            container = containers[line_label(term, 0)]
            line = container.lines[0]
            assert list(line.get_xdata()) == list(part["lambda_to"])
            assert list(line.get_ydata()) == list(part[term])
            (bars,) = container.lines[2]
            half = [(seg[1][1] - seg[0][1]) / 2 for seg in bars.get_segments()]
            assert half == pytest.approx(list(Z_05 * part[sd]), rel=1e-9)


def test_without_controls_the_tables_are_empty_and_the_figure_says_so():
    results = pd.DataFrame(ASC)
    paired = paired_table(None, {}, 3, 0.05)
    assert decomposition_table(results, None, paired, 0.05).empty
    steps = step_table(results, 0.05, None, paired)
    assert steps[["control_gap_sd_paired", "control_gap_detectable"]].isna().all().all()
    figure = decomposition_figure(pd.DataFrame(columns=COLUMNS), 0.05)
    assert figure.axes[0].get_title() == "no warm step with a control"
