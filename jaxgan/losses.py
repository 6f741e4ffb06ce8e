"""GAN objectives as pure functions of discriminator outputs, and D's constraints.

D's output is a real score per example (a *logit* for the cross-entropy losses, where
D(x) = sigmoid(l); a raw critic value for LSGAN/WGAN/hinge). With D(x) = sigmoid(l) the
log-probabilities are computed stably: log D = -softplus(-l), log(1 - D) = -softplus(l).

Every loss is a `Loss`; both functions are *minimised*:
  d_loss(real_logits [B], fake_logits [B], hp=LossHParams()) -> scalar
  g_loss(fake_logits [B]) -> scalar
plus what the step's parts add around them (jaxgan.steps.terms, resolved before
tracing):
  d_penalty: None, or `gradient_penalty`, weighted by hp.gp_weight (WGAN-GP: the
    'gradient_penalty' D term);
  clip_d: True when D's weights are clipped to [-hp.clip_value, hp.clip_value] before
    each of D's updates, as the WGAN authors' code does (the 'clip' D constraint);
  d_output: maps D's raw output to what the `d_real`/`d_fake` metrics report
    (the probability sigmoid(l) for cross-entropy losses, the raw score otherwise).

The cross-entropy D loss is halved, as in both PyTorch-GAN (`(real_loss + fake_loss) / 2`)
and the paper's code (AdversaryCost2). The other losses are written as their papers do.

Hyperparameters enter through `LossHParams` (label smoothing, gradient-penalty weight,
clip value). jaxgan.steps.loss_hparams builds it from the Config as plain floats today;
each field may equally be a traced array, so a sweep can vmap over them.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array


class LossHParams(NamedTuple):
  """Loss hyperparameters: Python floats or (vmappable) scalar arrays.

  label_smoothing: one-sided (Salimans et al. 2016): D's target for real data is
    1 - label_smoothing, for fakes still 0. In [0, 1). Cross-entropy losses only.
  gp_weight: λ of WGAN-GP (Gulrajani et al. 2017, λ = 10).
  clip_value: c of WGAN (Arjovsky et al. 2017, c = 0.01).
  """

  label_smoothing: float | Array = 0.0
  gp_weight: float | Array = 10.0
  clip_value: float | Array = 0.01


# --------------------------------------------------------------------------- cross-entropy
def bce_d_loss(real_logits: Array, fake_logits: Array,
               hp: LossHParams = LossHParams()) -> Array:
  """½(BCE(D(x), 1 - s) + BCE(D(G(z)), 0)); s = 0 is the paper's value function.

  BCE(l, t) = t·softplus(-l) + (1 - t)·softplus(l) = -t log D - (1 - t) log(1 - D).
  """
  t = 1.0 - hp.label_smoothing
  real = t * jax.nn.softplus(-real_logits) + (1.0 - t) * jax.nn.softplus(real_logits)
  return 0.5 * (jnp.mean(real) + jnp.mean(jax.nn.softplus(fake_logits)))


def minimax_g_loss(fake_logits: Array) -> Array:
  """E log(1 − D(G(z))): the saturating G objective of the paper's equation 1."""
  return -jnp.mean(jax.nn.softplus(fake_logits))


def non_saturating_g_loss(fake_logits: Array) -> Array:
  """−E log D(G(z)): the paper's recommended G objective (strong early gradients)."""
  return jnp.mean(jax.nn.softplus(-fake_logits))


# --------------------------------------------------------------------------- LSGAN
def lsgan_d_loss(real_logits: Array, fake_logits: Array,
                 hp: LossHParams = LossHParams()) -> Array:
  """Mao et al. 2017 (a=0, b=1): ½E(D(x) − 1)² + ½E D(G(z))²."""
  del hp
  return 0.5 * (jnp.mean((real_logits - 1.0) ** 2) + jnp.mean(fake_logits ** 2))


def lsgan_g_loss(fake_logits: Array) -> Array:
  """Mao et al. 2017 (c=1): ½E(D(G(z)) − 1)²."""
  return 0.5 * jnp.mean((fake_logits - 1.0) ** 2)


