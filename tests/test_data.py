"""Data (jaxgan/data/): IDX files real, malformed and fuzzed, the data's name, tfds
offline, the toy datasets, and the on-device batch order."""

from __future__ import annotations

import dataclasses
import gzip
import math
import os
import struct
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from jaxgan import data
from jaxgan.data import toy
from jaxgan.errors import ConfigError, DataError
from jaxgan.runtime.compile import compile_once

import toolkit
from toolkit import idx_bytes, write_idx_dir

GOOD_IMAGES = idx_bytes(np.arange(4 * 3 * 3, dtype=np.uint8).reshape(4, 3, 3))
GOOD_LABELS = idx_bytes(np.array([0, 1, 2, 1], np.uint8))
GOOD = idx_bytes(np.zeros((2, 3, 3), np.uint8))


def write_raw_folder(folder, images: bytes, labels: bytes, gz: bool = False) -> str:
  """The four IDX files of a folder, from raw bytes (well-formed or not); both splits
  hold the same bytes."""
  os.makedirs(folder, exist_ok=True)
  wrap = gzip.compress if gz else (lambda b: b)
  suffix = ".gz" if gz else ""
  for stem in ("train", "t10k"):
    for name, raw in ((f"{stem}-images-idx3-ubyte", images),
                      (f"{stem}-labels-idx1-ubyte", labels)):
      with open(os.path.join(folder, name + suffix), "wb") as f:
        f.write(wrap(raw))
  return str(folder)


def load(folder) -> data.Dataset:
  return data.load_dataset("", str(folder), "train")


# --------------------------------------------------------------------------- real IDX
def test_reads_real_fashion_mnist_idx_files_named_after_their_folder():
  assert os.path.isdir(toolkit.FASHION_MNIST_DIR), (
      "Fashion-MNIST IDX files missing: apt-get install dataset-fashion-mnist")
  # --dataset is ignored with --data_dir: the data carries its folder's name.
  train = data.load_dataset("mnist", toolkit.FASHION_MNIST_DIR, "train")
  test = data.load_dataset("", toolkit.FASHION_MNIST_DIR, "test")
  assert train.name == test.name == "fashion_mnist"
  assert train.images.shape == (60000, 28, 28, 1) and train.images.dtype == np.uint8
  assert test.images.shape == (10000, 28, 28, 1)
  assert train.num_classes == 10
  # Fashion-MNIST is balanced: 6,000 training and 1,000 test images per class.
  assert np.bincount(train.labels).tolist() == [6000] * 10
  assert np.bincount(test.labels).tolist() == [1000] * 10
  # Known values of the files: the first labels (ankle boot, T-shirt, T-shirt, dress,
  # ...) and the training set's mean pixel, 0.2860 of 255 (the normalisation constant
  # torchvision users quote).
  assert train.labels[:6].tolist() == [9, 0, 0, 3, 0, 2]
  assert test.labels[:6].tolist() == [9, 2, 1, 1, 6, 1]
  assert train.images.mean() / 255 == pytest.approx(0.2860, abs=5e-5)


# --------------------------------------------------------------------------- names
@pytest.mark.parametrize("dataset, data_dir, name", [
    ("mnist", "/usr/share/datasets/fashion-mnist", "fashion_mnist"),
    ("mnist", "/usr/share/datasets/fashion-mnist/", "fashion_mnist"),
    ("", "/data/My Data.v2", "my_data_v2"),
    ("", "relative/idx", "idx"),
    ("", "/data/--", "data"),
    ("fashion_mnist", "", "fashion_mnist"),
    ("toy_ring8", "", "toy_ring8"),
])
def test_data_name_is_the_normalised_folder_name_else_the_dataset(dataset, data_dir,
                                                                  name):
  assert data.data_name(dataset, data_dir) == name


def test_a_relative_data_dir_is_named_after_the_folder_it_names(tmp_path, monkeypatch):
  (tmp_path / "Fashion-MNIST" / "sub").mkdir(parents=True)
  monkeypatch.chdir(tmp_path / "Fashion-MNIST")
  assert data.data_name("", ".") == "fashion_mnist"
  assert data.data_name("", "./") == "fashion_mnist"
  assert data.data_name("", "sub/..") == "fashion_mnist"
  monkeypatch.chdir(tmp_path / "Fashion-MNIST" / "sub")
  assert data.data_name("", "..") == "fashion_mnist"


