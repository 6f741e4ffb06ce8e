"""Prints ms per jit(train_step) of one member of the ring remedy runs
(ring_vanilla.flags: pacgan_mlp, batch 100, z 2-D) without and with minibatch
discrimination as ring_minibatch_disc.flags sets it (B=100 kernels of C=5), 200 steps
after one compile.

    PYTHONPATH=. python experiments/bench_minibatch_disc.py
"""
import time

import jax

from jaxgan import data
from jaxgan.config import Config
from jaxgan.state import make_gan
from jaxgan.steps import make_steps

ds = data.load_dataset("toy_ring8")
images = jax.device_put(ds.images)
for extra in [{}, {"minibatch_kernels": 100, "minibatch_kernel_dim": 5}]:
  cfg = Config(dataset="toy_ring8", model="pacgan_mlp", batch_size=100, latent_dim=2,
               noise="normal", update_order="simultaneous", num_steps=1, lr_g=1e-4,
               lr_d=1e-4, b1=0.8, **extra).validate()
  gan = make_gan(cfg, ds.image_shape)
  step = jax.jit(make_steps(cfg, gan, ds.num_examples).train_step)
  state = gan.init(jax.random.PRNGKey(0), ds.images)  # The layer's data-dependent init.
  state, metrics = step(state, images)
  jax.block_until_ready(metrics)
  start = time.perf_counter()
  for _ in range(200):
    state, metrics = step(state, images)
  jax.block_until_ready(metrics)
  print(f"{extra or 'vanilla'}: {(time.perf_counter() - start) / 200 * 1000:.2f} ms/step")
