"""Reader for IDX files, the format of the MNIST distribution, so users can bring their own.

Format (Y. LeCun, C. Cortes, C. J. C. Burges, "The MNIST database of handwritten digits",
yann.lecun.com/exdb/mnist/, section "File formats"): two zero bytes, one byte for the element
type (0x08 unsigned byte, 0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E
float64), one byte for the number of dimensions, then each dimension as a big-endian uint32,
then the elements in C order, big-endian. Files are read plain or gzip-compressed (recognised
by the gzip magic bytes, whatever the file name says). Nothing is downloaded.

Every defect of a file (wrong magic, unknown type, truncated or trailing data, images and
labels that do not match) raises `IdxError` naming the file and what is wrong.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from xbarlab.nn.data import Split, stratified_split

IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
"""IDX element type code -> numpy dtype (big-endian)."""
GZIP_MAGIC = b"\x1f\x8b"
HEADER_BYTES = 4


class IdxError(ValueError):
    """An IDX file that cannot be read; the message names the file and the defect."""


def _file_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise IdxError(f"{path}: cannot read ({error.strerror or error})") from None
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise IdxError(f"{path}: gzip data is corrupt or truncated ({error})") from None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array stored in IDX file `path` (plain or gzip), in native byte order."""
    path = Path(path)
    data = _file_bytes(path)
    if len(data) < HEADER_BYTES:
        raise IdxError(f"{path}: {len(data)} bytes, too short for an IDX header (4 bytes)")
    if data[0] != 0 or data[1] != 0:
        raise IdxError(f"{path}: not an IDX file (first two bytes {data[:2].hex()}, "
                       "allowed 0000)")
    code, ndim = data[2], data[3]
    if code not in IDX_TYPES:
        allowed = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise IdxError(f"{path}: element type 0x{code:02X} is not an IDX type; allowed {allowed}")
    if ndim == 0:
        raise IdxError(f"{path}: 0 dimensions; allowed 1 or more")
    dims_end = HEADER_BYTES + 4 * ndim
    if len(data) < dims_end:
        raise IdxError(f"{path}: header declares {ndim} dimensions but the file ends after "
                       f"{len(data)} bytes")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, HEADER_BYTES))
    dtype = IDX_TYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - dims_end
    if actual != expected:
        what = "truncated" if actual < expected else "has trailing bytes"
        raise IdxError(f"{path}: {what}: shape {shape} of {dtype.name} needs {expected} data "
                       f"bytes, the file has {actual}")
    values = np.frombuffer(data, dtype, offset=dims_end).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def load_idx_images(images: str | os.PathLike, labels: str | os.PathLike) -> tuple[
    np.ndarray, np.ndarray
]:
    """Images flattened and scaled to [0, 1] (samples, rows*cols) and their integer labels.

    `images` must be a 3-D unsigned-byte IDX file (samples, rows, cols), `labels` a 1-D
    unsigned-byte IDX file with one label 0..9 per image, as in the MNIST distribution.
    """
    x, y = read_idx(images), read_idx(labels)
    if x.ndim != 3 or x.dtype != np.uint8:
        raise IdxError(f"{images}: images must be 3-D unsigned bytes (samples, rows, cols); "
                       f"got {x.ndim}-D {x.dtype.name}")
    if y.ndim != 1 or y.dtype != np.uint8:
        raise IdxError(f"{labels}: labels must be 1-D unsigned bytes; got {y.ndim}-D "
                       f"{y.dtype.name}")
    if len(x) != len(y):
        raise IdxError(f"{images} has {len(x)} images but {labels} has {len(y)} labels; "
                       "allowed: one label per image")
    if y.size and y.max() > 9:
        raise IdxError(f"{labels}: label {int(y.max())} found; allowed 0..9")
    return x.reshape(len(x), -1).astype(float) / 255.0, y.astype(np.int64)


def load_idx_split(images: str | os.PathLike, labels: str | os.PathLike,
                   test_fraction: float = 0.2, seed: int = 0) -> Split:
    """A user's IDX images and labels, scaled to [0, 1] and split by `stratified_split`."""
    x, y = load_idx_images(images, labels)
    return stratified_split(x, y, test_fraction, seed)
