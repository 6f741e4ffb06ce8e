"""Evaluating a run's generators: one configuration (`GeneratorEval`, a single run) or
every member of a population at once (`PopulationEval`), with the Evaluator of the run's
dataset (`make_evaluator`). The training loop's --eval_every hook and the evaluation of a
workdir's checkpoint (jaxgan.runtime.evaluation) both come here, through the trainee
(jaxgan.runtime.trainees).

Generator samples come from `eval_num_samples` noise vectors drawn from the run's seed
(stream jaxgan.rng.EVAL_NOISE), the same at every step, so successive evaluations of one
run differ by the generator only. A population's members are sampled in one vmapped
program per noise batch; the metrics (FID, KID, IS, modes, Parzen) are then the
Evaluator's, member by member. Member i uses exactly the noise a single run with member
i's config would (key EVAL_NOISE of seed i, batches of `GENERATE_BATCH`), so its numbers
equal that single run's evaluation of the same parameters, up to float reassociation in
the batched sampling.

Results go to WORKDIR/eval/step_<N>.json (a single run) or
WORKDIR/eval/member_<i>/step_<N>.json (the Evaluator's keys plus step, dataset, model,
and for a member its index and swept hyperparameters).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan import data, rng
from jaxgan.config import Config
from jaxgan.eval.classifier import find_classifier
from jaxgan.eval.evaluator import Evaluator, scalars, write_results
from jaxgan.state import GAN, GANState

GENERATE_BATCH = 1000  # Evaluator.generate's default batch: the same noise draws.


def results_path(workdir: str, step: int | str) -> str:
  """A single run's results of `step`."""
  return os.path.join(workdir, "eval", f"step_{step}.json")


def member_results_path(workdir: str, member: int, step: int) -> str:
  return os.path.join(workdir, "eval", f"member_{member}", f"step_{step}.json")


def make_evaluator(config: Config, train: data.Dataset | None = None,
                   extractor=None) -> Evaluator:
  """An Evaluator for config's dataset: the cached classifier (EvalError with the
  command to make one if there is none, or if it belongs to another dataset), or with
  --feature_network=inception pytorch-fid's Inception from --inception_weights (the
  mode statistics then on the classifier when one is cached, else none), the test
  split, and the Parzen validation images from `train` (loaded if not given and
  config.eval_parzen)."""
  mode_extractor = None
  if extractor is None and config.feature_network == "inception":
    from jaxgan.errors import EvalError
    from jaxgan.eval.inception import InceptionExtractor
    extractor = InceptionExtractor.from_file(config.inception_weights)
    try:  # The mode statistics count the dataset's classes: its classifier's.
      mode_extractor = find_classifier(config.data_name, config.classifier_dir)
    except EvalError:
      mode_extractor = None  # No classifier: no mode statistics.
  extractor = extractor or find_classifier(config.data_name, config.classifier_dir)
  if train is None and config.eval_parzen:
    train = data.hold_out(data.load_dataset(config.dataset, config.data_dir, "train"),
                          config.num_valid)
  test = data.load_dataset(config.dataset, config.data_dir, "test")
  return Evaluator.for_dataset(extractor, train, test, config.eval_num_samples,
                               config.eval_parzen, mode_extractor)


class GeneratorEval:
  """Evaluates GANStates of one configuration: `self(state, workdir)` -> results (the
  Evaluator's, plus step, dataset and model), written to results_path when a workdir
  is given."""

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


class PopulationEval:
  """Evaluates every member of a population state ([P, ...] leaves).

  `generate(state)` is a collective (every process of a multi-process run calls it);
  `evaluate(images, step, workdir)` is host work (process 0 only).
  """

  def __init__(self, members: Sequence[Any], gan: GAN,
               sample: Callable[[GANState, jax.Array], jax.Array], evaluator: Evaluator,
               out_sharding: Any = None):
    """members: config.Member list; sample: steps.sample (one member);
    out_sharding: where the sampled images go (replicated, so process 0 can read them)."""
    self.members, self.gan, self.evaluator = list(members), gan, evaluator
    seeds = np.array([m.config.seed for m in self.members], np.uint32)
    lo, hi = gan.pixel_range

    def batch(state: GANState, index: jax.Array) -> jax.Array:
      def one(member_state, seed):
        key = rng.seed_stream(seed, rng.EVAL_NOISE)
        z = gan.sample_noise(jax.random.fold_in(key, index), GENERATE_BATCH)
        # A conditional G cycles through the classes, as a single run's evaluation.
        labels = ((jnp.arange(GENERATE_BATCH, dtype=jnp.int32) % gan.num_classes,)
                  if gan.num_classes else ())
        # Evaluator.generate's mapping to [0, 1], per batch (elementwise: same values).
        return jnp.clip((sample(member_state, z, *labels) - lo) / (hi - lo), 0.0, 1.0)
      return jax.vmap(one)(state, jnp.asarray(seeds))

    self._batch = jax.jit(batch, out_shardings=out_sharding)

  def generate(self, state: GANState) -> np.ndarray:
    """[P, num_samples, H, W, C] float32 in [0, 1] on the host."""
    n = self.evaluator.num_samples
    parts = [np.asarray(self._batch(state, np.int32(i)))[:, :n - start]
             for i, start in enumerate(range(0, n, GENERATE_BATCH))]
    return np.concatenate(parts, axis=1)

  def evaluate(self, images: np.ndarray, step: int, dataset: str, model: str,
               workdir: str | None = None) -> list[dict[str, Any]]:
    """The Evaluator's results of each member's images (written to its JSON when a
    workdir is given), in member order."""
    out = []
    for m in self.members:
      results = self.evaluator.evaluate_images(images[m.index], seed=m.config.seed)
      results.update(step=int(step), dataset=dataset, model=model, member=m.index,
                     hparams=dict(m.hparams))
      if workdir is not None:
        write_results(member_results_path(workdir, m.index, step), results)
      out.append(results)
    return out


def stack_scalars(results: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
  """Per-member results -> {'eval/<name>': [P]} for the scalars every member has."""
  per_member = [scalars(r) for r in results]
  keys = set.intersection(*(set(s) for s in per_member)) if per_member else set()
  return {k: np.array([s[k] for s in per_member], np.float64) for k in sorted(keys)}
