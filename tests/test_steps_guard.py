"""The divergence guard of a train step (steps.Gate, steps.guarded_train_step): what a
population member runs. Every check discards the update that fails it and every later
update of the step, and names itself in the mask."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import steps as steps_lib
from jaxgan.steps import gate as gate_lib
from jaxgan.runtime.compile import compile_once, initial_state
from jaxgan.state import make_gan

import toolkit

IMAGES = np.random.default_rng(0).integers(0, 256, (64, 8, 8, 1), dtype=np.uint8)


def build(monkeypatch=None, poison: tuple[str, str] | None = None, model: str = "mlp"):
  """(state, jitted guarded step, jitted plain step) of a small GAN (the shrunk mlp,
  whose G has BatchNorm, or the smaller toy_mlp); `poison` = (network, part) makes that
  network's guarded update see NaN in `part` (loss, gradients, BatchNorm statistics)."""
  if poison is not None:
    real_propose = gate_lib.propose_update
    who, part = poison

    def propose_update(net, grads, tx, batch_stats, gate, name, loss):
      if isinstance(gate, steps_lib.Gate) and name == who:
        if part == "loss":
          loss = loss + jnp.nan
        elif part == "gradients":
          grads = jax.tree_util.tree_map(lambda g: g * jnp.inf, grads)
        else:
          batch_stats = jax.tree_util.tree_map(lambda x: x + jnp.nan, batch_stats)
      return real_propose(net, grads, tx, batch_stats, gate, name, loss)

    monkeypatch.setattr(gate_lib, "propose_update", propose_update)
  config = toolkit.tiny_config(batch_size=8, model=model).validate()
  gan = toolkit.shrink(make_gan(config, (8, 8, 1)))
  steps = steps_lib.make_steps(config, gan, len(IMAGES))
  state = initial_state(gan, jax.random.PRNGKey(0))
  if poison is None:  # Optimised, as the loop compiles them.
    return state, jax.jit(steps.guarded_train_step), jax.jit(steps.train_step)
  # Each called once: one-shot programs compile in a fraction of the time.
  return state, one_shot(steps.guarded_train_step), one_shot(steps.train_step)


def one_shot(fn):
  return lambda *args: compile_once(fn, *args)(*args)


def test_a_healthy_guarded_step_is_the_plain_step():
  state, guarded, plain = build()
  images = jnp.asarray(IMAGES)
  new, metrics, nonfinite = guarded(state, images, None, True)
  want, want_metrics = plain(state, images)
  assert int(nonfinite) == 0
  toolkit.assert_trees_equal(new, want)
  toolkit.assert_trees_equal(metrics, want_metrics)


def test_a_closed_gate_changes_nothing_but_the_step_counter():
  state, guarded, _ = build()
  new, _, nonfinite = guarded(state, jnp.asarray(IMAGES), None, False)
  assert int(nonfinite) == 0  # Nothing failed: the member was already diverged.
  toolkit.assert_trees_equal(new.replace(step=state.step), state)
  assert int(new.step) == int(state.step) + 1


@pytest.mark.parametrize("who, part, check, model", [
    ("D", "loss", "D loss", "toy_mlp"), ("D", "gradients", "D gradients", "toy_mlp"),
    ("G", "gradients", "G gradients", "toy_mlp"),
    ("G", "batch_stats", "G BatchNorm statistics", "mlp")])
def test_a_failed_check_discards_its_update_and_every_later_one(monkeypatch, who, part,
                                                                check, model):
  state, guarded, plain = build(monkeypatch, (who, part), model)
  images = jnp.asarray(IMAGES)
  new, _, nonfinite = guarded(state, images, None, True)
  assert steps_lib.describe_nonfinite(int(nonfinite)) == [check]
  # d_then_g: D's update comes first, so only a failure of G keeps D's update.
  toolkit.assert_trees_equal(new.g, state.g)
  unguarded, _ = plain(state, images)
  toolkit.assert_trees_equal(new.d, unguarded.d if who == "G" else state.d)
  assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(toolkit.host_tree(new)))
