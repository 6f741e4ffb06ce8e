"""The variants that remedy mode collapse and instability, as their authors' code does
them: WGAN's critic schedule, PacGAN's packing, the unrolled GAN (jaxgan/steps.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan.config import Config
from jaxgan.runtime.compile import compile_once
from jaxgan.state import make_gan
from jaxgan.steps import make_steps, repeat_step

import toolkit

TOY_SHAPE = (1, 1, 2)
POINTS = np.random.default_rng(0).normal(size=(256,) + TOY_SHAPE).astype(np.float32)


def run_once(fn, *args):
  return compile_once(fn, *args)(*args)


def toy(**overrides):
  config = Config(dataset="toy_ring8", model="toy_mlp", batch_size=8, latent_dim=2,
                  num_steps=1, **overrides).validate()
  gan = make_gan(config, TOY_SHAPE)
  gan = gan._replace(generator=gan.generator.clone(hidden=(8,)),
                     discriminator=gan.discriminator.clone(hidden=(8,)))
  return config, gan, make_steps(config, gan, len(POINTS))


# --------------------------------------------------------------------------- WGAN
def authors_critic_updates(steps: int, diters: int) -> int:
  """The WGAN authors' main.py: Diters = 100 if gen_iterations < 25 or
  gen_iterations % 500 == 0 else opt.Diters, summed over the generator iterations."""
  return sum(100 if g < 25 or g % 500 == 0 else diters for g in range(steps))


@pytest.mark.parametrize("steps", [27, 502])
def test_the_wgan_critic_schedule_counts_the_authors_critic_updates(steps):
  _, gan, fns = toy(loss="wgan", optimizer="rmsprop", d_steps_schedule="wgan",
                    num_d_steps=5)
  state = jax.jit(gan.init)(jax.random.PRNGKey(0))
  state, _ = run_once(repeat_step(fns.train_step, steps), state, jnp.asarray(POINTS))
  assert int(state.step) == steps
  assert int(state.d.opt_state.count) == authors_critic_updates(steps, 5)
  assert int(state.g.opt_state.count) == steps


# --------------------------------------------------------------------------- PacGAN
def test_packing_feeds_d_m_samples_per_example_and_g_in_m_passes():
  config, gan, fns = toy(pack=3)
  state = jax.jit(gan.init)(jax.random.PRNGKey(0))
  # D's first layer sees the 3 packed samples of an example: 3 x 2 inputs.
  assert state.d.params["Dense_0"]["kernel"].shape == (6, 8)
  new, metrics = run_once(fns.train_step, state, jnp.asarray(POINTS))
  assert all(np.isfinite(float(v)) for v in metrics.values())
  # A packed real example holds samples i*B + b of the batch (B = 8).
  real = jnp.asarray(POINTS[:24, 0, 0])  # [m*B, 2]
  packed = jnp.concatenate(jnp.split(real, 3, axis=0), axis=-1)
  np.testing.assert_array_equal(packed[5], np.concatenate([POINTS[5, 0, 0],
                                                          POINTS[13, 0, 0],
                                                          POINTS[21, 0, 0]]))
  # batch_step with the m*B samples of one D update is the same step.
  idx_state = state
  from jaxgan import data, steps as steps_lib
  idx = data.batch_indices(steps_lib.data_key(idx_state), 0, len(POINTS), 24)
  batch = data.gather_batch(jnp.asarray(POINTS), idx, gan.pixel_range)
  got, _ = run_once(fns.batch_step, state, batch)
  toolkit.assert_trees_close(got, new, rtol=1e-5)


def test_packing_needs_an_unconditional_gan():
  with pytest.raises(Exception, match="--pack=2 cannot be combined with --conditional"):
    Config(pack=2, conditional=True, num_steps=1).validate()


# --------------------------------------------------------------------------- unrolled
@pytest.mark.parametrize("order", ["d_then_g", "simultaneous"])
def test_the_unrolled_g_loss_is_taken_against_d_after_k_more_of_its_updates(order):
  k = 2
  config, gan, fns = toy(unroll_steps=k, update_order=order)
  state = jax.jit(gan.init)(jax.random.PRNGKey(0))
  real = jnp.asarray(POINTS[:8])
  key = jax.random.PRNGKey(3)
  _, metrics, fake = run_once(fns.g_step, state, key, real)
  # By hand: K Adam steps of D on (real, fake), then G's loss on D_K. (One jitted
  # function: op by op, each of its ~100 operations would compile on its own.)
  def by_hand(state, key, real):
    z_key, drop_key, _ = jax.random.split(key, 3)
    unroll_key = jax.random.fold_in(drop_key, 1)
    variables = {"params": state.g.params, "batch_stats": state.g.batch_stats}
    fakes = gan.generator.apply(variables, gan.sample_noise(z_key, 8), train=True,
                                mutable=["batch_stats"])[0]

    def d_loss(params, j):
      real_key, fake_key, _ = jax.random.split(jax.random.fold_in(unroll_key, j), 3)
      d = lambda x, kk: gan.discriminator.apply({"params": params}, x, train=True,  # noqa: E731
                                                rngs={"dropout": kk})
      return gan.loss.d_loss(d(real, real_key), d(fakes, fake_key))

    params, opt_state = state.d.params, state.d.opt_state
    for j in range(k):
      updates, opt_state = gan.d_tx.update(jax.grad(d_loss)(params, j), opt_state,
                                           params)
      params = optax.apply_updates(params, updates)
    logits = gan.discriminator.apply({"params": params}, fakes, train=True,
                                     rngs={"dropout": drop_key})
    return fakes, gan.loss.g_loss(logits)

  fakes, g_loss = run_once(by_hand, state, key, real)
  np.testing.assert_allclose(fake, fakes, rtol=1e-6)
  assert float(metrics["g_loss"]) == pytest.approx(float(g_loss), rel=1e-5)
  # The gradient flows through the unrolled updates: G moves differently than without.
  _, _, plain = toy(update_order=order)
  unrolled_g, _, _ = run_once(fns.g_step, state, key, real)
  plain_g, _, _ = run_once(plain.g_step, state, key, real)
  diff = jax.tree_util.tree_map(lambda a, b: float(np.max(np.abs(a - b))),
                                toolkit.host_tree(unrolled_g.g.params),
                                toolkit.host_tree(plain_g.g.params))
  assert max(jax.tree_util.tree_leaves(diff)) > 0
  # A whole step composes with the update order.
  new, step_metrics = run_once(fns.train_step, state, jnp.asarray(POINTS))
  assert int(new.step) == 1
  assert all(np.isfinite(float(v)) for v in step_metrics.values())
