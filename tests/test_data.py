"""IDX reading (real and malformed files), tfds loading offline, and the batch order."""

import gzip
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import data
from jaxgan.errors import DataError

from conftest import FASHION_MNIST_DIR, idx_bytes, write_idx_dir


# ----------------------------------------------------------------------------- IDX
def test_reads_real_fashion_mnist_idx_files():
  assert os.path.isdir(FASHION_MNIST_DIR), (
      "Fashion-MNIST IDX files missing: apt-get install dataset-fashion-mnist")
  train = data.load_dataset("fashion_mnist", FASHION_MNIST_DIR, "train")
  test = data.load_dataset("fashion_mnist", FASHION_MNIST_DIR, "test")
  assert train.images.shape == (60000, 28, 28, 1) and train.images.dtype == np.uint8
  assert test.images.shape == (10000, 28, 28, 1)
  assert train.num_classes == 10
  # Fashion-MNIST is balanced: 6,000 training and 1,000 test images per class.
  assert np.bincount(train.labels).tolist() == [6000] * 10
  assert np.bincount(test.labels).tolist() == [1000] * 10
  assert 60 < train.images.mean() < 80  # Mean pixel of Fashion-MNIST's training set ≈ 72.9.


def test_gzipped_and_plain_idx_files_read_the_same(tmp_path):
  images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
  labels = np.array([1, 0], np.uint8)
  gz = data.load_idx_split(write_idx_dir(tmp_path / "gz", images, labels, gz=True), "train")
  plain = data.load_idx_split(write_idx_dir(tmp_path / "raw", images, labels, gz=False),
                              "train")
  np.testing.assert_array_equal(gz.images[..., 0], images)
  np.testing.assert_array_equal(plain.images, gz.images)
  assert plain.labels.tolist() == [1, 0] and plain.labels.dtype == np.int32


GOOD = idx_bytes(np.zeros((2, 3, 3), np.uint8))


@pytest.mark.parametrize("raw, message", [
    (b"\x00\x00\x08", "too short"),
    (b"\x08\x03\x00\x00" + GOOD[4:], "magic"),       # Wrong magic number.
    (b"\x00\x00\x07\x03" + GOOD[4:], "magic"),       # Unknown type code.
    (GOOD[:-1], "truncated"),                         # Data one byte short.
    (GOOD + b"\x00", "holds"),                        # Trailing bytes.
    (GOOD[:4] + b"\x00\x00\x00\x05" + GOOD[8:], "dimensions"),  # Dims disagree with data.
    (GOOD[:10], "truncated IDX header"),
    (b"\x1f\x8b" + b"not a gzip stream at all", "gzip"),
    (gzip.compress(GOOD)[:-8], "gzip"),               # Gzip stream cut short.
])
def test_malformed_idx_is_a_data_error(raw, message):
  with pytest.raises(DataError, match=message):
    data.parse_idx(raw, "IDX file x")


def test_malformed_idx_file_error_names_the_file(tmp_path):
  path = tmp_path / "train-images-idx3-ubyte"
  path.write_bytes(GOOD[:-3])
  with pytest.raises(DataError, match=str(path)):
    data.read_idx(str(path))


def test_missing_folder_or_file_is_a_data_error(tmp_path):
  with pytest.raises(DataError, match="is not a folder"):
    data.load_dataset("x", str(tmp_path / "nope"))
  (tmp_path / "empty").mkdir()
  with pytest.raises(DataError, match="train-images-idx3-ubyte"):
    data.load_dataset("x", str(tmp_path / "empty"))


def test_label_count_must_match_images(tmp_path):
  folder = write_idx_dir(tmp_path / "d", np.zeros((4, 2, 2), np.uint8),
                         np.zeros(3, np.uint8))
  with pytest.raises(DataError, match="labels"):
    data.load_dataset("x", folder)


# ----------------------------------------------------------------------------- tfds
def test_tfds_source_loads_a_whole_split_offline_with_mock_data():
  import tensorflow_datasets as tfds
  with tfds.testing.mock_data(num_examples=40):
    ds = data.load_dataset("mnist", "", "train")
  assert ds.images.shape == (40, 28, 28, 1) and ds.images.dtype == np.uint8
  assert ds.labels.shape == (40,) and ds.num_classes == 10


# ----------------------------------------------------------------------------- order
@pytest.mark.parametrize("n", [1, 2, 3, 10, 255, 256, 257, 60000])
def test_shuffled_positions_is_a_permutation(n):
  perm = np.asarray(data.shuffled_positions(jax.random.PRNGKey(n), jnp.arange(n), n))
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
  epoch = np.concatenate([data.batch_indices(key, b, n, batch) for b in range(6)])
  assert len(set(epoch.tolist())) == 96 and epoch.max() < n


def test_batch_order_is_a_pure_function_of_seed_and_batch_number():
  a = data.batch_indices(jax.random.PRNGKey(3), 41, 1000, 32)
  b = jax.jit(data.batch_indices, static_argnums=(2, 3))(jax.random.PRNGKey(3), 41, 1000,
                                                          32)
  c = data.batch_indices(jax.random.PRNGKey(4), 41, 1000, 32)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)


def test_pixels_follow_the_model_range():
  x = jnp.array([0, 255], jnp.uint8)
  np.testing.assert_allclose(data.to_pixels(x, (-1.0, 1.0)), [-1.0, 1.0])
  np.testing.assert_allclose(data.to_pixels(x, (0.0, 1.0)), [0.0, 1.0])
  np.testing.assert_array_equal(data.from_pixels(np.array([-1.0, 1.0]), (-1.0, 1.0)),
                                [0, 255])
