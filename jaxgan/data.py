"""Data sources, and the on-device batch order.

A dataset is loaded whole into host memory as uint8 images `[N, H, W, C]` plus int32
labels `[N]`, then put on the device once; training steps gather batches from it by index
(`batch_indices`), so no host work happens per step.

Sources, chosen by flags:
  * `--data_dir=FOLDER`: the four MNIST-format IDX files (gzipped or not) read directly,
    with no TensorFlow import and no download. `--dataset` then only names the data.
  * `--dataset=NAME` without `--data_dir`: a tfds dataset, downloaded by tfds if needed.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import math
import os
import struct
import zlib
import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.errors import DataError

SPLITS = ("train", "test")
# IDX file name stems for each split, as LeCun's MNIST and Zalando's Fashion-MNIST name them.
_IDX_STEMS = {"train": "train", "test": "t10k"}
_IDX_MAX_DIMS = 32  # numpy's own limit is 64; real IDX files have 1 to 4.
_READ_CHUNK = 1 << 20
_IDX_MAX_BYTES = 2**33  # 8 GiB: a gzipped header declaring more is taken as corrupt.
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A split held in host memory.

  images: [N, H, W, C] uint8 in [0, 255] (float32 points [N, 1, 1, D] for toy data).
  labels: [N] int32 (or None if unlabelled).
  """

  name: str
  images: np.ndarray
  labels: np.ndarray | None
  num_classes: int

  @property
  def num_examples(self) -> int:
    return int(self.images.shape[0])

  @property
  def image_shape(self) -> tuple[int, int, int]:
    return tuple(self.images.shape[1:])  # type: ignore[return-value]


# --------------------------------------------------------------------------- IDX files
# XLA's CPU client adopts a host array as the device buffer without copying it when the
# array is 64-byte aligned; numpy's large allocations are only 16-byte aligned, and the
# copy cost Fashion-MNIST's 47 MB a second time (peak RSS of a training run).
_DEVICE_ALIGNMENT = 64


def aligned_empty(shape, dtype=np.uint8) -> np.ndarray:
  """np.empty(shape, dtype) starting on a _DEVICE_ALIGNMENT-byte boundary, so that
  jax.device_put on CPU aliases it instead of copying."""
  dtype = np.dtype(dtype)
  nbytes = math.prod(shape) * dtype.itemsize
  raw = np.empty(nbytes + _DEVICE_ALIGNMENT, np.uint8)
  offset = (-raw.ctypes.data) % _DEVICE_ALIGNMENT
  return raw[offset:offset + nbytes].view(dtype).reshape(shape)


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


# --------------------------------------------------------------------------- tfds
def load_tfds_split(name: str, split: str) -> Dataset:
  """Loads a whole tfds split into memory (downloading it if tfds must)."""
  try:
    import tensorflow_datasets as tfds  # Imported lazily: heavy, and TF comes with it.
  except ImportError as e:
    raise DataError(f"--dataset={name!r} needs tensorflow-datasets ({e}); install "
                    "requirements.txt or use --data_dir with local IDX files.") from None
  try:
    builder = tfds.builder(name)
  except Exception as e:  # tfds raises DatasetNotFoundError and friends.
    raise DataError(
        f"--dataset={name!r} is not a dataset tfds knows ({type(e).__name__}); "
        "expected a tfds image dataset name such as 'mnist' or 'fashion_mnist', or "
        "--data_dir with local IDX files.") from None
  try:
    if not builder.is_prepared():
      # tfds retries each URL 10 times with exponential backoff (~200 s offline before
      # it gives up); 3 retries fail an offline machine in seconds and still ride out
      # a flaky connection.
      from tensorflow_datasets.core.download import downloader
      downloader.MAX_RETRIES = min(downloader.MAX_RETRIES, 3)
    builder.download_and_prepare()
    # Large fixed batches, concatenated: batch_size=-1 trusts the split's recorded size,
    # which mock data and some community datasets do not record.
    batches = list(tfds.as_numpy(builder.as_dataset(split=split, batch_size=8192,
                                                    as_supervised=True)))
  except Exception as e:
    raise DataError(
        f"could not download or prepare tfds dataset {name!r} "
        f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
        "Offline, point --data_dir at a folder with the MNIST-format IDX files, e.g. "
        "--data_dir=/usr/share/datasets/fashion-mnist (Debian package "
        "dataset-fashion-mnist).") from None
  if not batches:
    raise DataError(f"tfds dataset {name!r} split {split!r} is empty.")
  parts = [np.asarray(b[0], np.uint8) for b in batches]
  images = np.concatenate(parts, out=aligned_empty(
      (sum(len(p) for p in parts),) + parts[0].shape[1:]))
  labels = np.concatenate([np.asarray(b[1]) for b in batches])
  if images.ndim == 3:
    images = images[..., None]
  num_classes = builder.info.features["label"].num_classes
  return Dataset(name=name, images=images, labels=np.asarray(labels, np.int32),
                 num_classes=int(num_classes))


