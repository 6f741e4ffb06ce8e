"""Pure training steps: the public import surface of jaxgan.

    gan = state.make_gan(config, image_shape)
    steps = make_steps(config, gan, num_examples)
    train_step = jax.jit(steps.train_step, donate_argnums=0)
    state, metrics = train_step(state, images_uint8)

* `d_step(state, real, rng, fake=None) -> (state, metrics)`: one D update, G fixed.
  real: [B, H, W, C] float32 in the model's pixel range. fake: D's fake batch; when
  None it is generated from fresh noise with G in train mode (G's state is untouched).
* `g_step(state, rng) -> (state, metrics, fake)`: one G update, D fixed; also returns the
  fakes it was computed on (PyTorch-GAN's g_then_d trains D on them).
* `train_step(state, images) -> (state, metrics)`: one step of Algorithm 1 in the
  configured `update_order`, taking batches from `images` ([N, H, W, C] uint8, the whole
  split on the device) by `data.batch_indices`; advances `state.step` by one.

Everything that depends on the config (model, loss, order, k) is resolved here, before
tracing, so the traced functions hold no Python branches on the config. Randomness is
derived from the state: step key = fold_in(fold_in(rng, 1), step); data key =
fold_in(rng, 0). A run is therefore a pure function of (config, seed, step).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxgan import data
from jaxgan.config import Config
from jaxgan.state import GAN, GANState, NetState

Array = jax.Array
Metrics = dict[str, Array]


class Steps(NamedTuple):
  d_step: Callable[..., tuple[GANState, Metrics]]
  g_step: Callable[..., tuple[GANState, Metrics, Array]]
  train_step: Callable[[GANState, Array], tuple[GANState, Metrics]]
  sample: Callable[[GANState, Array], Array]


def data_key(state: GANState) -> Array:
  return jax.random.fold_in(state.rng, 0)


def step_key(state: GANState) -> Array:
  return jax.random.fold_in(jax.random.fold_in(state.rng, 1), state.step)


def _apply_updates(net: NetState, grads, tx: optax.GradientTransformation,
                   batch_stats) -> NetState:
  updates, opt_state = tx.update(grads, net.opt_state, net.params)
  return net.replace(params=optax.apply_updates(net.params, updates),
                     opt_state=opt_state, batch_stats=batch_stats)


def make_steps(config: Config, gan: GAN, num_examples: int) -> Steps:
  """Builds the pure step functions for `config` (see the module docstring)."""
  k = config.num_d_steps
  batch_size = config.batch_size
  loss = gan.loss

  def generate(g: NetState, z: Array, train: bool):
    """G(z) -> (images, new batch_stats); train mode uses and updates batch statistics."""
    variables = {"params": g.params, "batch_stats": g.batch_stats}
    if not train:
      return gan.generator.apply(variables, z, train=False), g.batch_stats
    images, mutated = gan.generator.apply(variables, z, train=True,
                                          mutable=["batch_stats"])
    return images, mutated.get("batch_stats", g.batch_stats)

  def discriminate(d_params, d: NetState, x: Array, rng: Array) -> Array:
    """D(x) logits in train mode (dropout on); D's BatchNorm, if any, uses batch stats."""
    variables = {"params": d_params, "batch_stats": d.batch_stats}
    logits, _ = gan.discriminator.apply(variables, x, train=True,
                                        rngs={"dropout": rng}, mutable=["batch_stats"])
    return logits

  def d_step(state: GANState, real: Array, rng: Array, fake: Array | None = None):
    z_key, drop_key = jax.random.split(rng)
    if fake is None:
      fake, _ = generate(state.g, gan.sample_noise(z_key, real.shape[0]), train=True)
    fake = jax.lax.stop_gradient(fake)
    both = jnp.concatenate([real, fake], axis=0)

    def objective(d_params):
      # One D pass over [real; fake], as one batch: D has no batch-coupled layers here.
      logits = discriminate(d_params, state.d, both, drop_key)
      real_logits, fake_logits = jnp.split(logits, 2)
      return loss.d_loss(real_logits, fake_logits), (real_logits, fake_logits)

    (d_loss, (real_logits, fake_logits)), grads = jax.value_and_grad(
        objective, has_aux=True)(state.d.params)
    d = _apply_updates(state.d, grads, gan.d_tx, state.d.batch_stats)
    metrics = {"d_loss": d_loss,
               "d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
               "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits))}
    return state.replace(d=d), metrics

  def g_step(state: GANState, rng: Array):
    z_key, drop_key = jax.random.split(rng)
    z = gan.sample_noise(z_key, batch_size)

    def objective(g_params):
      fake, batch_stats = generate(state.g.replace(params=g_params), z, train=True)
      fake_logits = discriminate(state.d.params, state.d, fake, drop_key)
      return loss.g_loss(fake_logits), (fake, batch_stats)

    (g_loss, (fake, batch_stats)), grads = jax.value_and_grad(
        objective, has_aux=True)(state.g.params)
    g = _apply_updates(state.g, grads, gan.g_tx, batch_stats)
    return state.replace(g=g), {"g_loss": g_loss}, fake

  def real_batch(state: GANState, images: Array, i: int) -> Array:
    idx = data.batch_indices(data_key(state), state.step * k + i, num_examples,
                             batch_size)
    return data.gather_batch(images, idx, gan.pixel_range)

  def d_then_g(state: GANState, images: Array):
    key = step_key(state)
    for i in range(k):
      state, d_metrics = d_step(state, real_batch(state, images, i),
                                jax.random.fold_in(key, i))
    state, g_metrics, _ = g_step(state, jax.random.fold_in(key, k))
    return state, {**d_metrics, **g_metrics}

  def g_then_d(state: GANState, images: Array):
    # PyTorch-GAN's order: G first; D then trains on the fakes G made before its update.
    key = step_key(state)
    state, g_metrics, fake = g_step(state, jax.random.fold_in(key, k))
    for i in range(k):
      state, d_metrics = d_step(state, real_batch(state, images, i),
                                jax.random.fold_in(key, i), fake if i == 0 else None)
    return state, {**d_metrics, **g_metrics}

  def simultaneous(state: GANState, images: Array):
    # The paper's code (AdversaryCost2): both gradients from the same minibatch and the
    # same fakes, then both applied. stop_gradient routes each loss to its own player.
    key = step_key(state)
    z_key, drop_key = jax.random.split(jax.random.fold_in(key, 0))
    real = real_batch(state, images, 0)
    z = gan.sample_noise(z_key, batch_size)

    def objective(g_params, d_params):
      fake, batch_stats = generate(state.g.replace(params=g_params), z, train=True)
      both = jnp.concatenate([real, jax.lax.stop_gradient(fake)], axis=0)
      real_logits, fake_logits = jnp.split(
          discriminate(d_params, state.d, both, drop_key), 2)
      # Same dropout key: G's loss sees the same D(G(z)) as D's loss does.
      g_fake_logits = discriminate(jax.lax.stop_gradient(d_params), state.d,
                                   jnp.concatenate([real, fake], axis=0), drop_key)[
                                       batch_size:]
      d_loss = loss.d_loss(real_logits, fake_logits)
      g_loss = loss.g_loss(g_fake_logits)
      return d_loss + g_loss, (d_loss, g_loss, real_logits, fake_logits, batch_stats)

    (_, (d_loss, g_loss, real_logits, fake_logits, batch_stats)), (g_grads, d_grads) = (
        jax.value_and_grad(objective, argnums=(0, 1), has_aux=True)(
            state.g.params, state.d.params))
    g = _apply_updates(state.g, g_grads, gan.g_tx, batch_stats)
    d = _apply_updates(state.d, d_grads, gan.d_tx, state.d.batch_stats)
    metrics = {"d_loss": d_loss, "g_loss": g_loss,
               "d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
               "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits))}
    return state.replace(g=g, d=d), metrics

  order = {"d_then_g": d_then_g, "g_then_d": g_then_d,
           "simultaneous": simultaneous}[config.update_order]

  def train_step(state: GANState, images: Array):
    state, metrics = order(state, images)
    return state.replace(step=state.step + 1), metrics

  def sample(state: GANState, z: Array) -> Array:
    """G(z) in eval mode (BatchNorm running averages): [B, H, W, C] in pixel_range."""
    return generate(state.g, z, train=False)[0]

  return Steps(d_step=d_step, g_step=g_step, train_step=train_step, sample=sample)


def repeat_step(train_step: Callable[[GANState, Array], tuple[GANState, Metrics]],
                num_steps: int) -> Callable[[GANState, Array], tuple[GANState, Metrics]]:
  """`num_steps` train steps in one traced function (lax.scan): one dispatch instead
  of many. Returns the final state and the metrics of the last step."""
  if num_steps == 1:
    return train_step

  def many(state: GANState, images: Array):
    def body(state, _):
      return train_step(state, images)
    state, metrics = jax.lax.scan(body, state, None, length=num_steps)
    return state, jax.tree_util.tree_map(lambda m: m[-1], metrics)

  return many
