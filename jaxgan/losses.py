"""GAN objectives as pure functions of discriminator logits.

With D(x) = sigmoid(l), the log-probabilities are computed stably from logits:
log D = -softplus(-l) and log(1 - D) = -softplus(l).

Every loss is a pair of functions, both to be *minimised*:
  d_loss(real_logits [B], fake_logits [B]) -> scalar
  g_loss(fake_logits [B]) -> scalar
D's loss is the mean binary cross-entropy over the real and the fake half, halved as in
both PyTorch-GAN (`(real_loss + fake_loss) / 2`) and the paper's code (AdversaryCost2).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array


def bce_d_loss(real_logits: Array, fake_logits: Array) -> Array:
  """½(−E log D(x) − E log(1 − D(G(z)))): D's side of the paper's value function."""
  return 0.5 * (jnp.mean(jax.nn.softplus(-real_logits))
                + jnp.mean(jax.nn.softplus(fake_logits)))


def minimax_g_loss(fake_logits: Array) -> Array:
  """E log(1 − D(G(z))): the saturating G objective of the paper's equation 1."""
  return -jnp.mean(jax.nn.softplus(fake_logits))


def non_saturating_g_loss(fake_logits: Array) -> Array:
  """−E log D(G(z)): the paper's recommended G objective (strong early gradients)."""
  return jnp.mean(jax.nn.softplus(-fake_logits))


class Loss(NamedTuple):
  d_loss: Callable[[Array, Array], Array]
  g_loss: Callable[[Array], Array]


LOSSES: dict[str, Loss] = {
    "minimax": Loss(bce_d_loss, minimax_g_loss),
    "non_saturating": Loss(bce_d_loss, non_saturating_g_loss),
}


def get_loss(name: str) -> Loss:
  if name not in LOSSES:
    raise KeyError(f"unknown loss {name!r}; known: {sorted(LOSSES)}")
  return LOSSES[name]
