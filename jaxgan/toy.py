"""Toy problems with exact answers, registered as datasets (`--dataset=toy_*`).

  toy_gauss1d  the paper's Figure 1: x ~ N(2, 0.5²) (1-D); see jaxgan/figure1.py.
  toy_ring8    8 Gaussians on a circle of radius 2, σ = 0.02 (Metz et al. 2017,
               "Unrolled GANs"; Srivastava et al. 2017, VEEGAN).
  toy_grid25   25 Gaussians at {-4, -2, 0, 2, 4}², σ = 0.05 (Lin et al. 2018, PacGAN).

A toy dataset is a fixed float32 sample `[N, 1, 1, D]` (50,000 train / 10,000 test
points, drawn from a seed per split), with the mode index as label, so the ordinary loop,
flags and steps train on it; float data is used as is (data.to_pixels does not scale it).

Standard measures (VEEGAN, PacGAN), on `EVAL_SAMPLES` = 2500 samples of G:
  * a sample is *high-quality* when it lies within 3σ of its nearest mode's centre;
  * a mode is *covered* when at least `MIN_COUNT` = 20 high-quality samples are nearest
    to it (PacGAN's threshold for 2500 samples).
`mode_metrics` returns `modes_covered` (a count) and `high_quality_pct` (0..100); the
loop logs them at every sample step with the other metrics and draws `scatter`.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

EVAL_SAMPLES = 2500
MIN_COUNT = 20
TRAIN_SIZE, TEST_SIZE = 50_000, 10_000
_SPLIT_SEEDS = {"train": 0, "test": 1}


@dataclasses.dataclass(frozen=True)
class ToyProblem:
  """A mixture of isotropic Gaussians with equal weights: centres [M, D], std σ."""

  name: str
  centres: np.ndarray
  std: float

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
    "toy_gauss1d": ToyProblem("toy_gauss1d", np.array([[2.0]]), 0.5),
    "toy_ring8": ToyProblem("toy_ring8", _ring(8, 2.0), 0.02),
    "toy_grid25": ToyProblem(
        "toy_grid25",
        np.array([[x, y] for x in range(-4, 5, 2) for y in range(-4, 5, 2)], np.float64),
        0.05),
}


def is_toy(name: str) -> bool:
  return name in PROBLEMS


def get_problem(name: str) -> ToyProblem:
  from jaxgan.errors import DataError
  if name not in PROBLEMS:
    raise DataError(f"--dataset={name!r} is not a toy dataset; expected one of "
                    f"{sorted(PROBLEMS)}.")
  return PROBLEMS[name]


def load(name: str, split: str):
  """The fixed sample of a toy problem as a data.Dataset ([N, 1, 1, D] float32)."""
  from jaxgan import data
  problem = get_problem(name)
  n = TRAIN_SIZE if split == "train" else TEST_SIZE
  points, labels = problem.sample(n, _SPLIT_SEEDS[split])
  return data.Dataset(name=name, images=points.reshape(n, 1, 1, problem.dim),
                      labels=labels, num_classes=problem.num_modes)


def mode_metrics(samples: np.ndarray, centres: np.ndarray, std: float,
                 min_count: int = MIN_COUNT) -> dict[str, float]:
  """Mode coverage and sample quality of `samples` [n, D] against the mixture's modes.

  Returns {'modes_covered': number of modes holding >= min_count high-quality samples,
  'high_quality_pct': 100 · fraction of samples within 3·std of their nearest centre}.
  """
  samples = np.asarray(samples, np.float64).reshape(len(samples), -1)
  d2 = np.sum((samples[:, None, :] - centres[None]) ** 2, axis=-1)  # [n, M]
  nearest = np.argmin(d2, axis=1)
  good = np.sqrt(d2[np.arange(len(samples)), nearest]) <= 3 * std
  counts = np.bincount(nearest[good], minlength=len(centres))
  return {"modes_covered": float(np.sum(counts >= min_count)),
          "high_quality_pct": 100.0 * float(np.mean(good)) if len(samples) else 0.0}


def evaluate(problem: ToyProblem, samples: np.ndarray) -> dict[str, float]:
  return mode_metrics(samples, problem.centres, problem.std)


def scatter(path: str, problem: ToyProblem, samples: np.ndarray,
            title: str = "") -> None:
  """Draws G's samples over the modes (2-D), or their histogram over p_data (1-D)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  samples = np.asarray(samples, np.float64).reshape(len(samples), -1)
  fig, ax = plt.subplots(figsize=(4, 4), dpi=80)
  if problem.dim == 1:
    lo = float(problem.centres.min() - 4 * problem.std - 1)
    hi = float(problem.centres.max() + 4 * problem.std + 1)
    xs = np.linspace(lo, hi, 400)[:, None]
    ax.plot(xs[:, 0], problem.density(xs), "k-", label="p_data")
    ax.hist(samples[:, 0], bins=60, range=(lo, hi), density=True, color="g",
            alpha=0.5, label="G samples")
    ax.legend(loc="upper right", fontsize=8)
  else:
    ax.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:green", alpha=0.4,
               label="G samples")
    ax.scatter(problem.centres[:, 0], problem.centres[:, 1], s=30, c="k", marker="x",
               label="modes")
    span = float(np.abs(problem.centres).max() + 1.5)
    ax.set_xlim(-span, span)
    ax.set_ylim(-span, span)
    ax.set_aspect("equal")
  ax.set_title(title, fontsize=9)
  fig.tight_layout()
  import os
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  tmp = path + ".tmp.png"
  fig.savefig(tmp)
  plt.close(fig)
  os.replace(tmp, path)
