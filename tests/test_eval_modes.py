"""Mode metrics of the toy mixtures (jaxgan/eval/modes.py) on constructed samples, and
their scatter plot (jaxgan.runtime.writers.save_toy_scatter)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from jaxgan.data import toy
from jaxgan.eval import modes
from jaxgan.runtime.writers import save_toy_scatter

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def reference_metric_logger(points, means, std):
  """NumPy transcription of PacGAN's MetricLogger.do (the mode part): Mahalanobis
  distance to each mode with its diagonal variance, assigned to the nearest, counted
  when below dis_thre = 3; coverage = modes with a count > 0."""
  detail = np.zeros(len(means))
  for x in points:
    dis = [np.sqrt(np.sum((x - m) ** 2 / np.full(2, std ** 2))) for m in means]
    j = int(np.argmin(dis))
    if dis[j] < 3:
      detail[j] += 1
  return detail, float(len(np.nonzero(detail)[0])), float(np.sum(detail)) / len(points)


def test_mode_metrics_match_pacgans_metric_logger():
  p = toy.PROBLEMS["toy_ring8"]
  rng = np.random.default_rng(0)
  # Half the samples on three modes (some beyond 3 sigma), half anywhere.
  near = p.centres[rng.integers(0, 3, 200)] + rng.normal(0, 2.5 * p.std, (200, 2))
  points = np.concatenate([near, rng.uniform(-1.2, 1.2, (200, 2))])
  detail, covered, good = reference_metric_logger(points, p.centres, p.std)
  got = modes.evaluate(p, points)
  np.testing.assert_array_equal(modes.mode_histogram(points, p.centres, p.std), detail)
  assert got["modes_covered"] == covered
  assert got["high_quality_pct"] == pytest.approx(100 * good)
  q = detail[detail > 0] / detail.sum()
  assert got["reverse_kl"] == pytest.approx(float(np.sum(q * np.log(q * 8))))


def test_one_high_quality_sample_covers_a_mode():
  assert modes.MIN_COUNT == 1
  p = toy.PROBLEMS["toy_ring8"]
  samples = np.concatenate([np.repeat(p.centres[:7], 10, axis=0), p.centres[7:]])
  m = modes.evaluate(p, samples)
  assert (m["modes_covered"], m["high_quality_pct"]) == (8.0, 100.0)


def test_reverse_kl_is_zero_for_an_even_spread_and_log_m_on_one_mode():
  p = toy.PROBLEMS["toy_grid25"]
  assert modes.evaluate(p, np.repeat(p.centres, 4, axis=0))["reverse_kl"] == (
      pytest.approx(0.0, abs=1e-12))
  one = modes.evaluate(p, np.repeat(p.centres[:1], 100, axis=0))
  assert (one["modes_covered"], one["reverse_kl"]) == (1.0, pytest.approx(np.log(25)))
  # Two modes, counts 3:1: KL(q || u) = sum q log(q M).
  counts = np.array([3, 1] + [0] * 23)
  q = np.array([0.75, 0.25])
  assert modes.reverse_kl(counts) == pytest.approx(float(np.sum(q * np.log(q * 25))))


def test_high_quality_means_closer_than_three_sigma():
  centres = np.zeros((1, 2))
  samples = np.array([[0.059, 0.0], [0.06, 0.0], [0.0, -0.03], [1.0, 1.0]])
  m = modes.mode_metrics(samples, centres, std=0.02)
  assert m["high_quality_pct"] == pytest.approx(50.0)  # 3 sigma itself is not < 3.
  assert m["modes_covered"] == 1.0


def test_low_quality_samples_do_not_count_towards_a_mode():
  centres = np.array([[0.0, 0.0], [10.0, 0.0]])
  # Two samples near mode 0, two nearest to mode 0 but 4 sigma away.
  samples = np.array([[0.0, 0.0], [0.01, 0.0], [0.08, 0.0], [0.0, 0.08]])
  m = modes.mode_metrics(samples, centres, std=0.02, min_count=3)
  assert (m["modes_covered"], m["high_quality_pct"]) == (0.0, 50.0)
  assert modes.mode_metrics(samples, centres, std=0.02)["modes_covered"] == 1.0


def test_far_samples_cover_nothing_and_their_reverse_kl_is_infinite():
  p = toy.PROBLEMS["toy_grid25"]
  samples = np.full((100, 2), 1.0)  # Midway between four modes.
  assert modes.evaluate(p, samples) == {"modes_covered": 0.0, "high_quality_pct": 0.0,
                                        "reverse_kl": np.inf}


def test_images_shaped_samples_are_flattened_to_points():
  p = toy.PROBLEMS["toy_ring8"]
  samples = np.repeat(p.centres, 20, axis=0).reshape(160, 1, 1, 2)  # As G outputs.
  m = modes.evaluate(p, samples)
  assert (m["modes_covered"], m["high_quality_pct"]) == (8.0, 100.0)


@pytest.mark.parametrize("name", ["toy_ring8", "toy_gauss1d"])
def test_scatter_writes_a_png(tmp_path, name):
  p = toy.PROBLEMS[name]
  path = str(tmp_path / "s.png")
  save_toy_scatter(path, p, np.repeat(p.centres, 3, axis=0), "t")
  with open(path, "rb") as f:
    head = f.read(24)
  assert head[:8] == PNG_MAGIC
  # IHDR: a 4 x 4 inch figure at 80 dpi.
  assert struct.unpack(">II", head[16:24]) == (320, 320)
