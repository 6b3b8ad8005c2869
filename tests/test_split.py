"""Nielsen's split, checked on synthetic arrays and on the real MNIST mirror."""

from __future__ import annotations

import numpy as np
import pytest

from l2path.data.dataset import load_dataset
from l2path.data.mnist_files import fetch_mnist
from l2path.data.split import file_md5, nielsen_split, prepare_split, read_raw, write_split


def synthetic_raw(n_train=12, n_test=4):
    rng = np.random.default_rng(0)
    return {
        "train_images": rng.integers(0, 256, (n_train, 28, 28)).astype(np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28)).astype(np.uint8),
        "test_labels": (np.arange(n_test) % 10).astype(np.uint8),
    }


def test_split_is_first_train_last_validation():
    raw = synthetic_raw()
    split = nielsen_split(raw, n_validation=3)
    assert split["x_train"].shape == (9, 784) and split["x_validation"].shape == (3, 784)
    assert split["x_train"].dtype == np.float32
    assert np.array_equal(split["y_validation"], raw["train_labels"][9:])
    assert split["x_validation"][0, 29] == np.float32(raw["train_images"][9, 1, 1] / 255.0)
    assert 0.0 <= split["x_test"].min() and split["x_test"].max() <= 1.0


def test_bad_validation_size():
    with pytest.raises(ValueError, match="n_validation"):
        nielsen_split(synthetic_raw(), n_validation=12)


def test_written_split_loads_with_one_hot_and_subset(tmp_path):
    split = nielsen_split(synthetic_raw(), n_validation=3)
    write_split(split, tmp_path / "s.npz")
    data = load_dataset(tmp_path / "s.npz", n_train=5)
    assert len(data.train) == 5 and data.train.y.shape == (5, 10)
    assert data.train.y.argmax(1).tolist() == data.train.labels.tolist()
    with pytest.raises(ValueError, match="n_train"):
        load_dataset(tmp_path / "s.npz", n_train=100)


def test_md5_is_what_dvc_records(tmp_path):
    import hashlib

    (tmp_path / "f").write_bytes(b"abc" * 1000)
    assert file_md5(tmp_path / "f", chunk=7) == hashlib.md5(b"abc" * 1000).hexdigest()


@pytest.mark.integration
def test_real_mnist_split_matches_published_facts(mirror, tmp_path):
    fetch_mnist(tmp_path / "raw", [str(mirror)])
    raw = read_raw(tmp_path / "raw")
    # Facts published with the data (the MNIST distribution's own README), independent of our code.
    assert raw["train_labels"][:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert raw["test_labels"][:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(raw["train_labels"]).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    info = prepare_split(tmp_path / "raw", tmp_path / "p.npz", tmp_path / "manifest.json")
    assert info["counts"] == {"train": 50000, "validation": 10000, "test": 10000}
    assert sum(info["label_counts"]["validation"]) == 10000
    assert info["pixel_range"] == [0.0, 1.0]
    assert info["prepared_md5"] == file_md5(tmp_path / "p.npz")
