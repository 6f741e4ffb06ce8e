"""When the loop acts: every schedule has a period (0 = never) and also fires on the
last step (big_vision's `itstime`)."""

from __future__ import annotations


def due(step: int, every: int, total: int) -> bool:
  """True when a schedule of period `every` (0 = never) fires after `step` of `total`."""
  return every > 0 and (step % every == 0 or step == total)


def next_event(step: int, every: tuple[int, ...], total: int) -> int:
  """The first step after `step` at which any schedule in `every` fires (or `total`)."""
  candidates = [total] + [(step // e + 1) * e for e in every if e > 0]
  return min(candidates)
