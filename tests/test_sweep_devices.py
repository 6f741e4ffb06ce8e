"""A population on 8 fake CPU devices equals the same population on 1 device.

jax fixes its device count when it starts, so the 8-device run happens in a subprocess
with XLA_FLAGS=--xla_force_host_platform_device_count=8.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from sweep_fixtures import tiny_idx_dir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
  import sys
  import jax, numpy as np
  from jaxgan import data, population
  from jaxgan.config import Config
  from jaxgan.state import make_gan
  from jaxgan.steps import make_steps
  assert jax.device_count() == 8, jax.devices()
  cfg = Config(dataset="tiny", data_dir=sys.argv[1], latent_dim=4, batch_size=8,
               num_steps=2)
  members = population.make_members(cfg, ["lr_d=1e-4,3e-4", "seed=0,1"])
  ds = data.load_dataset("tiny", cfg.data_dir)
  gan = make_gan(members[0].config, ds.image_shape)

  def train(mesh):
    steps = make_steps(members[0].config, gan, ds.num_examples,
                       constrain_batch=population.batch_constraint(mesh))
    state = population.init_population(
        gan, members, sharding=population.shardings(mesh)["members"])
    images = population.place_dataset(ds.images, mesh)
    step = population.make_population_step(steps.train_step, mesh)
    for _ in range(2):
      state, metrics = step(state, images)
    return state, metrics

  many, many_metrics = train(population.make_mesh((4, 2)))
  # Members really are spread: each device holds one member's slice of the state.
  kernel = jax.tree_util.tree_leaves(many.d.params)[0]
  assert len({s.device for s in kernel.addressable_shards}) == 8
  assert kernel.addressable_shards[0].data.shape[0] == 1
  one, one_metrics = train(population.make_mesh((1, 1), jax.devices()[:1]))
  jax.tree_util.tree_map(
      lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b),
                                              rtol=1e-4, atol=1e-5), many, one)
  np.testing.assert_allclose(many_metrics["d_loss"], one_metrics["d_loss"], rtol=1e-5)
  print("AGREE", np.asarray(many_metrics["d_loss"]))
""")


def test_population_on_8_fake_devices_equals_1_device(tmp_path):
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             JAX_PLATFORMS="cpu", PYTHONPATH=REPO)
  result = subprocess.run([sys.executable, "-c", SCRIPT, tiny_idx_dir(str(tmp_path))],
                          env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "AGREE" in result.stdout
