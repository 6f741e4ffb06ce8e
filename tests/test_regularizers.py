"""R1, R2 (Mescheder et al. 2018; lazy as StyleGAN2) and LeCam (Tseng et al. 2021): the
registered D terms of jaxgan/steps/regularizers.py against hand computations, their
state through a checkpoint and a resume, a population sweeping their weights, and their
flags.

The hand computations use a D whose input gradient is known in closed form,
D(x) = w·x + a/2 ‖x‖² + b, so ∇_x D = w + a·x, and plain SGD for D (an update is
-LR · gradient): a term's contribution to an update is the update with the term minus
the update without it, from the same state."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan.config import Config, sweep_members
from jaxgan.errors import ConfigError
from jaxgan.models import ToyGenerator
from jaxgan.runtime.compile import compile_once
from jaxgan.state import gan_from_modules, make_gan
from jaxgan.steps import make_steps
from jaxgan.sweep import population

import toolkit

LR = 0.1
POINTS = np.random.default_rng(0).normal(size=(64, 1, 1, 2)).astype(np.float32)
TOY = dict(dataset="toy_ring8", model="toy_mlp")


class QuadraticD(nn.Module):
  """D(x) = w·x + a/2 ‖x‖² + b on flattened x: ∇_x D(x) = w + a·x."""

  @nn.compact
  def __call__(self, x, train: bool = True):
    x = x.reshape((x.shape[0], -1))
    w = self.param("w", nn.initializers.normal(1.0), (x.shape[-1],))
    a = self.param("a", nn.initializers.constant(0.7), ())
    b = self.param("b", nn.initializers.constant(0.1), ())
    return x @ w + 0.5 * a * jnp.sum(x * x, axis=-1) + b


def d_np(p, x):
  x = np.asarray(x, np.float64).reshape(len(x), -1)
  return x @ p["w"] + 0.5 * p["a"] * np.sum(x * x, -1) + p["b"]


def d_grads_np(x):
  """∂D(x_i)/∂(w, a, b) per example."""
  x = np.asarray(x, np.float64).reshape(len(x), -1)
  return {"w": x, "a": 0.5 * np.sum(x * x, -1), "b": np.ones(len(x))}


def host(params):
  return {k: np.asarray(v, np.float64) for k, v in params.items()}


def quadratic_gan(loss="non_saturating"):
  return gan_from_modules(ToyGenerator((1, 1, 2), hidden=(8,)), QuadraticD(),
                          image_shape=(1, 1, 2), latent_dim=4, g_tx=optax.sgd(LR),
                          d_tx=optax.sgd(LR), loss=loss)


_COMPILED = {}


def d_step_of(config, gan, state):
  """The d_step of (config, gan), compiled once per config for this state's structure."""
  key = (config, id(gan), jax.tree_util.tree_structure(state))
  if key not in _COMPILED:
    step = make_steps(config, gan, len(POINTS)).d_step
    _COMPILED[key] = compile_once(step, state, POINTS[:8], jax.random.PRNGKey(0),
                                  POINTS[8:16])
  return _COMPILED[key]


def initial(config, gan):
  steps = make_steps(config, gan, len(POINTS))
  return compile_once(steps.init, jax.random.PRNGKey(0))(jax.random.PRNGKey(0))


def term_update(with_term, plain):
  """What the term added to D's update: params with it minus params without it."""
  a, b = host(with_term.d.params), host(plain.d.params)
  return {k: a[k] - b[k] for k in a}


def assert_params_close(got, want, rtol=1e-5):
  for k in want:
    scale = max(np.max(np.abs(want[k])), 1e-3)
    assert np.max(np.abs(got[k] - want[k])) <= rtol * scale, (k, got[k], want[k])


# --------------------------------------------------------------------------- R1, R2
def r_closed_form(p, x):
  """E‖∇D‖² = mean ‖w + a x‖², and its gradient in (w, a, b), for the quadratic D."""
  x = np.asarray(x, np.float64).reshape(len(x), -1)
  g = p["w"] + p["a"] * x
  value = np.mean(np.sum(g * g, -1))
  grad = {"w": 2 * np.mean(g, 0), "a": 2 * np.mean(np.sum(g * x, -1)), "b": 0.0}
  return value, grad


