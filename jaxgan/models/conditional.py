"""Class-conditional G and D (Mirza & Osindero 2014, "Conditional Generative Adversarial
Nets"): both players receive the label y as a one-hot code concatenated to their input.

  G(z, y) = G_inner([z, onehot(y)])                      z [B, latent], y [B] int32
  D(x, y) = D_inner([x, onehot(y) broadcast over H, W])  x [B, H, W, C] -> [B] logits

Any registered model works as the inner network: its first layer simply sees
latent + K (G) or C + K channels (D). The steps train D and G on fakes made for the
labels of the real batch, and the sample grid cycles through the classes.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class ConditionalGenerator(nn.Module):
  inner: nn.Module
  num_classes: int

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True,
               labels: jax.Array | None = None) -> jax.Array:
    y = jax.nn.one_hot(labels, self.num_classes, dtype=z.dtype)
    return self.inner(jnp.concatenate([z, y], axis=-1), train=train)


class ConditionalDiscriminator(nn.Module):
  inner: nn.Module
  num_classes: int

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True,
               labels: jax.Array | None = None) -> jax.Array:
    y = jax.nn.one_hot(labels, self.num_classes, dtype=x.dtype)
    y = jnp.broadcast_to(y[:, None, None, :], x.shape[:3] + (self.num_classes,))
    return self.inner(jnp.concatenate([x, y], axis=-1), train=train)
