"""Evaluating training runs: a workdir's checkpoints, and the `--eval_every` hook.

Both write WORKDIR/eval/step_<N>.json (all results, see Evaluator.evaluate_images) and
return the numbers to log. Generator samples come from `eval_num_samples` noise vectors
drawn from the run's seed (stream jaxgan.rng.EVAL_NOISE), the same at every step,
so successive evaluations of one run differ by the generator only.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxgan import data, rng
from jaxgan.config import FIELDS, Config
from jaxgan.errors import EvalError
from jaxgan.eval.classifier import find_classifier
from jaxgan.eval.evaluator import Evaluator, scalars, write_results
from jaxgan.state import GAN, GANState, make_gan


def results_path(workdir: str, step: int | str) -> str:
  return os.path.join(workdir, "eval", f"step_{step}.json")


def make_evaluator(config: Config, train: data.Dataset | None = None,
                   extractor=None) -> Evaluator:
  """An Evaluator for config's dataset: the cached classifier (EvalError with the
  command to make one if there is none, or if it belongs to another dataset), the test
  split, and the Parzen validation images from `train` (loaded if not given and
  config.eval_parzen)."""
  extractor = extractor or find_classifier(config.data_name, config.classifier_dir)
  if train is None and config.eval_parzen:
    train = data.hold_out(data.load_dataset(config.dataset, config.data_dir, "train"),
                          config.num_valid)
  test = data.load_dataset(config.dataset, config.data_dir, "test")
  return Evaluator.for_dataset(extractor, train, test, config.eval_num_samples,
                               config.eval_parzen)


class GeneratorEval:
  """Evaluates GANStates of one configuration: `self(state, workdir)` -> results."""

  def __init__(self, config: Config, gan: GAN, sample: Callable[[GANState, jax.Array],
                                                                 jax.Array],
               evaluator: Evaluator):
    self.config, self.gan, self.evaluator = config, gan, evaluator
    sample = jax.jit(sample)
    if gan.num_classes:  # A conditional G: the samples cycle through the classes.
      self._sample = lambda state, z: sample(
          state, z, jnp.arange(z.shape[0], dtype=jnp.int32) % gan.num_classes)
    else:
      self._sample = sample
    self._key = rng.seed_stream(config.seed, rng.EVAL_NOISE)

  def __call__(self, state: GANState, workdir: str | None = None) -> dict[str, Any]:
    images = self.evaluator.generate(self._sample, state, self.gan.sample_noise,
                                     self.gan.pixel_range, self._key)
    results = self.evaluator.evaluate_images(images, seed=self.config.seed)
    step = int(jax.device_get(state.step))
    results.update(step=step, dataset=self.config.data_name, model=self.config.model)
    if workdir is not None:
      write_results(results_path(workdir, step), results)
    return results


def make_training_eval(config: Config, gan: GAN, sample, train: data.Dataset
                       ) -> Callable[[GANState, str], dict[str, float]] | None:
  """The `--eval_every` hook of a single run, or None when config.eval_every is 0.

  Made before training starts, so a missing classifier stops the run before the
  workdir is touched. The hook writes WORKDIR/eval/step_<N>.json and returns the
  scalars to log ('eval/fid', 'eval/kid', ...).
  """
  if not config.eval_every:
    return None
  evaluate = GeneratorEval(config, gan, sample, make_evaluator(config, train))
  return lambda state, workdir: scalars(evaluate(state, workdir))


# --------------------------------------------------------------------------- workdirs
def load_run_config(workdir: str, **overrides: Any) -> Config:
  """The Config a workdir was trained with (its config.json), with `overrides`
  (None values ignored). Keys this version does not know are ignored."""
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise EvalError(f"--workdir={workdir!r} has no config.json: expected the workdir "
                    "of a training run (python -m jaxgan.main --workdir=...).")
  with open(path) as f:
    saved = json.load(f)
  # JSON has no tuples: repeated flags (--sweep) come back as lists.
  kwargs = {k: tuple(v) if isinstance(v, list) else v
            for k, v in saved.items() if k in FIELDS}
  kwargs.update({k: v for k, v in overrides.items() if v is not None})
  return Config(**kwargs).validate()


def _restore(init: Any, workdir: str, step: int | None) -> tuple[Any, int]:
  """(state, step) of the checkpoint at `step` of workdir (None: the latest), restored
  into `init`'s structure; step 0 without a checkpoint is `init` itself."""
  from jaxgan.runtime.checkpoint import Checkpoints
  directory = os.path.join(workdir, "checkpoints")
  steps = []
  if os.path.isdir(directory):
    ckpts = Checkpoints(directory)
    steps = ckpts.all_steps()
    if (step is None and steps) or step in steps:
      step = ckpts.latest_step() if step is None else step
      state = ckpts.restore(init, step)
      ckpts.close()
      return state, step
    ckpts.close()
  if step == 0:
    return init, 0
  raise EvalError(f"--workdir={workdir!r} has no checkpoint"
                  + (f" at step {step}" if step is not None else "")
                  + f"; its checkpoints are at steps {sorted(steps)} (or --step=0 for "
                  "the untrained generator).")


def restore_state(config: Config, gan: GAN, workdir: str, step: int | None) -> GANState:
  """The state at `step` of workdir's checkpoints (None: the latest). Step 0 without a
  checkpoint is the untrained initial state from config.seed, as training starts."""
  from jaxgan.runtime.compile import initial_state
  return _restore(initial_state(gan, rng.seed_key(config.seed)), workdir, step)[0]


def _gan_and_sample(config: Config, evaluator: Evaluator):
  from jaxgan.steps import make_steps
  gan = make_gan(config, tuple(evaluator.extractor.image_shape),
                 int(evaluator.label_distribution.shape[0]))
  return gan, make_steps(config, gan, num_examples=1).sample


def evaluate_workdir(config: Config, workdir: str, step: int | None,
                     evaluator: Evaluator | None = None) -> dict[str, Any]:
  """Evaluates the checkpoint at `step` of a single run's workdir; writes
  eval/step_<step>.json."""
  evaluator = evaluator or make_evaluator(config)
  gan, sample = _gan_and_sample(config, evaluator)
  state = restore_state(config, gan, workdir, step)
  return GeneratorEval(config, gan, sample, evaluator)(state, workdir)


def evaluate_population_workdir(config: Config, workdir: str, step: int | None,
                                evaluator: Evaluator | None = None
                                ) -> list[dict[str, Any]]:
  """Evaluates every member of a sweep's checkpoint at `step`; writes
  eval/member_<i>/step_<step>.json and returns the members' results in member order
  (each member with the noise its single run would use, as during training)."""
  from jaxgan.config import sweep_members
  from jaxgan.eval.members import PopulationEval
  from jaxgan.runtime.compile import compile_once
  from jaxgan.sweep import population
  evaluator = evaluator or make_evaluator(config)
  members = sweep_members(config)
  gan, sample = _gan_and_sample(members[0].config, evaluator)
  init = compile_once(population.init_fn(gan, members))()
  state, step = _restore(init, workdir, step)
  pop_eval = PopulationEval(members, gan, sample, evaluator)
  return pop_eval.evaluate(pop_eval.generate(state.gan), step, config.data_name,
                           config.model, workdir)
