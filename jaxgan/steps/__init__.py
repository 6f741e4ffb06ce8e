"""Pure training steps: the public import surface of jaxgan.

    gan = state.make_gan(config, image_shape)          # or state.gan_from_modules(G, D, ...)
    steps = make_steps(config, gan, num_examples)
    train_step = jax.jit(steps.train_step, donate_argnums=0)
    state, metrics = train_step(state, images_uint8)   # the whole split on the device
    state, metrics = jax.jit(steps.batch_step)(state, real)  # or batches you feed

* `d_step(state, real, rng, fake=None, labels=None) -> (state, metrics)`: one D update,
  G fixed. real: [B, H, W, C] float32 in the model's pixel range. fake: D's fake batch;
  when None it is generated from fresh noise with G in train mode (G is untouched).
* `g_step(state, rng, real=None, labels=None) -> (state, metrics, fake)`: one G update,
  D fixed; also returns the fakes it was computed on (PyTorch-GAN's g_then_d trains D on
  them). `real` is needed only by feature matching (G matches D's mean features on it)
  and unrolling (D's extra steps train on it).
* `train_step(state, images, labels=None) -> (state, metrics)`: one step of Algorithm 1
  in the configured `update_order` (k D updates and one G update), taking its k real
  batches from `images` ([N, H, W, C] uint8, the whole split on the device) by
  `data.batch_indices`; advances `state.step` by one. `labels` ([N] int32) only with
  --conditional.
* `batch_step(state, real, labels=None) -> (state, metrics)`: the same step on real
  batches the caller gives (an input pipeline of its own, data larger than the
  device): real [k, B, H, W, C] float in the pixel range (or [B, H, W, C] when k = 1),
  B = config.batch_size; labels [k, B] / [B] int32 with --conditional. Fed the batches
  train_step would gather, it computes exactly what train_step computes.
* `sample(state, z, labels=None) -> [B, H, W, C]`: G in eval mode (the EMA generator
  with --g_ema_decay).
* `guarded_train_step(state, images, labels, healthy) -> (state, metrics, nonfinite)`:
  train_step with the divergence guard a population member runs (`Gate`).
* `init(rng, images=None) -> state`: GAN.init's state, plus the run-time hyperparameters
  and the state of the objective terms that need them (`GANState.hparams`, `.aux`; both
  {} otherwise, so GAN.init's state serves every run without such terms).
metrics: {'d_loss', 'g_loss', 'd_real', 'd_fake'} scalars (+ 'gp' with WGAN-GP, + what
registered terms add). Every step is pure: jit-, vmap- and shard-able.

With --conditional, the fakes are generated for the real batch's labels.

D sees the real and the fake batch in two separate passes, so a D with batch-coupled
layers (BatchNorm, minibatch discrimination) normalises/compares each half on its own
statistics, never a real/fake mixture; D's BatchNorm running averages are updated by
both passes (real, then fake).

The step is built from parts, each chosen before tracing (so the traced functions hold
no Python branches on the config):
  settings.py  what a step reads, from the Config and the GAN (they must agree)
  nets.py      forward passes: G, G as D's input (packing), D (augmented, features)
  augment.py   what D sees: registered augmentations of D's inputs
  terms.py     D's loss + registered terms (gradient penalty), D's constraints
               (clipping), G's objective (adversarial, feature matching or the unrolled
               minimax value) + terms, the D G plays against (current or unrolled)
  gate.py      the finite check, an immutable pytree returned with each update
  updates.py   one D update, one G update
  orders.py    d_then_g, g_then_d, simultaneous; the critic schedules
  batches.py   the real batches (from the dataset, or the caller's)
  ema.py       G's EMA
Loss hyperparameters (`losses.LossHParams`: label smoothing, gradient-penalty weight,
clip value) enter through `loss_hparams(config)`: plain floats today, and the one place a
sweep swaps in array leaves. Randomness is derived from the state's run key by the
streams of `jaxgan.rng` (step key, data key). A run is therefore a pure function of
(config, seed, step).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax

from jaxgan.config import Config
from jaxgan.state import GAN, GANState
from jaxgan.steps import augment, batches, ema, orders, settings as settings_lib, terms
from jaxgan.steps import regularizers  # noqa: F401 (registers R1, R2 and LeCam)
from jaxgan.steps.batches import Feed, data_key
from jaxgan.steps.ema import ema_decay_at, ema_update
from jaxgan.steps.gate import (GUARD_CHECKS, UNGATED, Gate, Ungated,
                                   describe_nonfinite)
from jaxgan.steps.nets import DOut, Nets
from jaxgan.steps.settings import StepSettings, loss_hparams
from jaxgan.steps.updates import Parts, d_update, g_update, step_key

Array = jax.Array
Metrics = dict[str, Array]


class Steps(NamedTuple):
  d_step: Callable[..., tuple[GANState, Metrics]]
  g_step: Callable[..., tuple[GANState, Metrics, Array]]
  train_step: Callable[[GANState, Array], tuple[GANState, Metrics]]
  sample: Callable[[GANState, Array], Array]
  batch_step: Callable[..., tuple[GANState, Metrics]] | None = None
  # train_step with the divergence guard (Gate): (state, images, labels, healthy) ->
  # (state, metrics, nonfinite mask); updates that would be non-finite are discarded.
  guarded_train_step: Callable[..., tuple[GANState, Metrics, Array]] | None = None
  # init(rng, images=None) -> GANState: GAN.init's state plus what the objective terms
  # read (hparams) and keep (aux); the same as GAN.init's when no term needs either.
  init: Callable[..., GANState] | None = None


def make_parts(config: Config, gan: GAN) -> Parts:
  """The parts of `config`'s step for `gan` (jaxgan.steps.updates.Parts)."""
  s = settings_lib.resolve(config, gan)
  nets = Nets(gan, s, augment.make_augment(s, gan))
  d_terms = terms.active_terms(terms.D_TERMS, s, gan)
  g_terms = terms.active_terms(terms.G_TERMS, s, gan)
  d_objective = terms.make_d_objective(s, gan, nets, d_terms)
  d_constraint = terms.make_d_constraint(s, gan)
  g_objective, g_loss = terms.make_g_loss(s, gan, g_terms)
  return Parts(settings=s, gan=gan, nets=nets, d_objective=d_objective,
               d_constraint=d_constraint, g_objective=g_objective, g_loss=g_loss,
               adversary=terms.make_adversary(s, gan, d_objective, d_constraint),
               schedule=orders.SCHEDULES[s.d_steps_schedule](s.num_d_steps),
               order=orders.ORDERS[s.update_order], ema=ema.make_ema(s),
               terms=d_terms + g_terms)


