"""Nielsen's MNIST split, written as one ``.npz`` file plus a manifest.

Split (as Nielsen's ``mnist_loader``): the first 50,000 training images train, the last
10,000 validate, the 10,000 test images test. Pixels are float32 in [0, 1] (grey level /
255), images flattened to 784 in row-major order; labels are uint8 digits 0..9.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from .. import atomic
from . import idx
from .mnist_files import MNIST_SHA256

N_TRAIN_FILE, N_TEST_FILE, N_VALIDATION = 60_000, 10_000, 10_000
SPLITS = ("train", "validation", "test")


def read_raw(raw_dir: str | Path) -> dict[str, np.ndarray]:
    """The four IDX files of ``raw_dir`` as arrays, with counts checked against MNIST's."""
    raw_dir = Path(raw_dir)
    read = lambda name: (raw_dir / name).read_bytes()  # noqa: E731
    arrays = {
        "train_images": idx.parse_images(
            read("train-images-idx3-ubyte"), "train-images-idx3-ubyte"
        ),
        "train_labels": idx.parse_labels(
            read("train-labels-idx1-ubyte"), "train-labels-idx1-ubyte"
        ),
        "test_images": idx.parse_images(read("t10k-images-idx3-ubyte"), "t10k-images-idx3-ubyte"),
        "test_labels": idx.parse_labels(read("t10k-labels-idx1-ubyte"), "t10k-labels-idx1-ubyte"),
    }
    expected = {
        "train_images": N_TRAIN_FILE,
        "train_labels": N_TRAIN_FILE,
        "test_images": N_TEST_FILE,
        "test_labels": N_TEST_FILE,
    }
    for key, count in expected.items():
        if len(arrays[key]) != count:
            raise idx.IdxFormatError(f"{key}: {len(arrays[key])} items, MNIST has {count}")
    return arrays


def nielsen_split(
    raw: dict[str, np.ndarray], n_validation: int = N_VALIDATION
) -> dict[str, np.ndarray]:
    """Arrays ``x_<split>`` (count, 784) float32 in [0, 1] and ``y_<split>`` (count,) uint8."""
    if len(raw["train_images"]) != len(raw["train_labels"]) or len(raw["test_images"]) != len(
        raw["test_labels"]
    ):
        raise ValueError("image and label counts differ")
    if not 0 < n_validation < len(raw["train_images"]):
        raise ValueError(
            f"n_validation={n_validation} must be in 1..{len(raw['train_images']) - 1}"
        )
    flat = lambda images: images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)  # noqa: E731
    cut = len(raw["train_images"]) - n_validation
    return {
        "x_train": flat(raw["train_images"][:cut]),
        "y_train": raw["train_labels"][:cut].copy(),
        "x_validation": flat(raw["train_images"][cut:]),
        "y_validation": raw["train_labels"][cut:].copy(),
        "x_test": flat(raw["test_images"]),
        "y_test": raw["test_labels"].copy(),
    }


def file_md5(path: str | Path, chunk: int = 1 << 22) -> str:
    """MD5 of a file's bytes: what DVC 3 records in dvc.lock for a single-file output."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_split(split: dict[str, np.ndarray], out_path: str | Path) -> None:
    """Write the split as an uncompressed ``.npz`` atomically (fast to load, stable bytes)."""
    with atomic.atomic_path(out_path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **split)


def manifest(split: dict[str, np.ndarray], prepared_path: str | Path) -> dict:
    """Counts, label counts, pixel range and checksums describing the prepared split."""
    return {
        "counts": {s: int(len(split[f"y_{s}"])) for s in SPLITS},
        "label_counts": {s: np.bincount(split[f"y_{s}"], minlength=10).tolist() for s in SPLITS},
        "pixel_range": [
            float(min(split[f"x_{s}"].min() for s in SPLITS)),
            float(max(split[f"x_{s}"].max() for s in SPLITS)),
        ],
        "dtype": str(split["x_train"].dtype),
        "raw_sha256": dict(MNIST_SHA256),
        "prepared_md5": file_md5(prepared_path),
    }


def prepare_split(
    raw_dir: str | Path,
    prepared_path: str | Path,
    manifest_path: str | Path,
    n_validation: int = N_VALIDATION,
) -> dict:
    """Raw IDX files -> prepared ``.npz`` and manifest JSON. Returns the manifest."""
    split = nielsen_split(read_raw(raw_dir), n_validation)
    write_split(split, prepared_path)
    info = manifest(split, prepared_path)
    atomic.write_json(manifest_path, info)
    return info
