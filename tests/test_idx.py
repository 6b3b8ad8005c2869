import numpy as np
import pytest

from l2path.data.idx import IdxFormatError, parse_images, parse_labels

from idx_files import idx_bytes


def test_round_trip_images_and_labels():
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28)).astype(np.uint8)
    labels = np.array([5, 0, 4, 1, 9], dtype=np.uint8)
    assert np.array_equal(parse_images(idx_bytes(images)), images)
    assert np.array_equal(parse_labels(idx_bytes(labels)), labels)


def test_truncated_file_is_an_error():
    raw = idx_bytes(np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(IdxFormatError, match="truncated"):
        parse_images(raw[:-10], "train-images")


def test_trailing_bytes_are_an_error():
    with pytest.raises(IdxFormatError, match="trailing"):
        parse_labels(idx_bytes(np.zeros(4, np.uint8)) + b"\x00")


def test_wrong_magic_names_the_file():
    with pytest.raises(IdxFormatError, match="t10k-labels: magic number 2049, expected 2051"):
        parse_images(idx_bytes(np.zeros(4, np.uint8)), "t10k-labels")


def test_wrong_image_shape_and_bad_labels():
    with pytest.raises(IdxFormatError, match=r"\(28, 28\)"):
        parse_images(idx_bytes(np.zeros((2, 27, 28), np.uint8)))
    with pytest.raises(IdxFormatError, match="outside 0..9"):
        parse_labels(idx_bytes(np.array([1, 12], np.uint8)))


def test_header_too_short():
    with pytest.raises(IdxFormatError, match="too short"):
        parse_labels(b"\x00\x00")
    with pytest.raises(IdxFormatError, match="truncated header"):
        parse_images(bytes([0, 0, 8, 3, 0, 0]))
