"""The optimizers (jaxgan/optim.py) against the update rules of the codes they stand for."""

from __future__ import annotations

import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan.config import Config
from jaxgan.optim import make_optimizer


def test_rmsprop_is_torchs_with_eps_outside_the_square_root():
  # torch.optim.RMSprop (alpha 0.99, eps 1e-8; the WGAN authors' optimizer):
  #   v <- alpha v + (1 - alpha) g^2;  p <- p - lr g / (sqrt(v) + eps)
  lr = 5e-5
  tx = make_optimizer(Config(optimizer="rmsprop"), lr)
  p = {"w": jnp.array([1.0, -2.0, 3.0, 0.5])}
  g1 = np.array([1e-6, 0.5, -2.0, 0.0], np.float32)  # 1e-6: where eps placement shows.
  g2 = np.array([3e-6, -0.25, 1.0, 1e-3], np.float32)
  state = tx.init(p)
  v = np.zeros(4)
  want = np.asarray(p["w"], np.float64)
  for g in (g1, g2):
    updates, state = tx.update({"w": jnp.asarray(g)}, state, p)
    p = {"w": p["w"] + updates["w"]}
    v = 0.99 * v + 0.01 * g.astype(np.float64) ** 2
    want = want - lr * g / (np.sqrt(v) + 1e-8)
  np.testing.assert_allclose(np.asarray(p["w"]), want, rtol=1e-6)
  # The comparison tells the placements apart: optax's default (eps inside the square
  # root) moves the g = 1e-6 weight ~1e-2 lr where torch moves it ~10 lr.
  inside = optax.rmsprop(lr, decay=0.99, eps=1e-8)
  u, _ = inside.update({"w": jnp.asarray(g1)}, inside.init(p), p)
  torch_first = -lr * g1[0] / (np.sqrt(0.01 * float(g1[0]) ** 2) + 1e-8)
  assert abs(float(u["w"][0])) < 1e-2 * abs(torch_first)


def test_adam_for_unrolling_adds_a_tiny_eps_root():
  p = {"w": jnp.array([0.3])}
  plain, differentiable = (make_optimizer(Config(), 1e-3, differentiable=d)
                           for d in (False, True))
  for tx in (plain, differentiable):
    u, _ = tx.update({"w": jnp.array([0.7])}, tx.init(p), p)
    np.testing.assert_allclose(np.asarray(u["w"]), -1e-3, rtol=1e-6)
  assert float(differentiable.init(p).hyperparams["eps_root"]) == np.float32(1e-16)


# --------------------------------------------------------------- the paper's SGD
# goodfeli/adversarial mnist.yaml: SGD(batch_size 100, learning_rate .1) on train[:50000]
# (500 updates an epoch), learning_rule Momentum(init_momentum .5), update_callbacks
# ExponentialDecay(decay_factor 1.000004, min_lr .000001), extensions
# MomentumAdjustor(final_momentum .7, start 1, saturate 250). pylearn2's rules, transcribed
# from lisa-lab/pylearn2 (training_algorithms/sgd.py, learning_rule.py, train.py):
PAPER_FLAGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "experiments", "mnist_paper.flags")
BATCHES_PER_EPOCH = 50_000 // 100
LR, DECAY_FACTOR, MIN_LR = 0.1, 1.000004, 1e-6
INIT_MOMENTUM, FINAL_MOMENTUM, START, SATURATE = 0.5, 0.7, 1, 250


def pylearn2_learning_rate(t: int) -> np.float32:
  """The learning rate of update t (from 0). ExponentialDecay is called after each update:
  its count is then the number of updates made, and it sets lr to
  base_lr / decay_factor ** count (base_lr the float32 shared value, the division in
  float64, cast to floatX float32), or min_lr once that is reached."""
  if t == 0:
    return np.float32(LR)
  new_lr = float(np.float32(LR)) / DECAY_FACTOR ** t
  return np.float32(MIN_LR if new_lr <= MIN_LR else new_lr)


def pylearn2_momentum(t: int) -> np.float32:
  """The momentum of update t (from 0). Train.main_loop calls the extensions' on_monitor
  once before training and after each epoch; MomentumAdjustor counts its calls, so during
  epoch e (from 0) its _count is e + 1, and it sets
  init (1 - alpha) + final alpha, alpha = clip((_count - start) / (saturate - start), 0, 1)."""
  count = t // BATCHES_PER_EPOCH + 1
  alpha = min(max(float(count - START) / float(SATURATE - START), 0.0), 1.0)
  return np.float32(INIT_MOMENTUM * (1 - alpha) + alpha * FINAL_MOMENTUM)


def pylearn2_sgd(params, grads, start: int):
  """pylearn2's Momentum rule with both schedules, from a zero velocity at update
  `start`: inc <- m_t inc - lr_t g; params <- params + inc. The parameters after each
  update (float64)."""
  inc, out = np.zeros_like(params), []
  for i, g in enumerate(grads):
    t = start + i
    inc = float(pylearn2_momentum(t)) * inc - float(pylearn2_learning_rate(t)) * g
    params = params + inc
    out.append(params)
  return out