def test_idx_data_is_named_after_its_folder_whatever_the_dataset_flag(tmp_path):
  folder = write_raw_folder(tmp_path / "My Digits-2", GOOD_IMAGES, GOOD_LABELS)
  for dataset in ("", "mnist", "toy_ring8"):
    ds = data.load_dataset(dataset, folder, "test")
    assert ds.name == "my_digits_2" and ds.images.shape == (4, 3, 3, 1)


# --------------------------------------------------------------------------- good IDX
def test_a_good_tiny_folder_loads(tmp_path):
  ds = load(write_raw_folder(tmp_path / "tiny", GOOD_IMAGES, GOOD_LABELS, gz=True))
  assert ds.images.shape == (4, 3, 3, 1) and ds.num_classes == 3
  np.testing.assert_array_equal(ds.images[..., 0],
                                np.arange(36, dtype=np.uint8).reshape(4, 3, 3))
  assert ds.labels.tolist() == [0, 1, 2, 1] and ds.labels.dtype == np.int32


def test_gzipped_and_plain_idx_files_read_the_same(tmp_path):
  images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
  labels = np.array([1, 0], np.uint8)
  gz = data.load_idx_split(write_idx_dir(tmp_path / "gz", images, labels, gz=True),
                           "train")
  plain = data.load_idx_split(write_idx_dir(tmp_path / "raw", images, labels, gz=False),
                              "train")
  np.testing.assert_array_equal(gz.images[..., 0], images)
  np.testing.assert_array_equal(plain.images, gz.images)
  assert plain.labels.tolist() == [1, 0] and plain.labels.dtype == np.int32


def test_idx_of_every_type_code_parses_to_native_byte_order():
  for code, dtype in ((0x08, np.uint8), (0x09, np.int8), (0x0B, ">i2"), (0x0C, ">i4"),
                      (0x0D, ">f4"), (0x0E, ">f8")):
    values = np.array([[1, -2 if code != 0x08 else 2, 3]], dtype)
    array = data.parse_idx(idx_bytes(values, code))
    assert array.dtype.isnative and array.dtype.itemsize == np.dtype(dtype).itemsize
    np.testing.assert_array_equal(array, values)


# --------------------------------------------------------------------------- bad IDX
@pytest.mark.parametrize("raw, message", [
    (b"\x00\x00\x08", "too short"),
    (b"\x08\x03\x00\x00" + GOOD[4:], "magic"),       # Wrong magic number.
    (b"\x00\x00\x07\x03" + GOOD[4:], "magic"),       # Unknown type code.
    (GOOD[:-1], "truncated"),                         # Data one byte short.
    (GOOD + b"\x00", "holds more"),                   # Trailing bytes.
    (GOOD[:4] + b"\x00\x00\x00\x05" + GOOD[8:], "dimensions"),  # Dims disagree with data.
    (GOOD[:10], "truncated IDX header"),
    (b"\x1f\x8b" + b"not a gzip stream at all", "gzip"),
    (gzip.compress(GOOD, mtime=0)[:-8], "gzip"),      # Gzip stream cut short.
])
def test_malformed_idx_is_a_data_error(raw, message):
  with pytest.raises(DataError, match=message):
    data.parse_idx(raw, "IDX file x")


def test_malformed_idx_file_error_names_the_file(tmp_path):
  path = tmp_path / "train-images-idx3-ubyte"
  path.write_bytes(GOOD[:-3])
  with pytest.raises(DataError, match=str(path)):
    data.read_idx(str(path))


def test_wrong_magic_number_is_named(tmp_path):
  folder = write_raw_folder(tmp_path, b"\x00\x01" + GOOD_IMAGES[2:], GOOD_LABELS)
  with pytest.raises(DataError, match=r"train-images-idx3-ubyte: bad IDX magic number "
                     r"0x00010803"):
    load(folder)


def test_unknown_type_code_is_a_bad_magic_number(tmp_path):
  folder = write_raw_folder(tmp_path, b"\0\0\x07\x03" + GOOD_IMAGES[4:], GOOD_LABELS)
  with pytest.raises(DataError, match="bad IDX magic number 0x00000703"):
    load(folder)


