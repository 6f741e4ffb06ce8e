"""The variants that remedy mode collapse and instability, as their authors' code does
them: WGAN's critic schedule, PacGAN's packing and epochs, the unrolled GAN's objectives
(jaxgan/steps/), and the bound the remedy table reads its mode counts beside."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan import data, steps as steps_lib
from jaxgan.config import Config
from jaxgan.runtime.compile import compile_once
from jaxgan.steps import batches
from jaxgan.state import make_gan
from jaxgan.steps import make_steps, repeat_step

import toolkit
from test_steps import assert_updates_close

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
  # A packed real example b holds samples b, B + b and 2B + b of the batch (B = 8).
  real = POINTS[:24, 0, 0]  # [m*B, 2]
  packed = np.asarray(batches.pack_batch(jnp.asarray(real), 3))
  assert packed.shape == (8, 6)
  for b in range(8):
    np.testing.assert_array_equal(packed[b], [*real[b], *real[8 + b], *real[16 + b]])
  # batch_step with the m*B samples of one D update is the same step.
  idx = data.batch_indices(steps_lib.data_key(state), 0, len(POINTS), 24)
  batch = data.gather_batch(jnp.asarray(POINTS), idx, gan.pixel_range)
  got, _ = run_once(fns.batch_step, state, batch)
  assert_updates_close(got, new, state)


def test_g_makes_the_m_packed_samples_in_m_passes_each_with_its_own_batchnorm_batch():
  # PacGAN's code generates each of the m samples of a packed example in its own pass
  # of G, so G's BatchNorm normalises each pass on its own batch (the mlp's G has one).
  config = toolkit.tiny_config(pack=2, batch_size=8, num_steps=1).validate()
  gan = toolkit.shrink(make_gan(config, (8, 8, 1)))
  fns = make_steps(config, gan, 64)
  state = jax.jit(gan.init)(jax.random.PRNGKey(0))
  key = jax.random.PRNGKey(3)
  new, _, fake = run_once(fns.g_step, state, key)

  def by_hand(state):
    z = gan.sample_noise(jax.random.split(key, 3)[0], 16)  # g_step's z key.

    def g(z, stats):
      return gan.generator.apply({"params": state.g.params, "batch_stats": stats}, z,
                                 train=True, mutable=["batch_stats"])

    first, stats = g(z[:8], state.g.batch_stats)
    second, stats = g(z[8:], stats["batch_stats"])
    one_pass = g(z, state.g.batch_stats)[0]
    return (jnp.concatenate([first, second], -1), stats["batch_stats"],
            jnp.concatenate([one_pass[:8], one_pass[8:]], -1))

  want, stats, one_pass = run_once(by_hand, state)
  assert fake.shape == (8, 8, 8, 2)  # [B, H, W, m*C]
  np.testing.assert_allclose(fake, want, rtol=0, atol=1e-6)
  # One pass over all m*B would normalise differently, visibly.
  assert float(np.max(np.abs(np.asarray(fake) - np.asarray(one_pass)))) > 1e-2
  # G's running statistics are those after its two passes, in order.
  toolkit.assert_trees_close(new.g.batch_stats, stats, 1e-6)


def test_an_epoch_is_n_over_b_updates_of_d_whatever_the_packing_as_pacgans():
  # PacGAN's 2DRing/2DGrid config.py: num_epoch 400 of num_sample 100,000 at batch_size
  # 100. Its GaussianPackingMixture holds num_examples = 100,000 packed examples of
  # num_packing points each, and ShuffledScheme(num_examples, batch_size) makes an
  # epoch 1,000 updates whatever num_packing: 400,000 steps for every m.
  for pack in (1, 2, 3, 4):
    config = Config(dataset="toy_ring8", batch_size=100, pack=pack, num_epochs=400.0)
    assert config.validate().steps_for(100_000) == 400_000
  # With k D updates a step, the epochs count D's batches: half the steps at k = 2.
  config = Config(dataset="toy_ring8", batch_size=100, pack=2, num_d_steps=2,
                  num_epochs=400.0)
  assert config.steps_for(100_000) == 200_000


def test_packing_needs_an_unconditional_gan():
  with pytest.raises(Exception, match="--pack=2 cannot be combined with --conditional"):
    Config(pack=2, conditional=True, num_steps=1).validate()


# --------------------------------------------------------------------------- unrolled
class UnrollKeys(NamedTuple):
  """The keys of G's objective: noise, D's fake pass, the unrolled D, D's real pass."""
  z: jax.Array
  fake: jax.Array
  unroll: jax.Array
  real: jax.Array


