"""Population-based training (Jaderberg et al. 2017) inside one compiled population.

Every --pbt_interval steps, at a step where the sweep's ranking metric was just measured
(config validation holds the schedules to that), one round:
  1. rank: the healthy members by the metric (jaxgan.sweep.results' metric and
     direction: eval/fid when evaluated, modes_covered on toy data, ties to
     high_quality_pct, then to the member index); diverged members rank below all;
  2. choose: n = max(1, round(--pbt_fraction x P)) top members are the parents; every
     diverged member, then the worst healthy members up to n in all, are replaced
     (a diverged member always is, even beyond n, while a healthy parent exists);
  3. exploit: each replaced member takes a parent's whole state, drawn uniformly from
     the top n (jaxgan.sweep.population.exchange_fn: one gather on the member axis; it
     keeps its own run key);
  4. explore: each of its swept hyperparameters (the seed excepted) is, with
     probability --pbt_resample, drawn anew from that flag's --sweep values, else its
     parent's value times a factor drawn from --pbt_perturb; clipped to what the flag
     accepts.
The decisions (`decide`) are a pure function of (--seed, step, the recorded metrics,
the members' health and hyperparameters): their draws come from rng.pbt_generator, in
a fixed order, so a resumed run decides every round again exactly as the uninterrupted
run did. The exchange itself is jitted by the runtime (jaxgan.runtime.trainees).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Sequence

import numpy as np

from jaxgan import rng
from jaxgan.config import MAXIMA, Config, parse_pbt_perturb, parse_sweep
from jaxgan.errors import ConfigError
from jaxgan.sweep import lineage, results

# The largest float32 below 1: b1, b2 and momentum must stay in [0, 1).
_BELOW_ONE = float(np.nextafter(np.float32(1), np.float32(0)))
# What each explorable flag accepts (config validation): a perturbed value is clipped in.
BOUNDS = {"lr_g": (0.0, MAXIMA["lr_g"][0]), "lr_d": (0.0, MAXIMA["lr_d"][0]),
          "b1": (0.0, _BELOW_ONE), "b2": (0.0, _BELOW_ONE),
          "momentum": (0.0, _BELOW_ONE), "r1_gamma": (0.0, math.inf),
          "r2_gamma": (0.0, math.inf), "lecam_weight": (0.0, math.inf)}


@dataclasses.dataclass(frozen=True)
class Settings:
  """A population's PBT settings, read once from its (base) config."""

  interval: int
  fraction: float
  factors: tuple[float, ...]
  resample: float
  seed: int
  sweep_metric: str
  values: dict[str, tuple[float, ...]]  # explored name -> its --sweep values

  @classmethod
  def from_config(cls, config: Config) -> "Settings | None":
    """None when PBT is off (--pbt_interval=0)."""
    if not config.pbt_interval:
      return None
    swept = parse_sweep(config.sweep)
    return cls(interval=config.pbt_interval, fraction=config.pbt_fraction,
               factors=parse_pbt_perturb(config.pbt_perturb),
               resample=config.pbt_resample, seed=config.seed,
               sweep_metric=config.sweep_metric,
               values={n: tuple(float(v) for v in vals) for n, vals in swept.items()
                       if n in BOUNDS})

  @property
  def names(self) -> list[str]:
    return list(self.values)


def due(step: int, interval: int, num_steps: int) -> bool:
  """A round after `step`: every `interval` steps, never at the last step (nothing would
  train on the exchanged states)."""
  return interval > 0 and 0 < step < num_steps and step % interval == 0


@dataclasses.dataclass
class Round:
  """One round's decisions. parents: [P] int32 (i for a member that keeps its state);
  values: {name: [P] float32} every member's hyperparameters after the round; rows:
  its pbt_lineage.csv rows (jaxgan.sweep.lineage)."""

  step: int
  metric: str
  parents: np.ndarray
  values: dict[str, np.ndarray]
  rows: list[dict[str, Any]]

  @property
  def replaced(self) -> list[int]:
    return [int(i) for i in np.flatnonzero(self.parents != np.arange(len(self.parents)))]


def _metric_of(scalars: Mapping[int, Mapping[str, float]], index: int, name: str) -> float:
  value = scalars.get(index, {}).get(name, math.nan)
  return float(value) if value is not None else math.nan