def test_images_with_wrong_dimensions_are_refused(tmp_path):
  flat = idx_bytes(np.zeros((4, 9), np.uint8))  # 2-D "images".
  with pytest.raises(DataError, match=r"expected uint8 images \[N, H, W\], got uint8 "
                     r"\[4, 9\]"):
    load(write_raw_folder(tmp_path, flat, GOOD_LABELS))


def test_truncated_data_is_refused_with_byte_counts(tmp_path):
  with pytest.raises(DataError, match=r"dimensions \[4, 3, 3\] need 36 bytes of data "
                     r"but the file holds 30"):
    load(write_raw_folder(tmp_path, GOOD_IMAGES[:-6], GOOD_LABELS))


def test_truncated_header_is_refused(tmp_path):
  with pytest.raises(DataError, match=r"truncated IDX header \(3 dimensions"):
    load(write_raw_folder(tmp_path, GOOD_IMAGES[:9], GOOD_LABELS))


def test_bad_gzip_stream_is_refused(tmp_path):
  broken = gzip.compress(GOOD_IMAGES)[:-10]  # Cut: the stream ends early.
  folder = write_raw_folder(tmp_path, GOOD_IMAGES, GOOD_LABELS)
  os.remove(os.path.join(folder, "train-images-idx3-ubyte"))
  with open(os.path.join(folder, "train-images-idx3-ubyte.gz"), "wb") as f:
    f.write(broken)
  with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: not a valid gzip "
                     "stream"):
    load(folder)


def test_empty_dataset_is_refused(tmp_path):
  empty = write_raw_folder(tmp_path, idx_bytes(np.zeros((0, 3, 3), np.uint8)),
                           idx_bytes(np.zeros((0,), np.uint8)))
  with pytest.raises(DataError, match="holds no images"):
    load(empty)


def test_label_count_must_match_images(tmp_path):
  labels = idx_bytes(np.array([0, 1, 2], np.uint8))
  with pytest.raises(DataError, match=r"expected 4 integer labels .* got uint8 \[3\]"):
    load(write_raw_folder(tmp_path, GOOD_IMAGES, labels))


def test_missing_folder_or_files_name_the_expected_ones(tmp_path):
  with pytest.raises(DataError, match="is not a folder"):
    load(tmp_path / "nope")
  with pytest.raises(DataError, match="has no train-images-idx3-ubyte"):
    load(tmp_path)


def test_unknown_split_is_refused():
  with pytest.raises(DataError, match="split 'valid' is not one of"):
    data.load_dataset("toy_ring8", "", "valid")


# --------------------------------------------------------------------------- IDX fuzzing
FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
ITEMSIZE = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}


def parse_or_data_error(raw: bytes):
  try:
    return data.parse_idx(raw)
  except DataError:
    return None


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise_data_error(raw):
  array = parse_or_data_error(raw)
  if array is not None:
    assert isinstance(array, np.ndarray) and array.ndim >= 1


@st.composite
def idx_like(draw):
  """Headers that are nearly right: real type codes, small or huge dims, data that
  fits, is short or long; sometimes gzipped, sometimes with a damaged gzip stream."""
  code = draw(st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0x07]))
  ndim = draw(st.integers(0, 70))
  dims = draw(st.lists(st.one_of(st.integers(0, 4), st.integers(0, 2**32 - 1)),
                       min_size=ndim, max_size=ndim))
  size = math.prod(dims) * ITEMSIZE.get(code, 1)
  length = draw(st.sampled_from(["exact", "short", "long"]))
  n = min(size, 512) + {"exact": 0, "short": -1, "long": 1}[length]
  raw = (b"\0\0" + bytes([code, ndim]) + struct.pack(f">{ndim}I", *dims)
         + draw(st.binary(min_size=max(n, 0), max_size=max(n, 0))))
  wrap = draw(st.sampled_from(["plain", "gzip", "gzip_cut", "gzip_flip"]))
  if wrap != "plain":
    raw = gzip.compress(raw)
    if wrap == "gzip_cut":
      raw = raw[:draw(st.integers(2, len(raw) - 1))]
    elif wrap == "gzip_flip":
      i = draw(st.integers(10, len(raw) - 1))
      raw = raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1:]
  return raw, code, dims


@FUZZ
@given(idx_like())
def test_near_valid_idx_parses_to_its_dims_or_raises_data_error(case):
  raw, code, dims = case
  array = parse_or_data_error(raw)
  if array is not None:
    assert list(array.shape) == dims
    assert array.dtype.itemsize == ITEMSIZE[code]