def g_step_keys(key) -> UnrollKeys:
  z_key, drop_key, feat_key = jax.random.split(key, 3)  # g_update's.
  return UnrollKeys(z_key, drop_key, jax.random.fold_in(drop_key, 1), feat_key)


def simultaneous_keys(state) -> UnrollKeys:
  # The simultaneous order: D's (real, fake) pass keys from fold_in(step key, 0).
  z_key, d_key = jax.random.split(jax.random.fold_in(steps_lib.step_key(state), 0))
  real_key, fake_key, _ = jax.random.split(d_key, 3)
  return UnrollKeys(z_key, fake_key, jax.random.fold_in(fake_key, 1), real_key)


def unrolled_g_loss(gan, state, keys: UnrollKeys, real, k: int, objective="g_loss",
                    stopped: bool = False, real_term: bool = True):
  """By hand: g_loss(g_params) -> (G's objective against D_K, the fakes), D_K = D after
  k Adam steps of D on (real, fakes). objective 'g_loss': the loss's G loss on D_K's
  fake logits; 'minimax': the value V(D_K, G) = E log D_K(x) + E log(1 - D_K(G(z))),
  transcribed from Metz et al.'s demo (poolio/unrolled_gan, 'Unrolled GAN demo.ipynb':
  loss = mean(BCE(real_score, 1) + BCE(fake_score, 0)), unrolled_loss = that loss with
  D's variables replaced by their values after the unrolled Adam updates,
  g_train_opt.minimize(-unrolled_loss)). stopped: D's unrolled steps see
  stop_gradient(fakes) (the variant the authors' code is not). real_term=False: V
  without E log D_K(x)."""

  def g_loss(g_params):
    variables = {"params": g_params, "batch_stats": state.g.batch_stats}
    fakes = gan.generator.apply(variables, gan.sample_noise(keys.z, 8), train=True,
                                mutable=["batch_stats"])[0]
    seen = jax.lax.stop_gradient(fakes) if stopped else fakes

    def d(params, x, key):
      return gan.discriminator.apply({"params": params}, x, train=True,
                                     rngs={"dropout": key})

    def d_loss(params, j):
      real_key, fake_key, _ = jax.random.split(jax.random.fold_in(keys.unroll, j), 3)
      return gan.loss.d_loss(d(params, real, real_key), d(params, seen, fake_key))

    params, opt_state = state.d.params, state.d.opt_state
    for j in range(k):
      updates, opt_state = gan.d_tx.update(jax.grad(d_loss)(params, j), opt_state,
                                           params)
      params = optax.apply_updates(params, updates)
    fake_logits = d(params, fakes, keys.fake)
    if objective == "g_loss":
      return gan.loss.g_loss(fake_logits), fakes
    d_real = jax.nn.sigmoid(d(params, real, keys.real))  # D_K(x), D_K(G(z)) as the demo.
    value = jnp.mean(jnp.log(1 - jax.nn.sigmoid(fake_logits)))
    return value + (jnp.mean(jnp.log(d_real)) if real_term else 0.0), fakes

  return g_loss


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
  g_loss, fakes = run_once(unrolled_g_loss(gan, state, g_step_keys(key), real, k),
                           state.g.params)
  np.testing.assert_allclose(fake, fakes, rtol=1e-6)
  assert float(metrics["g_loss"]) == pytest.approx(float(g_loss), rel=1e-5)
  # A whole step composes with the update order.
  new, step_metrics = run_once(fns.train_step, state, jnp.asarray(POINTS))
  assert int(new.step) == 1
  assert all(np.isfinite(float(v)) for v in step_metrics.values())


def test_the_minimax_objective_is_the_authors_value_at_d_k_in_the_simultaneous_order():
  # The order the ring and grid flagfiles train in (one minibatch for D and G): G's
  # loss is V(D_K, G) with the fakes, keys and real batch of D's own update.
  k = 2
  config, gan, fns = toy(unroll_steps=k, unroll_objective="minimax",
                         update_order="simultaneous")
  state = jax.jit(gan.init)(jax.random.PRNGKey(0))
  real = jnp.asarray(POINTS[:8])
  _, metrics = run_once(fns.batch_step, state, real)
  value, _ = run_once(unrolled_g_loss(gan, state, simultaneous_keys(state), real, k,
                                      "minimax"), state.g.params)
  assert float(metrics["g_loss"]) == pytest.approx(float(value), rel=1e-5)


