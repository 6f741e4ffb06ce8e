"""MNIST-format IDX files (LeCun's format), read straight into aligned arrays.

`--data_dir=FOLDER` names a folder with the four files (gzipped or not):
train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
t10k-labels-idx1-ubyte. No TensorFlow import, no download.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import struct
import zlib

import numpy as np

from jaxgan.data.dataset import Dataset, aligned_empty
from jaxgan.errors import DataError

# IDX file name stems for each split, as LeCun's MNIST and Zalando's Fashion-MNIST name them.
_IDX_STEMS = {"train": "train", "test": "t10k"}
_IDX_MAX_DIMS = 32  # numpy's own limit is 64; real IDX files have 1 to 4.
_READ_CHUNK = 1 << 20
_IDX_MAX_BYTES = 2**33  # 8 GiB: a gzipped header declaring more is taken as corrupt.
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _read_exactly(stream, n: int, what: str) -> np.ndarray:
  """n bytes from stream into a fresh, aligned uint8 array (no intermediate bytes)."""
  buffer = aligned_empty((n,))
  view, filled = memoryview(buffer), 0
  try:
    while filled < n:
      # Bounded chunks: GzipFile.readinto builds a temporary bytes object as large as
      # the buffer it is given.
      got = stream.readinto(view[filled:filled + _READ_CHUNK])
      if not got:
        break
      filled += got
  except (OSError, EOFError, zlib.error) as e:
    raise DataError(f"{what}: not a valid gzip stream ({e}).") from None
  return buffer[:filled]


def read_idx_stream(stream, what: str = "IDX data") -> np.ndarray:
  """Parses one IDX file (LeCun's format) from a binary stream, reading the data
  straight into the result array: peak memory is the array, not twice it.

  Raises DataError naming `what` for a bad gzip stream, a wrong magic number, a
  header that does not fit, or data whose length does not match the dimensions.
  """
  magic = _read_exactly(stream, 4, what).tobytes()
  if len(magic) < 4:
    raise DataError(f"{what}: too short to be an IDX file ({len(magic)} bytes).")
  zero, code, ndim = magic[:2], magic[2], magic[3]
  if zero != b"\x00\x00" or code not in _IDX_DTYPES or ndim == 0:
    raise DataError(
        f"{what}: bad IDX magic number 0x{magic.hex()}; expected 0x0000TTNN with "
        "a type code TT (0x08 for uint8) and NN >= 1 dimensions.")
  if ndim > _IDX_MAX_DIMS:
    raise DataError(f"{what}: {ndim} dimensions declared; expected at most "
                    f"{_IDX_MAX_DIMS} (images are 3, labels 1).")
  dims_raw = _read_exactly(stream, 4 * ndim, what).tobytes()
  if len(dims_raw) < 4 * ndim:
    raise DataError(f"{what}: truncated IDX header ({ndim} dimensions declared).")
  dims = struct.unpack(f">{ndim}I", dims_raw)
  dtype = np.dtype(_IDX_DTYPES[code])
  # numpy refuses shapes whose nonzero dimensions overflow int64, even with a 0 among
  # them (found by tests/test_fuzz.py); Python ints here cannot overflow.
  if math.prod(d for d in dims if d) * dtype.itemsize >= 2**62:
    raise DataError(f"{what}: dimensions {list(dims)} are too large for an array.")
  expected = math.prod(dims) * dtype.itemsize
  if expected > _IDX_MAX_BYTES:
    raise DataError(f"{what}: dimensions {list(dims)} need {expected} bytes of data, "
                    f"more than the {_IDX_MAX_BYTES} this reader accepts (corrupted?).")
  if not isinstance(stream, gzip.GzipFile):  # A plain stream knows what it holds.
    here = stream.tell()
    remaining = stream.seek(0, io.SEEK_END) - here
    stream.seek(here)
    if remaining < expected:
      raise DataError(
          f"{what}: dimensions {list(dims)} need {expected} bytes of data but the file "
          f"holds {remaining} (truncated or corrupted).")
  body = _read_exactly(stream, expected, what)
  if len(body) != expected:
    raise DataError(
        f"{what}: dimensions {list(dims)} need {expected} bytes of data but the file "
        f"holds {len(body)} (truncated or corrupted).")
  if len(_read_exactly(stream, 1, what)):
    raise DataError(
        f"{what}: dimensions {list(dims)} need {expected} bytes of data but the file "
        "holds more (trailing bytes: corrupted, or not an IDX file).")
  array = body.view(dtype).reshape(dims)
  return array.astype(dtype.newbyteorder("="), copy=False)


def _open_idx_stream(f):
  """The stream itself, or a gunzipping view of it when it starts with gzip's magic."""
  head = f.read(2)
  f.seek(0)
  return gzip.GzipFile(fileobj=f, mode="rb") if head == b"\x1f\x8b" else f


def parse_idx(raw: bytes, what: str = "IDX data") -> np.ndarray:
  """Parses the bytes of one IDX file (gzip is detected and undone); see read_idx_stream."""
  return read_idx_stream(_open_idx_stream(io.BytesIO(raw)), what)


def read_idx(path: str) -> np.ndarray:
  """Reads one IDX file, gzipped or not, streaming. Raises DataError naming the file."""
  try:
    with open(path, "rb") as f:
      return read_idx_stream(_open_idx_stream(f), what=f"IDX file {path}")
  except OSError as e:
    raise DataError(f"cannot read IDX file {path}: {e.strerror}.") from None


def _find_idx(data_dir: str, stem: str, kind: str, ndim: int) -> str:
  """Finds e.g. train-images-idx3-ubyte[.gz] (or train-images.idx3-ubyte) in data_dir."""
  names = [f"{stem}-{kind}-idx{ndim}-ubyte", f"{stem}-{kind}.idx{ndim}-ubyte"]
  for name in names:
    for suffix in ("", ".gz"):
      path = os.path.join(data_dir, name + suffix)
      if os.path.isfile(path):
        return path
  raise DataError(
      f"--data_dir={data_dir!r} has no {names[0]} (or {names[0]}.gz); expected a "
      "folder with the four MNIST-format IDX files: train-images-idx3-ubyte, "
      "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte "
      "(gzipped or not), e.g. /usr/share/datasets/fashion-mnist.")


def load_idx_split(data_dir: str, split: str, name: str = "idx") -> Dataset:
  """Loads one split ('train' or 'test') of an MNIST-format IDX folder."""
  if not os.path.isdir(data_dir):
    raise DataError(
        f"--data_dir={data_dir!r} is not a folder; expected a folder with the four "
        "MNIST-format IDX files (e.g. /usr/share/datasets/fashion-mnist).")
  stem = _IDX_STEMS[split]
  images_path = _find_idx(data_dir, stem, "images", 3)
  labels_path = _find_idx(data_dir, stem, "labels", 1)
  images = read_idx(images_path)
  labels = read_idx(labels_path)
  if images.ndim != 3 or images.dtype != np.uint8:
    raise DataError(f"IDX file {images_path}: expected uint8 images [N, H, W], got "
                    f"{images.dtype} {list(images.shape)}.")
  if labels.ndim != 1 or len(labels) != len(images) or labels.dtype.kind not in "iu":
    raise DataError(f"IDX file {labels_path}: expected {len(images)} integer labels to "
                    f"match {images_path}, got {labels.dtype} {list(labels.shape)}.")
  if len(images) == 0:
    raise DataError(f"IDX file {images_path} holds no images.")
  if labels.min() < 0:
    raise DataError(f"IDX file {labels_path}: labels must be >= 0, found "
                    f"{int(labels.min())}.")
  labels = labels.astype(np.int32)
  return Dataset(name=name, images=images[..., None], labels=labels,
                 num_classes=int(labels.max()) + 1)