def test_r1_and_r2_equal_the_closed_form_penalty_and_their_gradient_enters_ds_update():
  gan = quadratic_gan()
  config = toolkit.tiny_config(**TOY, r1_gamma=3.0, r2_gamma=5.0)
  plain_config = dataclasses.replace(config, r1_gamma=0.0, r2_gamma=0.0)
  state = initial(config, gan)
  assert float(state.hparams["r1_gamma"]) == 3.0 and float(state.hparams["r2_gamma"]) == 5.0
  real, fake, key = POINTS[:8], POINTS[8:16], jax.random.PRNGKey(1)
  new, metrics = d_step_of(config, gan, state)(state, real, key, fake)
  old, plain_metrics = d_step_of(plain_config, gan, state)(state, real, key, fake)
  p = host(state.d.params)
  r1, r1_grad = r_closed_form(p, real)
  r2, r2_grad = r_closed_form(p, fake)  # R2 is on the fakes D judged.
  assert float(metrics["r1"]) == pytest.approx(r1, rel=1e-5)
  assert float(metrics["r2"]) == pytest.approx(r2, rel=1e-5)
  assert float(metrics["d_loss"]) == pytest.approx(
      float(plain_metrics["d_loss"]) + 3.0 / 2 * r1 + 5.0 / 2 * r2, rel=1e-5)
  assert_params_close(term_update(new, old), {
      k: -LR * (3.0 / 2 * r1_grad[k] + 5.0 / 2 * r2_grad[k]) for k in p})
  # Weights 0 (a swept member's, whose terms are built) add exactly nothing.
  zero = state.replace(hparams={"r1_gamma": jnp.float32(0), "r2_gamma": jnp.float32(0)})
  off, off_metrics = d_step_of(config, gan, state)(zero, real, key, fake)
  toolkit.assert_trees_equal((off.d, off_metrics["d_loss"]),
                             (old.d, plain_metrics["d_loss"]))


def test_lazy_r1_is_on_d_updates_0_n_2n_only_weighted_by_n():
  gan = quadratic_gan()
  config = toolkit.tiny_config(**TOY, r1_gamma=2.0, d_reg_interval=3)
  plain_config = dataclasses.replace(config, r1_gamma=0.0, d_reg_interval=1)
  state = initial(config, gan)
  lazy, plain = d_step_of(config, gan, state), d_step_of(plain_config, gan, state)
  last = 0.0
  for update in range(5):
    real = POINTS[8 * update:8 * update + 8]
    fake = POINTS[40 + 4 * update:48 + 4 * update]
    key = jax.random.PRNGKey(update)
    new, metrics = lazy(state, real, key, fake)
    old, _ = plain(state, real, key, fake)
    p = host(state.d.params)
    value, grad = r_closed_form(p, real)
    due = update % 3 == 0
    want = {k: -LR * (3 * 2.0 / 2 * grad[k] if due else 0.0) for k in p}
    assert_params_close(term_update(new, old), want)
    last = value if due else last
    assert float(metrics["r1"]) == pytest.approx(last, rel=1e-5)  # The last computed.
    assert int(new.aux["r1"]["d_updates"]) == update + 1
    state = new


# --------------------------------------------------------------------------- LeCam
class AuthorsEma:
  """lecam-gan third_party/utils.py `ema_losses` (the D_real and D_fake modes)."""

  def __init__(self, init=1000., decay=0.9, start_itr=0):
    self.D_real = init
    self.D_fake = init
    self.decay = decay
    self.start_itr = start_itr

  def update(self, cur, mode, itr):
    if itr < self.start_itr:
      decay = 0.0
    else:
      decay = self.decay
    if mode == 'D_real':
      self.D_real = self.D_real * decay + cur * (1 - decay)
    elif mode == 'D_fake':
      self.D_fake = self.D_fake * decay + cur * (1 - decay)


def authors_lecam_reg(dis_real, dis_fake, ema):
  """lecam-gan biggan_cifar/losses.py `lecam_reg`."""
  relu = lambda v: np.maximum(v, 0.0)  # noqa: E731
  return (np.mean(relu(dis_real - ema.D_fake) ** 2)
          + np.mean(relu(ema.D_real - dis_fake) ** 2))