def relative_difference(a, b) -> float:
  return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))) / np.max(np.abs(x)))
             for x, y in zip(jax.tree_util.tree_leaves(toolkit.host_tree(a)),
                             jax.tree_util.tree_leaves(toolkit.host_tree(b))))


@pytest.mark.parametrize("objective", ["g_loss", "minimax"])
def test_gs_gradient_flows_through_the_unrolled_d_updates(objective):
  # G takes a plain SGD step of rate 1, so its update is minus its gradient, compared
  # with the gradient of the hand-written unrolled objective, and with a gradient that
  # lacks a part of it: g_loss, the one that stops at the unrolled updates; minimax,
  # the one without the real term E log D_K(x), whose gradient reaches G only through
  # D_K. D's rate 1e-2 makes its unrolled steps move enough for each pair to differ by
  # far more than the tolerance (g_loss ~35 %, minimax ~29 %; g_loss at 2e-4, 0.4 %).
  k = 2
  config, gan, _ = toy(unroll_steps=k, lr_d=1e-2, unroll_objective=objective)
  gan = gan._replace(g_tx=optax.sgd(1.0))
  fns = make_steps(config, gan, len(POINTS))
  state = jax.jit(gan.init)(jax.random.PRNGKey(0))
  real, key = jnp.asarray(POINTS[:8]), jax.random.PRNGKey(3)
  new, _, _ = run_once(fns.g_step, state, key, real)
  partial = {"stopped": True} if objective == "g_loss" else {"real_term": False}

  def gradients(params):
    return tuple(jax.grad(lambda p: unrolled_g_loss(
        gan, state, g_step_keys(key), real, k, objective, **kw)(p)[0])(params)
        for kw in ({}, partial))

  through, without = run_once(gradients, state.g.params)
  minus = lambda tree: jax.tree_util.tree_map(lambda x: -np.asarray(x, np.float64),  # noqa: E731
                                              toolkit.host_tree(tree))
  assert_updates_close(new.g.params, jax.tree_util.tree_map(
      lambda p, u: np.asarray(p, np.float64) + u, toolkit.host_tree(state.g.params),
      minus(through)), state.g.params)
  difference = relative_difference(through, without)
  assert difference > 0.1, difference


def test_a_run_saved_before_unroll_objective_resumes_only_with_the_objective_it_had(
    tmp_path):
  # Its config.json lacks the flag: it trained G's own loss on D_K(G(z)) ('g_loss'), and
  # the unrolled flagfiles now say 'minimax', which must not continue it unnoticed.
  import json
  from jaxgan.errors import WorkdirError
  from jaxgan.runtime import workdir
  config = Config(dataset="toy_ring8", model="toy_mlp", unroll_steps=5, num_steps=10)
  saved = json.loads(config.to_json())
  del saved["unroll_objective"]
  (tmp_path / "config.json").write_text(json.dumps(saved))
  workdir.check_resume_config(str(tmp_path), config)
  with pytest.raises(WorkdirError, match=r"--unroll_objective='g_loss' \(saved\) vs "
                                         r"'minimax' \(now\)"):
    workdir.check_resume_config(
        str(tmp_path), dataclasses.replace(config, unroll_objective="minimax"))


# --------------------------------------------------------------------------- the table
def test_the_uniform_coverage_bound_is_what_evenly_spread_high_quality_samples_cover():
  # experiments/uniform_coverage.py, printed beside the remedy table's mode counts.
  import importlib.util
  spec = importlib.util.spec_from_file_location(
      "uniform_coverage", f"{toolkit.REPO}/experiments/uniform_coverage.py")
  coverage = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(coverage)
  n = coverage.high_quality_count(1.2)  # 1.2 % of PacGAN's 2,500 samples.
  assert n == 30
  bound = coverage.uniform_coverage(25, n)
  assert bound == pytest.approx(17.65, abs=0.005)
  # Monte Carlo: 30 samples each on one of 25 modes, uniformly, or with the modes'
  # shares proportional to 1..25 (fewer covered: the uniform spread is the most).
  rng = np.random.default_rng(0)

  def covered(draws):
    ordered = np.sort(draws, axis=1)
    return float(np.mean(1 + np.sum(np.diff(ordered, axis=1) > 0, axis=1)))

  assert covered(rng.integers(0, 25, (20000, n))) == pytest.approx(bound, abs=0.05)
  shares = np.arange(1, 26) / np.sum(np.arange(1, 26))
  assert covered(rng.choice(25, (20000, n), p=shares)) < bound - 0.5
