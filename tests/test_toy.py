"""Toy datasets and their mode metrics on constructed samples."""

import numpy as np
import pytest

from jaxgan import data, toy


def test_ring_is_eight_modes_of_radius_two():
  p = toy.PROBLEMS["toy_ring8"]
  assert p.num_modes == 8 and p.std == 0.02
  np.testing.assert_allclose(np.linalg.norm(p.centres, axis=1), 2.0)


def test_grid_is_25_modes():
  p = toy.PROBLEMS["toy_grid25"]
  assert p.num_modes == 25
  assert sorted(set(p.centres[:, 0])) == [-4, -2, 0, 2, 4]


def test_toy_dataset_loads_as_float_points_with_mode_labels():
  ds = data.load_dataset("toy_ring8", split="test")
  assert ds.images.shape == (toy.TEST_SIZE, 1, 1, 2) and ds.images.dtype == np.float32
  assert ds.num_classes == 8
  centres = toy.PROBLEMS["toy_ring8"].centres
  dist = np.linalg.norm(ds.images[:, 0, 0] - centres[ds.labels], axis=1)
  assert dist.max() < 6 * 0.02


def test_float_data_is_not_rescaled():
  import jax.numpy as jnp
  x = jnp.array([[-3.5, 7.0]])
  np.testing.assert_allclose(data.to_pixels(x, (-1.0, 1.0)), x)


def test_unknown_toy_dataset_is_a_clear_error():
  from jaxgan.errors import DataError
  with pytest.raises(DataError, match="toy_ring8"):
    data.load_dataset("toy_nope")


def test_samples_on_every_centre_cover_every_mode():
  p = toy.PROBLEMS["toy_ring8"]
  samples = np.repeat(p.centres, 25, axis=0)
  assert toy.evaluate(p, samples) == {"modes_covered": 8.0, "high_quality_pct": 100.0}


def test_a_mode_needs_min_count_high_quality_samples():
  p = toy.PROBLEMS["toy_ring8"]
  counts = [20] * 7 + [19]  # the last mode is one short of MIN_COUNT
  samples = np.concatenate([np.repeat(c[None], n, 0) for c, n in zip(p.centres, counts)])
  assert toy.evaluate(p, samples)["modes_covered"] == 7.0


def test_high_quality_means_within_three_sigma():
  centres = np.zeros((1, 2))
  samples = np.array([[0.059, 0.0], [0.061, 0.0], [0.0, -0.03], [1.0, 1.0]])
  m = toy.mode_metrics(samples, centres, std=0.02, min_count=1)
  assert m["high_quality_pct"] == pytest.approx(50.0)
  assert m["modes_covered"] == 1.0


def test_far_samples_cover_nothing():
  p = toy.PROBLEMS["toy_grid25"]
  samples = np.full((100, 2), 1.0)  # midway between four modes
  assert toy.evaluate(p, samples) == {"modes_covered": 0.0, "high_quality_pct": 0.0}


def test_scatter_writes_a_png(tmp_path):
  p = toy.PROBLEMS["toy_ring8"]
  path = str(tmp_path / "s.png")
  toy.scatter(path, p, np.repeat(p.centres, 3, axis=0), "t")
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
