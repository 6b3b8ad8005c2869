"""Reading the IDX format of the MNIST files.

IDX layout (big-endian): two zero bytes, a type code (0x08 = unsigned byte), the number
of dimensions d, then d 32-bit sizes, then the data in C order. MNIST uses magic 2049
(labels, d = 1) and 2051 (images, d = 3, 28 x 28).
"""

from __future__ import annotations

import numpy as np

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
_UBYTE = 0x08


class IdxFormatError(ValueError):
    """The bytes are not a valid IDX file of the expected kind."""


def parse_idx(raw: bytes, *, expected_magic: int, name: str = "IDX file") -> np.ndarray:
    """Parse the bytes of an uncompressed unsigned-byte IDX file into a uint8 array.

    Checks the magic number, that the header is complete, and that the payload length
    equals the product of the declared dimensions (a truncated or padded file is an
    error, never a silently short array).
    """
    if len(raw) < 4:
        raise IdxFormatError(f"{name}: {len(raw)} bytes is too short for an IDX header")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise IdxFormatError(f"{name}: magic number {magic}, expected {expected_magic}")
    if raw[2] != _UBYTE:
        raise IdxFormatError(f"{name}: element type 0x{raw[2]:02x}, expected unsigned byte 0x08")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IdxFormatError(f"{name}: truncated header ({len(raw)} bytes, need {header})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64))
    payload = len(raw) - header
    if payload != expected:
        raise IdxFormatError(
            f"{name}: payload has {payload} bytes but dimensions {shape} need {expected}"
            + (" (file truncated)" if payload < expected else " (trailing bytes)")
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def parse_images(raw: bytes, name: str = "images") -> np.ndarray:
    """Images as uint8 of shape (count, 28, 28)."""
    images = parse_idx(raw, expected_magic=IMAGES_MAGIC, name=name)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise IdxFormatError(f"{name}: image shape {images.shape[1:]}, expected (28, 28)")
    return images


def parse_labels(raw: bytes, name: str = "labels") -> np.ndarray:
    """Labels as uint8 of shape (count,), each in 0..9."""
    labels = parse_idx(raw, expected_magic=LABELS_MAGIC, name=name)
    if labels.ndim != 1:
        raise IdxFormatError(f"{name}: {labels.ndim} dimensions, expected 1")
    if labels.size and labels.max() > 9:
        raise IdxFormatError(f"{name}: label {int(labels.max())} outside 0..9")
    return labels
