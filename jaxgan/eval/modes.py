"""Mode coverage and sample quality on the toy mixtures (`jaxgan.data.toy`), as PacGAN's
code measures them (fjxmlzn/PacGAN, synthetic_data_experiments/PacGAN/pacgan/
extensions.py, MetricLogger), on `EVAL_SAMPLES` = 2500 samples of G:

  * each sample is assigned to its nearest mode; it is *high-quality* when its distance
    to that mode is below 3σ (the code's `min_dis < dis_thre`, in units of σ);
  * a mode is *covered* when at least `MIN_COUNT` = 1 high-quality sample is assigned
    to it;
  * the *reverse KL* is KL(q ‖ u) of the modes' histogram of high-quality samples q
    (normalised) against the uniform distribution u of the true mixture: Σ_i q_i log(q_i
    M) over the covered modes (0 when the high-quality samples spread evenly; log M when
    they sit on one mode; inf when there is no high-quality sample).

`mode_metrics` returns `modes_covered` (a count), `high_quality_pct` (0..100) and
`reverse_kl` (nats).
"""

from __future__ import annotations

import math

import numpy as np

from jaxgan.data.toy import ToyProblem

EVAL_SAMPLES = 2500
MIN_COUNT = 1
HIGH_QUALITY_STDS = 3.0


def mode_histogram(samples: np.ndarray, centres: np.ndarray, std: float) -> np.ndarray:
  """[M] number of high-quality samples assigned to each mode; samples [n, D]."""
  samples = np.asarray(samples, np.float64).reshape(len(samples), -1)
  d2 = np.sum((samples[:, None, :] - centres[None]) ** 2, axis=-1)  # [n, M]
  nearest = np.argmin(d2, axis=1)
  good = np.sqrt(d2[np.arange(len(samples)), nearest]) / std < HIGH_QUALITY_STDS
  return np.bincount(nearest[good], minlength=len(centres))


def reverse_kl(counts: np.ndarray) -> float:
  """KL(q ‖ uniform) of a histogram of counts [M] (inf when it is empty)."""
  total = float(np.sum(counts))
  if total == 0:
    return math.inf
  q = np.asarray(counts, np.float64) / total
  q = q[q > 0]
  return float(np.sum(q * np.log(q * len(counts))))


def mode_metrics(samples: np.ndarray, centres: np.ndarray, std: float,
                 min_count: int = MIN_COUNT) -> dict[str, float]:
  """Mode coverage, sample quality and reverse KL of `samples` [n, D] (module docstring).

  Returns {'modes_covered', 'high_quality_pct', 'reverse_kl'}.
  """
  counts = mode_histogram(samples, centres, std)
  n = len(samples)
  return {"modes_covered": float(np.sum(counts >= min_count)),
          "high_quality_pct": 100.0 * float(np.sum(counts)) / n if n else 0.0,
          "reverse_kl": reverse_kl(counts)}


def evaluate(problem: ToyProblem, samples: np.ndarray) -> dict[str, float]:
  return mode_metrics(samples, problem.centres, problem.std)