def test_lecam_follows_the_authors_anchors_penalty_and_start_over_d_updates():
  """k = 2 D updates per train step and start 1: the authors' train_fns.py order (each
  D step updates the anchors, then the penalty on the updated anchors, weighted only
  when itr > start) over 3 train steps, checked after each of the 6 D updates: anchors,
  penalty, and the penalty's gradient (anchors held constant) in D's update."""
  gan = quadratic_gan("hinge")
  weight, start, k = 0.7, 1, 2
  config = toolkit.tiny_config(**TOY, loss="hinge", num_d_steps=k, lecam_weight=weight,
                               lecam_start=start)
  plain_config = dataclasses.replace(config, lecam_weight=0.0, lecam_start=1000)
  state = initial(config, gan)
  lecam, plain = d_step_of(config, gan, state), d_step_of(plain_config, gan, state)
  ema = AuthorsEma(start_itr=start)
  relu = lambda v: np.maximum(v, 0.0)  # noqa: E731
  for update in range(3 * k):
    itr = update // k
    real = POINTS[8 * update:8 * update + 8]
    fake = 0.5 * POINTS[8 * update + 8:8 * update + 16] + 1.0
    key = jax.random.PRNGKey(update)
    new, metrics = lecam(state, real, key, fake)
    old, _ = plain(state, real, key, fake)
    p = host(state.d.params)
    dis_real, dis_fake = d_np(p, real), d_np(p, fake)
    ema.update(np.mean(dis_fake), 'D_fake', itr)
    ema.update(np.mean(dis_real), 'D_real', itr)
    on = itr > start
    reg = authors_lecam_reg(dis_real, dis_fake, ema) if on else 0.0
    assert float(new.aux["lecam"]["real"]) == pytest.approx(ema.D_real, rel=1e-6)
    assert float(new.aux["lecam"]["fake"]) == pytest.approx(ema.D_fake, rel=1e-6)
    assert float(metrics["lecam"]) == pytest.approx(reg, rel=1e-5, abs=1e-7)
    dr, df = d_grads_np(real), d_grads_np(fake)
    grad = {n: (np.mean(2 * relu(dis_real - ema.D_fake)[:, None] * dr[n].reshape(8, -1), 0)
                - np.mean(2 * relu(ema.D_real - dis_fake)[:, None] * df[n].reshape(8, -1),
                          0)).reshape(np.shape(p[n])) for n in p}
    assert_params_close(term_update(new, old),
                        {n: -LR * weight * grad[n] * on for n in p})
    if on:  # Weight 0 (a swept member's, whose term is built) adds exactly nothing.
      off, _ = lecam(state.replace(hparams={"lecam_weight": jnp.float32(0)}), real, key,
                     fake)
      toolkit.assert_trees_equal(off.d, old.d)
    state = new
  assert reg > 0  # The last updates took the penalty.


# --------------------------------------------------------------------------- resume
def test_anchors_and_lazy_counter_are_checkpointed_and_resume_bit_identically(
    tmp_path, caplog, monkeypatch):
  """4 steps uninterrupted, against a resume from that run's checkpoint of step 2 (its
  workdir as a kill after that save leaves it): the resume crosses LeCam's start
  (anchors an EMA from step 1, penalty from step 2) and lazy R1's update 3 (interval
  3), so state.aux restored wrong or reset changes the numbers. G then D, with packing:
  the terms in another order, on packed inputs."""
  from jaxgan.runtime import loop, trainees
  from jaxgan.runtime import workdir as workdir_lib
  from jaxgan.runtime import compile as compile_lib
  # The narrow toy GAN, its step compiled as a one-shot program (-O0): a fraction of the
  # compile time, and both runs compile alike (what resumes is what is compared).
  monkeypatch.setattr(trainees, "make_gan", lambda *a, **k: narrow(make_gan(*a, **k)))
  monkeypatch.setattr(compile_lib, "step_compiler_options",
                      compile_lib.one_shot_compiler_options)
  data_dir = toolkit.write_classes_folder(str(tmp_path / "classes"))
  config = toolkit.tiny_config(data_dir, model="toy_mlp", num_steps=4,
                               checkpoint_every=2, log_every=2, update_order="g_then_d",
                               pack=2, r1_gamma=1.0, d_reg_interval=3, lecam_weight=0.5,
                               lecam_start=1)
  full_dir, killed = str(tmp_path / "full"), str(tmp_path / "killed")
  full = toolkit.host_tree(loop.run(config, full_dir))
  assert int(full.aux["r1"]["d_updates"]) == 4 == int(full.aux["lecam"]["d_updates"])
  shutil.copytree(full_dir, killed)
  shutil.rmtree(os.path.join(killed, "checkpoints", "4"))
  caplog.set_level(logging.INFO, logger="absl")
  caplog.clear()
  resumed = loop.run(config, killed)
  toolkit.assert_resumed(caplog.text, 2, killed)
  assert not os.path.exists(os.path.join(killed, workdir_lib.CORRUPT_DIR))
  toolkit.assert_trees_equal(resumed, full)
  assert toolkit.read_metrics(killed)[-1]["lecam"] > 0