# --------------------------------------------------------------------------- dispatch
def check_dataset_name(name: str) -> None:
  """Cheap syntactic check; whether tfds knows the name is checked when loading."""
  from jaxgan.errors import ConfigError
  if not name or not all(c.isalnum() or c in "_-/:." for c in name):
    raise ConfigError(f"--dataset={name!r} is invalid: expected a dataset name such "
                      "as 'mnist' or 'fashion_mnist'.")


def load_dataset(dataset: str, data_dir: str = "", split: str = "train") -> Dataset:
  """Loads `split` of the named dataset: a toy_* problem (jaxgan/toy.py), from IDX files
  when data_dir is set, else tfds."""
  if split not in SPLITS:
    raise DataError(f"split {split!r} is not one of {SPLITS}.")
  if dataset.startswith("toy_"):
    from jaxgan import toy
    return toy.load(dataset, split)
  if data_dir:
    return load_idx_split(data_dir, split, name=dataset)
  return load_tfds_split(dataset, split)


def check_batch_fits(ds: Dataset, batch_size: int) -> None:
  if batch_size > ds.num_examples:
    from jaxgan.errors import ConfigError
    raise ConfigError(f"--batch_size={batch_size} is larger than the dataset "
                      f"{ds.name!r} ({ds.num_examples} examples); expected at most "
                      f"{ds.num_examples}.")


# --------------------------------------------------------------------------- pixels
def to_pixels(images_uint8: jax.Array, pixel_range: tuple[float, float]) -> jax.Array:
  """uint8 [0, 255] -> float32 in pixel_range (the model's output range).

  Float data (the toy problems' points) is returned as is: it has no pixel scale.
  """
  if jnp.issubdtype(images_uint8.dtype, jnp.floating):
    return images_uint8.astype(jnp.float32)
  lo, hi = pixel_range
  return images_uint8.astype(jnp.float32) * ((hi - lo) / 255.0) + lo


def from_pixels(images: np.ndarray, pixel_range: tuple[float, float]) -> np.ndarray:
  """float in pixel_range -> uint8 [0, 255] (for PNGs)."""
  lo, hi = pixel_range
  unit = (np.asarray(images, np.float32) - lo) / (hi - lo)
  return np.clip(np.round(unit * 255.0), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- batch order
_FEISTEL_ROUNDS = 6


def _mix32(x: jax.Array) -> jax.Array:
  """murmur3's 32-bit finaliser: a cheap bijective hash of uint32."""
  x = x ^ (x >> 16)
  x = x * jnp.uint32(0x85EBCA6B)
  x = x ^ (x >> 13)
  x = x * jnp.uint32(0xC2B2AE35)
  return x ^ (x >> 16)


def _feistel(x: jax.Array, round_keys: jax.Array, half_bits: int) -> jax.Array:
  """A keyed bijection of [0, 2**(2*half_bits)) (balanced Feistel network)."""
  mask = jnp.uint32((1 << half_bits) - 1)
  left, right = x >> half_bits, x & mask
  for r in range(_FEISTEL_ROUNDS):
    left, right = right, left ^ (_mix32(right ^ round_keys[r]) & mask)
  return (left << half_bits) | right


def shuffled_positions(key: jax.Array, positions: jax.Array, n: int) -> jax.Array:
  """perm[positions] for a pseudorandom permutation `perm` of [0, n) chosen by key.

  The permutation is a Feistel network with cycle walking, so any slice of it costs
  O(len(positions)) instead of the O(n log n) sort that `jax.random.permutation` does
  (43 ms for n = 60,000 on a 2-core CPU, against microseconds here).
  """
  half_bits = max(1, ((max(n - 1, 1)).bit_length() + 1) // 2)
  round_keys = jax.random.bits(key, (_FEISTEL_ROUNDS,), jnp.uint32)
  x = _feistel(positions.astype(jnp.uint32), round_keys, half_bits)
  # Cycle walking: values outside [0, n) are mapped again until they land inside.
  # Since the domain is < 4n, each walk is short (expected < 4 extra rounds).
  x = jax.lax.while_loop(lambda x: jnp.any(x >= n),
                         lambda x: jnp.where(x >= n, _feistel(x, round_keys, half_bits), x),
                         x)
  return x.astype(jnp.int32)


def batch_indices(data_key: jax.Array, batch_number: jax.Array, num_examples: int,
                  batch_size: int) -> jax.Array:
  """Indices [batch_size] int32 of batch `batch_number` of an epoch-shuffled order.

  Epoch e = batch_number // (num_examples // batch_size) visits a fresh permutation of
  the examples without replacement (the remainder is dropped). The order is a pure
  function of (data_key, batch_number), so a resumed run sees the same batches.
  """
  per_epoch = num_examples // batch_size
  epoch = batch_number // per_epoch
  offset = (batch_number % per_epoch) * batch_size
  positions = offset + jnp.arange(batch_size, dtype=jnp.int32)
  return shuffled_positions(jax.random.fold_in(data_key, epoch), positions, num_examples)


def gather_batch(images: jax.Array, indices: jax.Array,
                 pixel_range: tuple[float, float]) -> jax.Array:
  """[N, H, W, C] uint8 on device, [B] indices -> [B, H, W, C] float32 in pixel_range."""
  return to_pixels(jnp.take(images, indices, axis=0), pixel_range)
