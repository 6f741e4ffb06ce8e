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


def test_samples_on_every_centre_cover_every_mode():
  p = toy.PROBLEMS["toy_ring8"]
  samples = np.repeat(p.centres, 25, axis=0)
  assert modes.evaluate(p, samples) == {"modes_covered": 8.0, "high_quality_pct": 100.0}


def test_a_mode_needs_min_count_high_quality_samples():
  assert modes.MIN_COUNT == 20
  p = toy.PROBLEMS["toy_ring8"]
  counts = [20] * 7 + [19]  # The last mode is one short of MIN_COUNT.
  samples = np.concatenate([np.repeat(c[None], n, 0) for c, n in zip(p.centres, counts)])
  assert modes.evaluate(p, samples) == {"modes_covered": 7.0, "high_quality_pct": 100.0}


def test_high_quality_means_within_three_sigma():
  centres = np.zeros((1, 2))
  samples = np.array([[0.059, 0.0], [0.061, 0.0], [0.0, -0.03], [1.0, 1.0]])
  m = modes.mode_metrics(samples, centres, std=0.02, min_count=1)
  assert m["high_quality_pct"] == pytest.approx(50.0)
  assert m["modes_covered"] == 1.0


def test_low_quality_samples_do_not_count_towards_a_mode():
  centres = np.array([[0.0, 0.0], [10.0, 0.0]])
  # Two samples near mode 0, two nearest to mode 0 but 4 sigma away.
  samples = np.array([[0.0, 0.0], [0.01, 0.0], [0.08, 0.0], [0.0, 0.08]])
  m = modes.mode_metrics(samples, centres, std=0.02, min_count=3)
  assert m == {"modes_covered": 0.0, "high_quality_pct": 50.0}
  assert modes.mode_metrics(samples, centres, std=0.02, min_count=2)[
      "modes_covered"] == 1.0


def test_far_samples_cover_nothing():
  p = toy.PROBLEMS["toy_grid25"]
  samples = np.full((100, 2), 1.0)  # Midway between four modes.
  assert modes.evaluate(p, samples) == {"modes_covered": 0.0, "high_quality_pct": 0.0}


def test_images_shaped_samples_are_flattened_to_points():
  p = toy.PROBLEMS["toy_ring8"]
  samples = np.repeat(p.centres, 20, axis=0).reshape(160, 1, 1, 2)  # As G outputs.
  assert modes.evaluate(p, samples) == {"modes_covered": 8.0, "high_quality_pct": 100.0}


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
