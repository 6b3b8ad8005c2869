"""The study's typed records survive the round trips every reader relies on: the results CSV
and the point store's JSON give back the same PointRecord, field for field."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from l2path.study.records import RUN_FIELDS, PointRecord
from l2path.study.results import FIRST_COLUMNS, read_results, write_results
from l2path.study.store import PointStore

from study_setup import run_small, small_config


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """A small study with a polished schedule and a diverged chain: every kind of field value."""
    config = small_config(
        **{
            "chain_seeds": [0],
            "cold_seeds": [0],
            "sgd.eta": 100.0,
            "sgd.batch_size": 1,
            "model.dtype": "float32",
            "collapse_ratio": 1e-12,
        }
    )
    return run_small(tmp_path_factory.mktemp("points"), config).results()


def same(a: PointRecord, b: PointRecord, run_fields: bool = True) -> bool:
    """Field for field, NaN equal to NaN (a diverged point's gradient norm); the run fields
    (execution, run ids, wall times) left out unless ``run_fields``."""
    for name, value in (a.to_row() if run_fields else a.content_row()).items():
        other = b.to_row()[name]
        if isinstance(value, float) and math.isnan(value):
            if not (isinstance(other, float) and math.isnan(other)):
                return False
        elif value != other or type(value) is not type(other):
            return False
    return True


def test_fixture_has_every_kind_of_point(records):
    assert any(r.polished and r.polished_checkpoint for r in records)
    assert any(r.diverged and math.isnan(r.grad_norm) for r in records)
    assert any(r.parent is None for r in records) and any(r.parent for r in records)


def test_results_csv_round_trip(records, tmp_path):
    path = tmp_path / "study.csv"
    frame = write_results(path, records)
    assert list(frame.columns[: len(FIRST_COLUMNS)]) == list(FIRST_COLUMNS)
    assert set(pd.read_csv(path).columns) == set(records[0].to_row()) - set(RUN_FIELDS)
    back = read_results(path)
    assert [r.key for r in back] == [r.key for r in records]
    assert all(same(a, b, run_fields=False) for a, b in zip(records, back))
    assert all(
        b.execution == "" and b.mlflow_run_id is None and math.isnan(b.train_seconds) for b in back
    )
    assert all(b.history == () for b in back)  # the table has no per-epoch history


def test_store_json_round_trip_keeps_the_history(records):
    for record in records:
        back = PointRecord.from_json(json.loads(json.dumps(record.to_json())))
        assert same(record, back) and back.history == record.history
        assert (
            len(back.history) == record.epochs or record.diverged
        )  # a diverged epoch is not recorded


def test_the_store_keeps_run_fields_apart_from_what_dvc_tracks(records, tmp_path):
    """Two runs that differ only in run fields write the same tracked bytes; the run fields
    come back from the untracked run files, and without them the point still loads."""
    first, second = (
        PointStore(tmp_path / "a", tmp_path / "a.runs"),
        PointStore(tmp_path / "b", tmp_path / "b.runs"),
    )
    record = records[0].replace(checkpoint=str(tmp_path / "weights.pt"))
    (tmp_path / "weights.pt").write_bytes(b"")
    first.save(record.replace(execution="one", mlflow_run_id="run-1", train_seconds=1.5))
    second.save(record.replace(execution="two", mlflow_run_id="run-2", train_seconds=9.0))
    assert first.record_path(record.key).read_bytes() == second.record_path(record.key).read_bytes()
    back = first.load(record.key, record.fingerprint)
    assert (back.execution, back.mlflow_run_id, back.train_seconds) == ("one", "run-1", 1.5)
    assert first.run_ids() == {record.key: "run-1"}
    first.run_path(record.key).unlink()  # outputs pulled into another clone: not logged there yet
    assert first.load(record.key, record.fingerprint).mlflow_run_id is None


def test_layer_statistics_keep_their_order(records):
    record = records[0]
    assert len(record.final.layers) == len(small_config().model.sizes) - 1
    row = record.to_row()
    assert row["layer2_weight_rms"] == record.final.layers[1]["rms"]
    assert row["sgd_layer1_weight_l2"] == record.sgd.layers[0]["l2"]


def test_a_malformed_row_is_refused(records):
    row = {key: str(value) for key, value in records[0].to_row().items()}
    row["critical"] = "maybe"
    with pytest.raises(ValueError, match="not a boolean"):
        PointRecord.from_row(row)