def paper_config() -> Config:
  """The optimizer flags of experiments/mnist_paper.flags as a Config."""
  with open(PAPER_FLAGS) as f:
    flags = dict(re.findall(r"^--(\w+)=(\S+)$", f.read(), re.M))
  names = ("momentum", "final_momentum", "momentum_ramp_steps", "lr_decay", "min_lr")
  config = Config(optimizer=flags["optimizer"], lr_g=float(flags["lr_g"]),
                  **{n: type(getattr(Config(), n))(flags[n]) for n in names})
  assert flags["batch_size"] == "100" and config.lr_g == LR
  return config


def at_count(state, count):
  """An injected-hyperparameter optimizer state as after `count` updates (optax keeps
  one count per scheduled hyperparameter; an update reads its schedules there)."""
  return state._replace(count=count, hyperparams_states={
      k: v._replace(count=count) for k, v in state.hyperparams_states.items()})


def schedules(tx, counts):
  """(lr_t, m_t) that `tx` applies at each update count t: from one update of the
  weights [a, b] with gradient [1, 0] and momentum buffer [0, 1] at count t, which is
  [-lr_t, -lr_t m_t] (optax: -lr_t (g + m_t trace))."""
  p = {"w": jnp.zeros(2)}

  @jax.jit
  def at(count):
    state = tx.init(p)
    trace = optax.TraceState(trace={"w": jnp.array([0.0, 1.0])})
    state = at_count(state, count)._replace(inner_state=(trace,) + state.inner_state[1:])
    return tx.update({"w": jnp.array([1.0, 0.0])}, state, p)[0]["w"]

  u = np.asarray(jax.vmap(at)(jnp.asarray(counts, jnp.int32)), np.float64)
  return -u[:, 0], u[:, 1] / u[:, 0]


def test_paper_flags_give_pylearn2s_lr_decay_and_momentum_ramp():
  config = paper_config()
  tx = make_optimizer(config, config.lr_g)
  e = BATCHES_PER_EPOCH
  floor = int(np.ceil(np.log(LR / MIN_LR) / np.log(DECAY_FACTOR)))  # lr reaches min_lr.
  counts = [0, 1, 2, e - 1, e, e + 1, 20 * e, 20 * e + 250, 248 * e, 249 * e - 1,
            249 * e, 250 * e, 300 * e, floor - 2, floor + 2, 10 * floor]
  lr, momentum = schedules(tx, counts)
  want_lr = np.array([pylearn2_learning_rate(t) for t in counts], np.float64)
  np.testing.assert_allclose(lr, want_lr, rtol=1e-6)
  assert lr[-1] == np.float32(MIN_LR) and lr[counts.index(floor - 2)] > MIN_LR
  # Momentum: equal at the start of each epoch (pylearn2 sets it there) and at and after
  # saturation (epoch 249 from 0, update 124,500); in between, jaxgan's linear ramp runs
  # ahead of pylearn2's stairs by less than one stair.
  want_m = np.array([pylearn2_momentum(t) for t in counts], np.float64)
  stair = (FINAL_MOMENTUM - INIT_MOMENTUM) / (SATURATE - START)
  for t, got, want in zip(counts, momentum, want_m):
    if t % e == 0 or t >= (SATURATE - START) * e:
      assert got == pytest.approx(want, abs=1e-6), t
    else:
      assert 0 <= got - want < stair, t
  assert want_m[counts.index(249 * e - 1)] < FINAL_MOMENTUM
  assert momentum[counts.index(249 * e)] == pytest.approx(FINAL_MOMENTUM, abs=1e-6)


def test_paper_sgd_updates_are_pylearn2s():
  # Five updates from the saturation of the momentum ramp (update 124,500, where both
  # schedules are at their final momentum), with the decayed lr: the weights follow
  # pylearn2's Momentum rule. The rules differ only by the lr decay inside optax's
  # momentum (4e-6 relative per update), inside the tolerance, which is relative to the
  # weights' change; a momentum off by 1% moves them ~1e-3 of it.
  config = paper_config()
  tx = make_optimizer(config, config.lr_g)
  start = (SATURATE - START) * BATCHES_PER_EPOCH
  rng = np.random.default_rng(0)
  grads = rng.normal(size=(5, 4))
  w0 = rng.normal(size=4)

  @jax.jit
  def run(w, grads):
    state = at_count(tx.init(w), jnp.int32(start))
    out = []
    for g in grads:
      u, state = tx.update(g, state, w)
      w = optax.apply_updates(w, u)
      out.append(w)
    return jnp.stack(out)

  got = np.asarray(run(jnp.asarray(w0, jnp.float32), jnp.asarray(grads, jnp.float32)),
                   np.float64)
  want = np.stack(pylearn2_sgd(w0, grads, start))
  np.testing.assert_allclose(got - w0, want - w0, rtol=0,
                             atol=1e-5 * np.abs(want - w0).max())

