"""Your own G and D, your own data, jaxgan's steps: a GAN in ~60 lines.

    pip install .        # from the jaxgan repository (or: pip install -e .)
    python examples/train_own_gan.py

G and D are plain Flax modules (no jaxgan base class, nothing sown); the data is a NumPy
array. It trains 10 steps with the dataset on the device (train_step), then 10 with
batches the script makes itself (batch_step), and prints the metrics.
"""

import flax.linen as nn
import jax
import numpy as np

from jaxgan import config, state, steps


class G(nn.Module):
  @nn.compact
  def __call__(self, z, train=True):
    h = nn.relu(nn.Dense(64)(z))
    return nn.tanh(nn.Dense(8 * 8)(h)).reshape(z.shape[0], 8, 8, 1)


class D(nn.Module):
  @nn.compact
  def __call__(self, x, train=True):
    h = nn.leaky_relu(nn.Dense(64)(x.reshape(x.shape[0], -1)), 0.2)
    return nn.Dense(1)(h)[:, 0]  # Logits [B].


# Your data: 512 8x8 grayscale images, uint8 (bright squares at random places).
rng = np.random.default_rng(0)
images = np.zeros((512, 8, 8, 1), np.uint8)
for img, (y, x) in zip(images, rng.integers(0, 5, (512, 2))):
  img[y:y + 4, x:x + 4] = 255

gan = state.gan_from_modules(G(), D(), image_shape=(8, 8, 1), latent_dim=16)
cfg = config.Config(batch_size=32, update_order="d_then_g")  # The step's settings.
fns = steps.make_steps(cfg, gan, num_examples=len(images))
train_step = jax.jit(fns.train_step, donate_argnums=0)
batch_step = jax.jit(fns.batch_step, donate_argnums=0)
gan_state = gan.init(jax.random.PRNGKey(0))

device_images = jax.device_put(images)
for _ in range(10):  # Batches gathered on the device by jaxgan's batch order.
  gan_state, metrics = train_step(gan_state, device_images)
print("train_step", {k: round(float(v), 4) for k, v in metrics.items()})

for _ in range(10):  # Batches from your own pipeline: float in G's range [-1, 1].
  batch = images[rng.choice(len(images), cfg.batch_size, replace=False)]
  gan_state, metrics = batch_step(gan_state, batch / 127.5 - 1.0)
print("batch_step", {k: round(float(v), 4) for k, v in metrics.items()})

samples = fns.sample(gan_state, gan.sample_noise(jax.random.PRNGKey(1), 4))
print("step", int(gan_state.step), "samples", samples.shape)
if not all(np.isfinite(float(v)) for v in metrics.values()):
  raise SystemExit("non-finite metrics")
