"""The one table of random streams: every key of a run derives from its seed here.

A run is a pure function of (config, seed, step): each stream below is a `fold_in` of one
of two roots, so adding a stream never shifts another, and a resumed run or a population
member draws exactly what the uninterrupted single run draws.

Root `seed_key = PRNGKey(seed)`:
  init                split(seed_key, 3) -> (G init, D init, the run key `state.rng`)
  SAMPLE_GRID  = 1    fixed noise of the sample grids and of the toy mode metrics
  EVAL_NOISE   = 2    the evaluation's generator noise (batch i: fold_in(key, i))
  KID_SUBSETS  = 3    KID's random subsets
  PBT          = 4    population-based training's decisions (who copies whom, which
                      factor), drawn on the host: `pbt_generator(seed, step)`, a numpy
                      Generator of (seed, PBT, step), so a resumed run draws them again
  FIGURE1_*    = 7-9  the Figure 1 program's plot noise, samples and D-only steps

Root `state.rng` (the run key, checkpointed in the state):
  DATA = 0            the batch order (data.batch_indices; epoch e: fold_in(key, e))
  STEP = 1            per-step keys: fold_in(fold_in(rng, STEP), step); within a step,
                      D update i uses fold_in(step_key, i) and the G update
                      fold_in(step_key, k)

Within one update the step's parts split its key further (jaxgan.steps): D's objective
takes (real pass, fake pass, terms) = split(key, 3), and each D term fold_in(terms key,
its stream): 0 the gradient penalty (the terms key itself), 1 R1, 2 R2, 3 LeCam
(steps/regularizers.py). G's update takes (noise, D pass, feature-matching target) =
split(key, 3); the target's key is also the key of the real batch's pass an objective
with a real term makes (the unrolled minimax value's `judge_real`); the unrolled D takes
fold_in(D pass key, 1) and G's terms fold_in(D pass key, 2). An augmentation of D's input
takes fold_in(that pass's dropout key, 1), the i-th active augmentation fold_in of that
by i, and each DiffAugment policy fold_in of that by its own stream (color 0,
translation 1, cutout 2). Each is a fold_in or split of the key above it, so a new
part's stream shifts no other.
"""

from __future__ import annotations

import jax
import numpy as np

SAMPLE_GRID = 1
EVAL_NOISE = 2
KID_SUBSETS = 3
PBT = 4
FIGURE1_PLOT = 7
FIGURE1_SAMPLES = 8
FIGURE1_D_ONLY = 9

DATA = 0
STEP = 1


def seed_key(seed: int | jax.Array) -> jax.Array:
  return jax.random.PRNGKey(seed)


def seed_stream(seed: int | jax.Array, stream: int) -> jax.Array:
  """The key of `stream` (SAMPLE_GRID, EVAL_NOISE, ...) of a seed."""
  return jax.random.fold_in(jax.random.PRNGKey(seed), stream)


def data_key(run_key: jax.Array) -> jax.Array:
  """The batch-order key of a run key (state.rng)."""
  return jax.random.fold_in(run_key, DATA)


def step_key(run_key: jax.Array, step: jax.Array | int) -> jax.Array:
  """The key of train step `step` of a run key (state.rng)."""
  return jax.random.fold_in(jax.random.fold_in(run_key, STEP), step)


def pbt_generator(seed: int, step: int) -> np.random.Generator:
  """The host-side stream of the PBT round at `step` of a population whose --seed is
  `seed`: decisions are a handful of draws, made where the ranked metrics are (the
  host), and a pure function of (seed, step)."""
  return np.random.default_rng(np.random.SeedSequence([int(seed), PBT, int(step)]))
