"""The IDX reader, on files the tests write byte by byte from the format's description."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xbarlab.nn.idx import IdxError, load_idx_images, load_idx_split, read_idx

TYPE_CODES = {"u1": 0x08, "i1": 0x09, ">i2": 0x0B, ">i4": 0x0C, ">f4": 0x0D, ">f8": 0x0E}


def idx_bytes(array: np.ndarray, dtype: str) -> bytes:
    """The IDX encoding of `array`: 0, 0, type, ndim, big-endian uint32 dims, big-endian data."""
    header = bytes([0, 0, TYPE_CODES[dtype], array.ndim])
    dims = b"".join(struct.pack(">I", d) for d in array.shape)
    return header + dims + np.asarray(array).astype(dtype).tobytes()


@settings(max_examples=40, deadline=None)
@given(dtype=st.sampled_from(sorted(TYPE_CODES)),
       shape=st.lists(st.integers(0, 4), min_size=1, max_size=3),
       compress=st.booleans(), seed=st.integers(0, 2**16))
def test_any_idx_file_reads_back_to_the_array_written(tmp_path_factory, dtype, shape, compress,
                                                      seed):
    rng = np.random.default_rng(seed)
    values = rng.integers(-100, 100, size=shape) if dtype != "u1" else rng.integers(
        0, 256, size=shape)
    if dtype in (">f4", ">f8"):
        values = values * 0.37
    expected = values.astype(dtype)
    data = idx_bytes(values, dtype)
    path = tmp_path_factory.mktemp("idx") / "file.idx"
    path.write_bytes(gzip.compress(data) if compress else data)
    got = read_idx(path)
    assert got.shape == tuple(shape) and got.dtype == expected.dtype.newbyteorder("=")
    assert np.array_equal(got, expected)


def write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("data, message", [
    (b"\x00\x00", "too short for an IDX header"),
    (b"\x01\x00\x08\x01", "not an IDX file .first two bytes 0100"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", "element type 0x07 is not an IDX type"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x01", "declares 2 dimensions but the file ends"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x03\x01\x02", "truncated: shape \\(3,\\) of uint8 needs 3"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x01\x01\x02", "has trailing bytes"),
    (b"\x1f\x8b\x08\x00garbage", "gzip data is corrupt or truncated"),
])
def test_a_defective_file_is_refused_naming_the_file_and_the_defect(tmp_path, data, message):
    path = write(tmp_path / "bad.idx", data)
    with pytest.raises(IdxError, match=message) as error:
        read_idx(path)
    assert str(path) in str(error.value)


def test_a_missing_file_is_an_idx_error(tmp_path):
    with pytest.raises(IdxError, match="cannot read"):
        read_idx(tmp_path / "none.idx")


def test_mnist_style_images_and_labels_load_scaled_and_split(tmp_path):
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, size=(40, 3, 2), dtype=np.uint8)
    labels = np.repeat(np.arange(4, dtype=np.uint8), 10)
    ipath = write(tmp_path / "images.idx.gz", gzip.compress(idx_bytes(images, "u1")))
    lpath = write(tmp_path / "labels.idx", idx_bytes(labels, "u1"))
    x, y = load_idx_images(ipath, lpath)
    assert x.shape == (40, 6) and np.array_equal(x * 255, images.reshape(40, 6))
    assert np.array_equal(y, labels)
    split = load_idx_split(ipath, lpath, test_fraction=0.2, seed=3)
    assert len(split.y_test) == 8 and np.bincount(split.y_test).tolist() == [2, 2, 2, 2]


def test_images_and_labels_that_do_not_match_are_refused(tmp_path):
    images = write(tmp_path / "i.idx", idx_bytes(np.zeros((3, 2, 2)), "u1"))
    flat = write(tmp_path / "f.idx", idx_bytes(np.zeros((3, 4)), "u1"))
    labels = write(tmp_path / "l.idx", idx_bytes(np.zeros(2), "u1"))
    big = write(tmp_path / "b.idx", idx_bytes(np.array([1, 12, 3]), "u1"))
    wide = write(tmp_path / "w.idx", idx_bytes(np.zeros(3), ">i4"))
    with pytest.raises(IdxError, match="has 3 images but .* has 2 labels"):
        load_idx_images(images, labels)
    with pytest.raises(IdxError, match="images must be 3-D unsigned bytes"):
        load_idx_images(flat, labels)
    with pytest.raises(IdxError, match="label 12 found; allowed 0..9"):
        load_idx_images(images, big)
    with pytest.raises(IdxError, match="labels must be 1-D unsigned bytes; got 1-D int32"):
        load_idx_images(images, wide)