# --------------------------------------------------------------------------- Wasserstein
def wgan_d_loss(real_logits: Array, fake_logits: Array,
                hp: LossHParams = LossHParams()) -> Array:
  """Arjovsky et al. 2017: the critic maximises E f(x) − E f(G(z)); minimise the negative."""
  del hp
  return jnp.mean(fake_logits) - jnp.mean(real_logits)


def wgan_g_loss(fake_logits: Array) -> Array:
  """−E f(G(z))."""
  return -jnp.mean(fake_logits)


def gradient_penalty(d_fn: Callable[[Array], Array], real: Array, fake: Array,
                     key: Array) -> Array:
  """WGAN-GP's penalty E_x̂ (‖∇_x̂ f(x̂)‖₂ − 1)², x̂ = εx + (1 − ε)x̃, ε ~ U[0, 1] per example.

  d_fn: [B, ...] -> [B] critic values, with examples treated independently (no
  BatchNorm, no minibatch features: Gulrajani et al. use layer norm), so the gradient of
  sum(d_fn(x̂)) with respect to x̂ holds each example's own gradient in its row.
  real, fake: [B, ...] float32. Returns the unweighted scalar penalty.
  """
  eps = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1))
  interpolates = eps * real + (1.0 - eps) * fake
  grads = jax.grad(lambda x: jnp.sum(d_fn(x)))(interpolates)
  norms = jnp.sqrt(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=-1) + 1e-12)
  return jnp.mean((norms - 1.0) ** 2)


def clip_weights(params, clip_value: float | Array):
  """WGAN's Lipschitz constraint: every parameter clipped to [-c, c]."""
  return jax.tree_util.tree_map(lambda p: jnp.clip(p, -clip_value, clip_value), params)


# --------------------------------------------------------------------------- hinge
def hinge_d_loss(real_logits: Array, fake_logits: Array,
                 hp: LossHParams = LossHParams()) -> Array:
  """Lim & Ye 2017 / Miyato et al. 2018: E max(0, 1 − D(x)) + E max(0, 1 + D(G(z)))."""
  del hp
  return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))


def hinge_g_loss(fake_logits: Array) -> Array:
  """−E D(G(z))."""
  return -jnp.mean(fake_logits)


# --------------------------------------------------------------------------- feature matching
def feature_matching_loss(real_features: Array, fake_features: Array) -> Array:
  """Salimans et al. 2016, §3.1: ‖E f(x) − E f(G(z))‖₂² over D's feature layer f.

  real_features, fake_features: [B, F] (batch sizes may differ). G minimises this in
  place of its adversarial loss; D keeps its own loss.
  """
  diff = jnp.mean(real_features, axis=0) - jnp.mean(fake_features, axis=0)
  return jnp.sum(diff ** 2)


# --------------------------------------------------------------------------- registry
def _identity(x: Array) -> Array:
  return x


class Loss(NamedTuple):
  d_loss: Callable[..., Array]
  g_loss: Callable[[Array], Array]
  d_output: Callable[[Array], Array] = jax.nn.sigmoid
  d_penalty: Callable[..., Array] | None = None
  clip_d: bool = False
  cross_entropy: bool = True  # label smoothing applies only to these.


LOSSES: dict[str, Loss] = {
    "minimax": Loss(bce_d_loss, minimax_g_loss),
    "non_saturating": Loss(bce_d_loss, non_saturating_g_loss),
    "lsgan": Loss(lsgan_d_loss, lsgan_g_loss, _identity, cross_entropy=False),
    "wgan": Loss(wgan_d_loss, wgan_g_loss, _identity, clip_d=True,
                 cross_entropy=False),
    "wgan_gp": Loss(wgan_d_loss, wgan_g_loss, _identity, d_penalty=gradient_penalty,
                    cross_entropy=False),
    "hinge": Loss(hinge_d_loss, hinge_g_loss, _identity, cross_entropy=False),
}


def get_loss(name: str) -> Loss:
  if name not in LOSSES:
    raise KeyError(f"unknown loss {name!r}; known: {sorted(LOSSES)}")
  return LOSSES[name]