# --------------------------------------------------------------------------- tfds
# The tests that import TensorFlow (seconds of CPU) share one xdist worker, which then
# imports it once: the "tensorflow" group (test_runtime_loop.py has the others).
@pytest.mark.xdist_group("tensorflow")
def test_tfds_source_loads_a_whole_split_offline_with_mock_data():
  import tensorflow_datasets as tfds
  with tfds.testing.mock_data(num_examples=40):
    ds = data.load_dataset("mnist", "", "train")
  assert ds.name == "mnist"
  assert ds.images.shape == (40, 28, 28, 1) and ds.images.dtype == np.uint8
  assert ds.labels.shape == (40,) and ds.num_classes == 10


# --------------------------------------------------------------------------- toy data
def test_ring_is_pacgans_eight_modes_of_radius_one():
  p = toy.PROBLEMS["toy_ring8"]
  assert p.num_modes == 8 and p.std == 0.01 and p.train_size == 100_000
  # PacGAN's MEANS: (cos(2 pi i / 8), sin(2 pi i / 8)).
  angles = 2 * np.pi * np.arange(8) / 8
  np.testing.assert_allclose(p.centres, np.stack([np.cos(angles), np.sin(angles)], 1))


def test_grid_is_25_modes():
  p = toy.PROBLEMS["toy_grid25"]
  assert p.num_modes == 25
  assert sorted(set(p.centres[:, 0])) == [-4, -2, 0, 2, 4]
  assert sorted(set(p.centres[:, 1])) == [-4, -2, 0, 2, 4]


def test_toy_dataset_loads_as_float_points_with_mode_labels():
  ds = data.load_dataset("toy_ring8", split="test")
  assert ds.name == "toy_ring8"
  assert ds.images.shape == (toy.TEST_SIZE, 1, 1, 2) and ds.images.dtype == np.float32
  assert ds.num_classes == 8
  centres = toy.PROBLEMS["toy_ring8"].centres
  dist = np.linalg.norm(ds.images[:, 0, 0] - centres[ds.labels], axis=1)
  assert dist.max() < 6 * 0.02


def test_toy_splits_are_fixed_and_distinct():
  a = data.load_dataset("toy_grid25", split="test")
  b = data.load_dataset("toy_grid25", split="test")
  np.testing.assert_array_equal(a.images, b.images)
  train = data.load_dataset("toy_grid25", split="train")
  assert train.num_examples == toy.TRAIN_SIZE
  assert not np.array_equal(train.images[:toy.TEST_SIZE], a.images)


def test_float_data_is_not_rescaled():
  x = jnp.array([[-3.5, 7.0]])
  np.testing.assert_array_equal(data.to_pixels(x, (-1.0, 1.0)), x)
  np.testing.assert_array_equal(data.to_pixels(x, (0.0, 1.0)), x)


def test_unknown_toy_dataset_is_a_clear_error():
  with pytest.raises(DataError, match="'toy_nope' is not a toy dataset; expected one of "
                     r"\['toy_gauss1d', 'toy_grid25', 'toy_ring8'\]"):
    data.load_dataset("toy_nope")


# --------------------------------------------------------------------------- order
@pytest.mark.parametrize("n", [1, 2, 3, 10, 255, 256, 257, 60000])
def test_shuffled_positions_is_a_permutation(n):
  key = jax.random.PRNGKey(n)
  permute = compile_once(lambda k: data.shuffled_positions(k, jnp.arange(n), n), key)
  perm = np.asarray(permute(key))
  assert sorted(perm.tolist()) == list(range(n))
  if n >= 10:
    assert not np.array_equal(perm, np.arange(n))


def test_each_epoch_visits_every_example_once_in_a_fresh_order():
  key, n, batch = jax.random.PRNGKey(7), 96, 16  # 6 batches per epoch.
  order = jax.jit(lambda b: data.batch_indices(key, b, n, batch))
  epoch0 = np.concatenate([order(b) for b in range(6)])
  epoch1 = np.concatenate([order(b) for b in range(6, 12)])
  assert sorted(epoch0.tolist()) == list(range(n))
  assert sorted(epoch1.tolist()) == list(range(n))
  assert not np.array_equal(epoch0, epoch1)


