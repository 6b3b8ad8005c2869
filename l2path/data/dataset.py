"""The prepared MNIST split as torch tensors, ready for training and evaluation."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


@dataclass(frozen=True)
class Split:
    """One split: inputs ``x`` (count, 784), one-hot targets ``y`` (count, 10), digits
    ``labels``."""

    x: torch.Tensor
    y: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Dataset:
    train: Split
    validation: Split
    test: Split


def one_hot(labels: np.ndarray, dtype: torch.dtype, classes: int = 10) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.as_tensor(labels, dtype=torch.long), classes).to(dtype)


def make_split(x: np.ndarray, labels: np.ndarray, dtype: torch.dtype) -> Split:
    return Split(
        torch.as_tensor(np.ascontiguousarray(x)).to(dtype),
        one_hot(labels, dtype),
        torch.as_tensor(labels, dtype=torch.long),
    )


class CorruptDataError(ValueError):
    """The prepared data file cannot be read (truncated, corrupted, not an .npz)."""


def _read_arrays(path: str | Path, names: list[str]) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as arrays:
            return {name: arrays[name] for name in names}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise CorruptDataError(
            f"{path} is not a readable prepared split ({type(exc).__name__}: {exc}); "
            "rebuild it with `dvc repro prepare` (or restore it with `dvc checkout`)"
        ) from None


def _subset_size(available: int, n_train: int | None) -> int:
    n = available if n_train is None else n_train
    if not 0 < n <= available:
        raise ValueError(f"n_train={n_train} must be in 1..{available}")
    return n


def train_count(path: str | Path, n_train: int | None = None) -> int:
    """How many training images ``load_dataset(path, n_train=n_train)`` keeps (reads the labels
    only)."""
    return _subset_size(len(_read_arrays(path, ["y_train"])["y_train"]), n_train)


def load_dataset(
    path: str | Path, dtype: torch.dtype = torch.float32, n_train: int | None = None
) -> Dataset:
    """Load the prepared ``.npz``; ``n_train`` keeps the first n training samples (a documented
    subset).

    A truncated or corrupted file fails here with a CorruptDataError naming it.
    """
    arrays = _read_arrays(
        path, [f"{xy}_{name}" for name in ("train", "validation", "test") for xy in "xy"]
    )
    n = _subset_size(len(arrays["y_train"]), n_train)
    return Dataset(
        train=make_split(arrays["x_train"][:n], arrays["y_train"][:n], dtype),
        validation=make_split(arrays["x_validation"], arrays["y_validation"], dtype),
        test=make_split(arrays["x_test"], arrays["y_test"], dtype),
    )