def rank(scalars: Mapping[int, Mapping[str, float]], metric: str,
         healthy: Sequence[int]) -> list[int]:
  """The healthy members best first: by `metric` (its direction: results.
  higher_is_better), a non-finite value last, ties to results.TIE_BREAKS, then index."""
  def key(i: int) -> tuple:
    out = []
    for name in (metric, results.TIE_BREAKS.get(metric)):
      if name is None:
        continue
      v = _metric_of(scalars, i, name)
      finite = math.isfinite(v)
      sign = -1.0 if results.higher_is_better(name) else 1.0
      out += [not finite, sign * v if finite else 0.0]
    return (*out, i)
  return sorted(healthy, key=key)


def decide(settings: Settings, step: int, scalars: Mapping[int, Mapping[str, float]],
           diverged: Sequence[bool], current: Mapping[str, np.ndarray]) -> Round:
  """The round at `step` (module docstring). scalars: {member: the metrics logged at
  this step}, its healthy members' (a diverged member's are ignored); diverged: [P];
  current: {name: [P] float32} the hyperparameters in the state now.

  Raises ConfigError when no healthy member logged the ranking metric."""
  num = len(diverged)
  healthy = [i for i in range(num) if not diverged[i]]
  available = sorted({k for i in healthy for k in scalars.get(i, {})})
  metric = results.resolve_metric(settings.sweep_metric, available)
  if metric is None or not any(math.isfinite(_metric_of(scalars, i, metric))
                               for i in healthy):
    raise ConfigError(
        f"--pbt_interval={settings.interval}: no member logged the ranking metric "
        f"{settings.sweep_metric or 'eval/fid or modes_covered'} at step {step} (logged: "
        f"{available}); name a metric the evaluation computes with --sweep_metric.")
  ranked = rank(scalars, metric, healthy)
  n = max(1, int(round(settings.fraction * num)))
  top = ranked[:n]
  worst = [i for i in reversed(ranked) if i not in top]
  gone = [i for i in range(num) if diverged[i]]
  bottom = gone + worst[:max(0, n - len(gone))]

  gen = rng.pbt_generator(settings.seed, step)
  parents = np.arange(num, dtype=np.int32)
  values = {name: np.asarray(current[name], np.float32).copy()
            for name in settings.names}
  for i in bottom:
    parent = top[int(gen.integers(len(top)))]
    parents[i] = parent
    for name in settings.names:
      # Three draws per hyperparameter whatever the branch: the stream's use does not
      # depend on the outcome.
      u, factor_at, choice_at = gen.random(), gen.integers(len(settings.factors)), \
          gen.integers(len(settings.values[name]))
      if u < settings.resample:
        value = settings.values[name][int(choice_at)]
      else:
        value = float(current[name][parent]) * settings.factors[int(factor_at)]
      low, high = BOUNDS[name]
      values[name][i] = np.float32(min(max(value, low), high))

  rows = []
  for i in range(num):
    p = int(parents[i])
    action = (lineage.KEEP if p == i else
              lineage.REPLACE_DIVERGED if diverged[i] else lineage.EXPLOIT)
    row: dict[str, Any] = {
        "step": step, "member": i, "action": action, "parent": p,
        "metric_name": metric,
        "metric": _fmt(math.nan if diverged[i] else _metric_of(scalars, i, metric)),
        "parent_metric": _fmt(_metric_of(scalars, p, metric))}
    for name in settings.names:
      row[f"{name}_before"] = _fmt(float(current[name][i]))
      row[f"{name}_after"] = _fmt(float(values[name][i]))
    rows.append(row)
  return Round(step=step, metric=metric, parents=parents, values=values, rows=rows)


def _fmt(value: float) -> str:
  """Enough digits to read a float32 back exactly."""
  return f"{value:.9g}"


def describe(round_: Round, names: Sequence[str]) -> str:
  """The round's log line: each replaced member, its parent and its new values."""
  parts = []
  for i in round_.replaced:
    row = round_.rows[i]
    what = "diverged" if row["action"] == lineage.REPLACE_DIVERGED else row["metric"]
    changes = ", ".join(f"{n} {row[f'{n}_before']} -> {row[f'{n}_after']}"
                        for n in names)
    parts.append(f"member {i} ({what}) <- member {row['parent']} "
                 f"({row['parent_metric']})" + (f": {changes}" if changes else ""))
  return (f"PBT at step {round_.step}, by {round_.metric}: "
          + ("; ".join(parts) if parts else "no member replaced"))