def test_remainder_is_dropped_and_batches_never_repeat_within_an_epoch():
  key, n, batch = jax.random.PRNGKey(1), 100, 16  # 6 full batches, 4 examples dropped.
  order = jax.jit(lambda b: data.batch_indices(key, b, n, batch))
  epoch = np.concatenate([order(b) for b in range(6)])
  assert len(set(epoch.tolist())) == 96 and epoch.max() < n


def test_batch_order_is_a_pure_function_of_seed_and_batch_number():
  jitted = jax.jit(data.batch_indices, static_argnums=(2, 3))
  a = data.batch_indices(jax.random.PRNGKey(3), 41, 1000, 32)
  b = jitted(jax.random.PRNGKey(3), 41, 1000, 32)
  c = jitted(jax.random.PRNGKey(4), 41, 1000, 32)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)


def test_gather_batch_takes_the_indexed_images_in_the_pixel_range():
  images = jnp.asarray(np.arange(4 * 2 * 2, dtype=np.uint8).reshape(4, 2, 2, 1) * 17)
  batch = data.gather_batch(images, jnp.array([3, 0]), (0.0, 1.0))
  np.testing.assert_allclose(batch, np.asarray(images)[[3, 0]] / 255.0, rtol=1e-6)


def test_pixels_follow_the_model_range():
  x = jnp.array([0, 255], jnp.uint8)
  np.testing.assert_allclose(data.to_pixels(x, (-1.0, 1.0)), [-1.0, 1.0])
  np.testing.assert_allclose(data.to_pixels(x, (0.0, 1.0)), [0.0, 1.0])
  np.testing.assert_array_equal(data.from_pixels(np.array([-1.0, 1.0]), (-1.0, 1.0)),
                                [0, 255])


def test_batch_larger_than_the_dataset_is_refused():
  ds = data.load_dataset("toy_ring8", split="test")
  data.check_batch_fits(ds, toy.TEST_SIZE)
  with pytest.raises(ConfigError, match=r"--batch_size=10001 needs more examples than "
                     r"the dataset 'toy_ring8' has \(10000 for training\)"):
    data.check_batch_fits(ds, toy.TEST_SIZE + 1)
  with pytest.raises(ConfigError, match=r"--batch_size=5001 x --pack=2 needs more"):
    data.check_batch_fits(ds, 5001, pack=2)


def test_num_valid_holds_out_the_last_examples_for_the_parzen_sigma():
  from jaxgan.eval.evaluator import parzen_images
  images = np.arange(60, dtype=np.uint8).reshape(60, 1, 1, 1)
  full = data.Dataset("d", images, np.zeros(60, np.int32), 1)
  train = data.training_split(full, 10, batch_size=4)
  assert train.num_examples == 50 and list(train.labels.shape) == [50]
  np.testing.assert_array_equal(train.valid_images[:, 0, 0, 0], np.arange(50, 60))
  # The paper's split of MNIST: train on train[:50000], sigma on train[50000:51000].
  np.testing.assert_array_equal(parzen_images(train)[:, 0, 0, 0], np.arange(50, 60))
  # Without a held-out split they are training images: from 5/6 into the split when it
  # holds 6,000 or more (MNIST: train[50000:51000]), else its last 1,000 or all of it.
  np.testing.assert_array_equal(parzen_images(full)[:, 0, 0, 0], np.arange(60))
  with pytest.raises(ConfigError, match="--num_valid=60 holds out the whole"):
    data.training_split(full, 60, batch_size=4)


# --------------------------------------------------------------------------- subsets
def identity_folder(tmp_path, n: int = 40, n_test: int = 12) -> str:
  """Tiny IDX data whose training image i holds the value i everywhere (labels i % 4),
  and a test split of its own (values 200 + j)."""
  def images(values):
    return np.broadcast_to(np.asarray(values, np.uint8)[:, None, None],
                           (len(values), 2, 2)).copy()
  return write_idx_dir(tmp_path / "tiny", images(np.arange(n)), np.arange(n) % 4,
                       images(200 + np.arange(n_test)), np.arange(n_test) % 4)


def image_ids(ds: data.Dataset) -> list[int]:
  return ds.images[:, 0, 0, 0].astype(int).tolist()