# --------------------------------------------------------------------------- sweeps
def narrow(gan):
  """toy_mlp with one hidden layer of 8 units in G and D: its code paths, compiled fast."""
  return gan._replace(generator=gan.generator.clone(hidden=(8,)),
                      discriminator=gan.discriminator.clone(hidden=(8,)))


def toy_setup(**overrides):
  config = toolkit.tiny_config(**TOY, **overrides)
  if config.conditional:  # Wrapped modules of the default width.
    return config, make_gan(config, POINTS.shape[1:], num_classes=4)
  return config, narrow(make_gan(config, POINTS.shape[1:]))


def test_a_population_sweeping_r1_gamma_and_lecam_weight_trains_each_member_with_its_own():
  config, gan = toy_setup(sweep=("r1_gamma=0,2", "lecam_weight=0,0.5"), lecam_start=1)
  members = sweep_members(config)
  steps = make_steps(members[0].config, gan, len(POINTS))
  pop = compile_once(population.init_fn(gan, members, steps.init))()
  np.testing.assert_array_equal(pop.gan.hparams["r1_gamma"], [0, 0, 2, 2])
  np.testing.assert_array_equal(pop.gan.hparams["lecam_weight"], [0, 0.5, 0, 0.5])
  # 3 steps: LeCam (start 1) takes its penalty on the third.
  trained, = three_steps(population.population_step(
      population.GuardedStep(steps.guarded_train_step)), pop)
  before = [toolkit.member(pop, i) for i in range(4)]
  alone = three_steps(steps.train_step, *before)
  # Updates (each network's change over the 3 steps) compared relative to their size:
  # a member equals its single run up to float reassociation in batched kernels.
  pop_updates = [update(toolkit.member(trained, i), before[i]) for i in range(4)]
  updates = [update(alone[i], before[i]) for i in range(4)]
  for i in range(4):  # Member i is the single run with member i's weights...
    assert np.max(np.abs(pop_updates[i] - updates[i])) <= 1e-4 * np.max(np.abs(updates[i]))
  for i, j in ((0, 1), (0, 2)):  # ...which changes what it learns, far beyond that.
    assert np.max(np.abs(updates[i] - updates[j])) > 0.1 * np.max(np.abs(updates[i]))


def three_steps(step, *states):
  """Each state after 3 calls of `step` (compiled once for all of them)."""
  run = compile_once(lambda state, data: step(state, data, None)[0], states[0], POINTS)
  out = []
  for state in states:
    for _ in range(3):
      state = run(state, POINTS)
    out.append(state)
  return out


def update(state, before):
  """The change of G's and D's parameters from `before` to `state`, flattened."""
  def flat(s):
    return np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(
        toolkit.host_tree((s.g.params, s.d.params)))]).astype(np.float64)
  return flat(state) - flat(before)


# --------------------------------------------------------------------------- composition
def test_the_terms_trace_into_simultaneous_unrolled_conditional_steps_keeping_state():
  """Tracing only (no compilation): R1, lazy R2 and LeCam in the simultaneous order with
  feature matching, unrolling (D's objective inside G's differentiation) and labels;
  the guarded step (a population member's) returns their state with its structure and
  dtypes, and their metrics. (d_then_g: the population test; g_then_d with packing:
  the resume test.)"""
  config, gan = toy_setup(r1_gamma=1.0, r2_gamma=1.0, d_reg_interval=2,
                          lecam_weight=0.3, loss="lsgan", update_order="simultaneous",
                          feature_matching=True, unroll_steps=2, conditional=True)
  steps = make_steps(config, gan, len(POINTS))
  state = jax.eval_shape(steps.init, jax.random.PRNGKey(0))
  labels = np.zeros(len(POINTS), np.int32)
  new, metrics, _ = jax.eval_shape(steps.guarded_train_step, state, POINTS, labels, True)
  assert jax.tree_util.tree_structure(new.aux) == jax.tree_util.tree_structure(state.aux)
  assert [x.dtype for x in jax.tree_util.tree_leaves(new.aux)] == [
      x.dtype for x in jax.tree_util.tree_leaves(state.aux)]
  assert {"r1", "r2", "lecam"} <= set(metrics)


