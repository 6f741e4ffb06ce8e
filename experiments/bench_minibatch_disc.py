"""Prints ms per jit(train_step) on toy_ring8 (batch 256), without and with minibatch
discrimination (B=8, C=3), 50 steps after one compile.

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
for extra in [{}, {"minibatch_kernels": 8, "minibatch_kernel_dim": 3}]:
  cfg = Config(dataset="toy_ring8", model="toy_mlp", batch_size=256, latent_dim=16,
               num_steps=1, lr_g=1e-3, lr_d=1e-3, **extra).validate()
  gan = make_gan(cfg, ds.image_shape)
  step = jax.jit(make_steps(cfg, gan, ds.num_examples).train_step)
  state = gan.init(jax.random.PRNGKey(0))
  state, metrics = step(state, images)
  jax.block_until_ready(metrics)
  start = time.perf_counter()
  for _ in range(50):
    state, metrics = step(state, images)
  jax.block_until_ready(metrics)
  print(f"{extra or 'vanilla'}: {(time.perf_counter() - start) / 50 * 1000:.1f} ms/step")
