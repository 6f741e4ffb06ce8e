"""Toy problems with exact answers, registered as datasets (`--dataset=toy_*`).

  toy_gauss1d  the paper's Figure 1: x ~ N(2, 0.5²) (1-D); see `python -m jaxgan.figure1`.
  toy_ring8    8 Gaussians at (cos 2πi/8, sin 2πi/8): radius 1, σ = 0.01
  toy_grid25   25 Gaussians at {-4, -2, 0, 2, 4}², σ = 0.05
The ring and the grid are exactly PacGAN's (Lin et al. 2018, the authors' code
fjxmlzn/PacGAN synthetic_data_experiments/*/config.py: the same means and σ, 100,000
training points). The unrolled-GAN demo (poolio/unrolled_gan) samples another ring of
radius 1 and σ 0.01: its angles are linspace(0, 2π, 8), whose last repeats the first,
so its 8 equally weighted components sit on 7 distinct points 2π/7 apart, the one at
angle 0 with weight 2/8; toy_ring8's 8 modes are 2π/8 apart, each of weight 1/8.

A toy dataset is a fixed float32 sample `[N, 1, 1, D]` (train: `train_size` points, test
10,000, drawn from a seed per split), with the mode index as label, so the ordinary loop,
flags and steps train on it; float data is used as is (data.to_pixels does not scale it).

Their mode metrics are in `jaxgan.eval.modes`; the loop logs them at every sample
step and draws a scatter plot (`jaxgan.runtime.writers.save_toy_scatter`).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from jaxgan.data.dataset import Dataset
from jaxgan.errors import DataError

TRAIN_SIZE, TEST_SIZE = 100_000, 10_000
_SPLIT_SEEDS = {"train": 0, "test": 1}


@dataclasses.dataclass(frozen=True)
class ToyProblem:
  """A mixture of isotropic Gaussians with equal weights: centres [M, D], std σ."""

  name: str
  centres: np.ndarray
  std: float
  train_size: int = TRAIN_SIZE

  @property
  def dim(self) -> int:
    return int(self.centres.shape[1])

  @property
  def num_modes(self) -> int:
    return int(self.centres.shape[0])

  def sample(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(points [n, D] float32, mode labels [n] int32), a pure function of seed."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, self.num_modes, n).astype(np.int32)
    points = self.centres[labels] + self.std * rng.standard_normal((n, self.dim))
    return points.astype(np.float32), labels

  def density(self, x: np.ndarray) -> np.ndarray:
    """p_data(x) for x [n, D]."""
    d2 = np.sum((x[:, None, :] - self.centres[None]) ** 2, axis=-1)
    norm = (2 * math.pi * self.std ** 2) ** (self.dim / 2)
    return np.mean(np.exp(-d2 / (2 * self.std ** 2)), axis=1) / norm


def _ring(n: int, radius: float) -> np.ndarray:
  angles = 2 * np.pi * np.arange(n) / n
  return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


PROBLEMS: dict[str, ToyProblem] = {
    "toy_gauss1d": ToyProblem("toy_gauss1d", np.array([[2.0]]), 0.5, train_size=50_000),
    "toy_ring8": ToyProblem("toy_ring8", _ring(8, 1.0), 0.01),
    "toy_grid25": ToyProblem(
        "toy_grid25",
        np.array([[x, y] for x in range(-4, 5, 2) for y in range(-4, 5, 2)], np.float64),
        0.05),
}


def is_toy(name: str) -> bool:
  return name in PROBLEMS


def get_problem(name: str) -> ToyProblem:
  if name not in PROBLEMS:
    raise DataError(f"--dataset={name!r} is not a toy dataset; expected one of "
                    f"{sorted(PROBLEMS)}.")
  return PROBLEMS[name]


def load(name: str, split: str) -> Dataset:
  """The fixed sample of a toy problem as a Dataset ([N, 1, 1, D] float32)."""
  problem = get_problem(name)
  n = problem.train_size if split == "train" else TEST_SIZE
  points, labels = problem.sample(n, _SPLIT_SEEDS[split])
  return Dataset(name=name, images=points.reshape(n, 1, 1, problem.dim),
                      labels=labels, num_classes=problem.num_modes)
