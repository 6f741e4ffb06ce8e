"""Performance features keep results exact."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan import train
from jaxgan.config import Config
from jaxgan.state import make_gan
from jaxgan.steps import make_steps

from conftest import shrink


def test_steps_per_call_is_bit_identical_to_single_steps():
  config = Config(batch_size=8, num_steps=4, steps_per_call=4).validate()
  gan = shrink(make_gan(config, (28, 28, 1)))
  steps = make_steps(config, gan, 64)
  images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1),
                                                         dtype=np.uint8))
  init = jax.jit(gan.init)(jax.random.PRNGKey(0))
  fns = train.StepFunctions(steps.train_step, 4)
  single = jax.tree_util.tree_map(jnp.copy, init)
  for _ in range(4):
    single, single_metrics = fns.single(single, images)
  multi, multi_metrics = fns.multi(jax.tree_util.tree_map(jnp.copy, init), images)
  assert int(multi.step) == int(single.step) == 4
  for a, b in zip(jax.tree_util.tree_leaves(single), jax.tree_util.tree_leaves(multi)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  np.testing.assert_array_equal(single_metrics["d_loss"], multi_metrics["d_loss"])


def test_loop_lands_on_every_event_with_steps_per_call():
  # 10-step calls, but events every 4 and 6 steps: each event fires at its exact step.
  assert train.next_event(0, (4, 6), 25) == 4
  assert train.next_event(4, (4, 6), 25) == 6
  assert train.next_event(24, (4, 6), 25) == 25
  assert train.next_event(3, (0, 0), 25) == 25
