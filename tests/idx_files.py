"""Helpers that write IDX files by hand (the format from its spec, not from l2path)."""

from __future__ import annotations

import struct

import numpy as np


def idx_bytes(array: np.ndarray) -> bytes:
    """Big-endian IDX: 0, 0, type 0x08, ndim, then the sizes as uint32, then the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()