def test_a_train_subset_is_fixed_by_its_own_seed_for_every_member_of_a_seed_sweep(
    tmp_path):
  from jaxgan.config import sweep_members
  folder = identity_folder(tmp_path)
  base = toolkit.tiny_config(folder, batch_size=4, train_subset=12, train_subset_seed=3,
                             sweep=("seed=0,1,2",)).validate()
  splits = [data.load_training_split(m.config) for m in sweep_members(base)]
  # StyleGAN2-ADA's draw for --subset=12 with seed 3 (training/dataset.py):
  # RandomState(3).shuffle(arange(40)), the first 12, sorted.
  order = np.arange(40, dtype=np.int64)
  np.random.RandomState(3).shuffle(order)
  want = np.sort(order[:12]).tolist()
  for split in splits:  # Every seed trains on the same 12 examples, in file order.
    assert image_ids(split) == want
    assert split.labels.tolist() == [i % 4 for i in want]
  other = data.load_training_split(dataclasses.replace(base, train_subset_seed=4))
  assert image_ids(other) != want and len(set(image_ids(other))) == 12
  # Held-out examples stay out of it: --num_valid=8 keeps the last 8 for Parzen's sigma
  # and draws the subset from the first 32.
  held = data.load_training_split(dataclasses.replace(base, num_valid=8))
  assert max(image_ids(held)) < 32 and held.num_examples == 12
  assert held.valid_images[:, 0, 0, 0].tolist() == list(range(32, 40))


class RunKeys(NamedTuple):
  """What the batch order reads of a state: the run key and the step."""
  rng: jax.Array
  step: int


class IdentityFeatures:
  """A feature network for 2x2 images: features are the pixels, probs uniform."""
  name, dataset, image_shape = "identity", None, (2, 2, 1)
  num_classes, feature_dim, accuracy = 4, 4, None

  @staticmethod
  @jax.jit
  def apply(images):
    features = images.reshape(images.shape[0], 4)
    return features, jnp.full((images.shape[0], 4), 0.25)


def test_the_batch_order_draws_from_the_subset_only_and_evaluation_from_the_whole_test(
    tmp_path):
  from jaxgan.eval.members import make_evaluator
  from jaxgan.state import make_gan
  from jaxgan.steps import Feed, make_parts
  folder = identity_folder(tmp_path)
  config = toolkit.tiny_config(folder, batch_size=4, train_subset=12,
                               train_subset_seed=3, eval_parzen=False).validate()
  train = data.load_training_split(config)
  # The step's real batches (the Feed train_step gathers from, over the images the
  # loop hands it): 3 steps are one epoch of the 12, each exactly once.
  feed = Feed(make_parts(config, make_gan(config, (2, 2, 1))), train.num_examples)
  run_key = jax.random.PRNGKey(5)

  def epoch(images):
    return jnp.stack([feed.from_dataset(RunKeys(run_key, s), images, None)(0)[0]
                      for s in range(3)])

  batches = compile_once(epoch, jnp.asarray(train.images))(jnp.asarray(train.images))
  seen = np.rint((np.asarray(batches)[..., 0, 0, 0] + 1) * 127.5).astype(int)
  assert sorted(seen.ravel().tolist()) == image_ids(train)
  # Evaluation compares with the whole test split, which the subset never touches.
  evaluator = make_evaluator(config, train, extractor=IdentityFeatures())
  assert evaluator.real_features.shape == (12, 4)
  np.testing.assert_allclose(np.asarray(evaluator.real_features)[:, 0] * 255,
                             200 + np.arange(12), rtol=1e-6)


def test_a_train_subset_larger_than_the_split_or_smaller_than_a_batch_is_refused(tmp_path):
  folder = identity_folder(tmp_path)
  config = toolkit.tiny_config(folder, batch_size=4, train_subset=33, num_valid=8)
  with pytest.raises(ConfigError, match=r"--train_subset=33 is more than the 32 training "
                     r"examples of 'tiny' left by --num_valid=8; expected at most 32"):
    data.load_training_split(config.validate())
  assert data.load_training_split(dataclasses.replace(config, train_subset=32)
                                  ).num_examples == 32
  with pytest.raises(ConfigError, match=r"--train_subset=7 is invalid: expected at least "
                     r"one D batch, --batch_size x --pack = 8 examples"):
    dataclasses.replace(config, train_subset=7, pack=2).validate()
  with pytest.raises(ConfigError, match=r"--train_subset_seed=3 chooses the examples of "
                     r"--train_subset, but --train_subset=0"):
    dataclasses.replace(config, train_subset=0, train_subset_seed=3).validate()