def test_the_terms_trace_into_the_wgan_critic_schedule():
  """The lazy counter in the critic schedule's loop carry keeps its dtype."""
  config, gan = toy_setup(loss="wgan", optimizer="rmsprop", d_steps_schedule="wgan",
                          num_d_steps=2, r1_gamma=1.0, r2_gamma=1.0, d_reg_interval=4)
  steps = make_steps(config, gan, len(POINTS))
  state = jax.eval_shape(steps.init, jax.random.PRNGKey(0))
  new, metrics = jax.eval_shape(steps.train_step, state, POINTS)
  assert new.aux["r1"]["d_updates"].dtype == jnp.int32 and "r1" in metrics


# --------------------------------------------------------------------------- flags
@pytest.mark.parametrize("overrides, message", [
    ({"r1_gamma": -1.0}, "--r1_gamma=-1.0 is invalid: expected a finite number >= 0"),
    ({"r2_gamma": float("nan")}, "--r2_gamma=nan is invalid"),
    ({"lecam_weight": float("inf")}, "--lecam_weight=inf is invalid"),
    ({"r1_gamma": 1.0, "d_reg_interval": 0}, "--d_reg_interval=0 is invalid: expected "
     "an integer >= 1"),
    ({"d_reg_interval": 16}, "--d_reg_interval=16 only applies with --r1_gamma"),
    ({"lecam_weight": 0.3, "lecam_decay": 1.0}, "--lecam_decay=1.0 is invalid"),
    ({"lecam_weight": 0.3, "lecam_start": 0}, "--lecam_start=0 is invalid"),
    ({"lecam_start": 5}, "--lecam_start=5 only applies with --lecam_weight"),
    ({"r1_gamma": 10.0, "minibatch_kernels": 4}, "--r1_gamma=10.0 needs a D that treats "
     "examples independently"),
    ({"r2_gamma": 1.0, "model": "dcgan"}, "--r2_gamma=1.0 needs a D that treats"),
    ({"lecam_weight": 0.3, "loss": "wgan", "optimizer": "rmsprop",
      "d_steps_schedule": "wgan"}, "--lecam_weight=0.3 cannot be combined with "
     "--d_steps_schedule=wgan"),
    ({"sweep": ("r1_gamma=0,-2",)}, "sweep member 1 {'r1_gamma': -2.0}: --r1_gamma=-2.0"),
])
def test_bad_regularizer_flags_are_refused_in_one_line_naming_the_flag(overrides,
                                                                         message):
  with pytest.raises(ConfigError) as info:
    config = Config(num_steps=1, **overrides)
    config.validate()
    sweep_members(config)
  assert message in str(info.value) and "\n" not in str(info.value)


def test_a_swept_weight_keeps_its_options_and_the_term_even_where_it_is_0():
  config = Config(num_steps=1, sweep=("r1_gamma=0,10",), d_reg_interval=16,
                  minibatch_kernels=4)
  with pytest.raises(ConfigError, match=r"sweep member 1 .*--r1_gamma=10.0 needs"):
    sweep_members(config)  # Member 0 passes; the coupled D is refused for member 1.
  Config(num_steps=1, sweep=("r2_gamma=0,10",), d_reg_interval=16).validate()
  Config(num_steps=1, sweep=("lecam_weight=0,0.3",), lecam_start=5,
         lecam_decay=0.99).validate()


def test_the_command_line_refuses_them_with_exit_2_and_writes_nothing(tmp_path, capsys):
  workdir = tmp_path / "run"
  code, err = toolkit.run_main_in_process(
      [f"--workdir={workdir}", "--dataset=toy_ring8", "--model=toy_mlp", "--num_steps=2",
       "--lecam_weight=0.3", "--lecam_decay=nan"], capsys)
  assert code == 2 and "Traceback" not in err and not workdir.exists()
  assert err.count("jaxgan: error: --lecam_decay=nan is invalid: expected a number in "
                   "[0, 1).") == 1
