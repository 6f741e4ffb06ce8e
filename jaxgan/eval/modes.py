"""Mode coverage and sample quality on the toy mixtures (`jaxgan.data.toy`).

Standard measures (VEEGAN, PacGAN), on `EVAL_SAMPLES` = 2500 samples of G:
  * a sample is *high-quality* when it lies within 3σ of its nearest mode's centre;
  * a mode is *covered* when at least `MIN_COUNT` = 20 high-quality samples are nearest
    to it.
`mode_metrics` returns `modes_covered` (a count) and `high_quality_pct` (0..100).
"""

from __future__ import annotations

import numpy as np

from jaxgan.data.toy import ToyProblem

EVAL_SAMPLES = 2500
MIN_COUNT = 20


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