def make_init(parts: Parts) -> Callable[..., GANState]:
  """`init(rng, images=None)`: GAN.init's state with the terms' hparams and aux."""
  def init(rng: Array, images: Array | None = None) -> GANState:
    hparams, aux = terms.initial_extras(parts.terms)
    return parts.gan.init(rng, images).replace(hparams=hparams, aux=aux)
  return init


def one_step(parts: Parts, state: GANState, batches_of_step, gate):
  """The step in the configured order, then G's EMA; state.step advances by one."""
  terms.check_extras(parts.terms, state.hparams, state.aux)
  state, metrics, gate = parts.order(parts, state, batches_of_step, gate)
  state = parts.ema.update(state, gate)
  return state.replace(step=state.step + 1), metrics, gate


def make_steps(config: Config, gan: GAN, num_examples: int,
               constrain_batch: Callable[[Array], Array] | None = None) -> Steps:
  """Builds the pure step functions of the module docstring.

  Args:
    config: the fields read are batch_size, num_d_steps (k), update_order,
      d_steps_schedule, pack, unroll_steps, feature_matching, label_smoothing,
      gp_weight, clip_value and g_ema_decay, plus those registered parts read (a
      `Config(batch_size=..., ...)` built in Python is enough; it is not validated here).
    gan: the static GAN (state.make_gan or state.gan_from_modules); it must agree with
      the config on the EMA and packing (a ValueError names both values).
    num_examples: N of the dataset train_step indexes (batch order: data.batch_indices).
    constrain_batch: optional, applied to each real batch [B, ...] (a population uses it
      to spread the batch over a device mesh's 'data' axis).
  Returns:
    Steps(d_step, g_step, train_step, sample, batch_step, guarded_train_step).
  """
  parts = make_parts(config, gan)
  feed = Feed(parts, num_examples, constrain_batch)

  def d_step(state, real, rng, fake=None, labels=None):
    terms.check_extras(parts.terms, state.hparams, state.aux)
    return d_update(parts, state, real, rng, fake, labels)[:2]

  def g_step(state, rng, real=None, labels=None):
    terms.check_extras(parts.terms, state.hparams, state.aux)
    return g_update(parts, state, rng, real, labels)[:3]

  def train_step(state, images, labels=None):
    return one_step(parts, state, feed.from_dataset(state, images, labels), UNGATED)[:2]

  def batch_step(state, real, labels=None):
    return one_step(parts, state, feed.from_caller(real, labels), UNGATED)[:2]

  def guarded_train_step(state, images, labels=None, healthy=True):
    state, metrics, gate = one_step(parts, state, feed.from_dataset(state, images, labels),
                                    Gate.start(healthy))
    return state, metrics, gate.nonfinite

  def sample(state: GANState, z: Array, labels: Array | None = None) -> Array:
    """G(z) in eval mode (BatchNorm running averages): [B, H, W, C] in pixel_range.

    With --g_ema_decay > 0 this is the EMA generator (samples and evaluation use it).
    With --conditional, `labels` [B] int32 chooses the classes.
    """
    return parts.nets.generate(parts.ema.generator(state), z, train=False, labels=labels)[0]

  return Steps(d_step=d_step, g_step=g_step, train_step=train_step, sample=sample,
               batch_step=batch_step, guarded_train_step=guarded_train_step,
               init=make_init(parts))


def repeat_step(train_step: Callable[..., tuple[GANState, Metrics]],
                num_steps: int) -> Callable[..., tuple[GANState, Metrics]]:
  """`num_steps` train steps in one traced function (lax.scan): one dispatch instead
  of many. Same signature as train_step; returns the final state and the metrics of
  the last step."""
  if num_steps == 1:
    return train_step

  def many(state: GANState, images: Array, labels: Array | None = None):
    def body(state, _):
      return train_step(state, images, labels)
    state, metrics = jax.lax.scan(body, state, None, length=num_steps)
    return state, jax.tree_util.tree_map(lambda m: m[-1], metrics)

  return many


__all__ = ["Steps", "make_steps", "make_parts", "make_init", "repeat_step", "one_step",
           "Parts",
           "StepSettings", "loss_hparams", "data_key", "step_key", "ema_decay_at",
           "ema_update", "Gate", "Ungated", "UNGATED", "GUARD_CHECKS",
           "describe_nonfinite", "DOut", "Nets", "Feed", "augment", "batches", "orders",
           "terms"]
