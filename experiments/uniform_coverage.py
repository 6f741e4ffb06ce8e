"""The modes a share of high-quality samples can cover: beside the remedy table's counts.

PacGAN's mode metric (jaxgan.eval.modes) draws 2,500 samples of G and counts a mode as
covered when one high-quality sample (within 3σ of it) lands on it. With n high-quality
samples, a generator that spreads them uniformly over the M modes covers on average

    E[covered] = M · (1 − (1 − 1/M)^n),

and any other spread of the same n covers fewer on average (Σ_i 1 − (1 − q_i)^n is
concave in the modes' shares q, largest at q = 1/M). So a row whose samples are 1-3 %
high-quality cannot be expected to cover every mode whatever it does: on the grid,
1.2 % of 2,500 is 30 samples, and evenly spread they cover 17.7 of the 25 modes on
average. n is taken as round(pct / 100 · 2,500); for a table's mean over members this
is an upper bound on the members' mean bound as well (the bound is concave in n).

Usage (the remedy table's grid rows, say):
    python experiments/uniform_coverage.py --modes=25 1.6 2.9 3.0
"""

from __future__ import annotations

import argparse

SAMPLES = 2500  # jaxgan.eval.modes.EVAL_SAMPLES, as PacGAN's MetricLogger.


def uniform_coverage(num_modes: int, num_high_quality: int) -> float:
  """Expected modes covered by `num_high_quality` samples, each on one of `num_modes`
  modes uniformly at random."""
  return num_modes * (1.0 - (1.0 - 1.0 / num_modes) ** num_high_quality)


def high_quality_count(pct: float, samples: int = SAMPLES) -> int:
  return round(pct / 100.0 * samples)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--modes", type=int, required=True, help="8 (ring) or 25 (grid)")
  parser.add_argument("--samples", type=int, default=SAMPLES)
  parser.add_argument("pct", type=float, nargs="+", help="% high-quality samples")
  args = parser.parse_args()
  for pct in args.pct:
    n = high_quality_count(pct, args.samples)
    print(f"{pct:g} % of {args.samples} = {n} high-quality samples: evenly spread, "
          f"{uniform_coverage(args.modes, n):.1f} of {args.modes} modes")


if __name__ == "__main__":
  main()
