"""Checkpoints: one model's weights and biases in a torch file, written atomically.

Format: ``{"sizes": [...], "weights": [(n_out, n_in) tensors], "biases": [(n_out,)
tensors], "meta": {...}}``, loadable with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from .. import atomic
from .network import StackedMLP


def save_model(net: StackedMLP, k: int, path: str | Path, meta: dict | None = None) -> None:
    """Save model k of the stack to ``path``."""
    payload = {
        "sizes": net.sizes,
        "weights": [w[k].detach().clone() for w in net.weights],
        "biases": [b[k].detach().clone() for b in net.biases],
        "meta": dict(meta or {}),
    }
    # Serialised in memory first: torch.save reports a failed file write (a full disk) as
    # a bare RuntimeError, while a plain write raises the OSError that names the problem.
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic.write_bytes(path, buffer.getvalue())


def load_model(path: str | Path, dtype: torch.dtype | None = None) -> tuple[StackedMLP, dict]:
    """A stack of one model and the checkpoint's metadata."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    net = StackedMLP(
        [w.unsqueeze(0) for w in payload["weights"]], [b.unsqueeze(0) for b in payload["biases"]]
    )
    if dtype is not None:
        net = net.to(dtype)
    return net, payload["meta"]
