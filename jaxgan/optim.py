"""The optimizers of G and D, with their hyperparameters as array leaves.

Hyperparameters are injected into `opt_state.hyperparams` (optax `inject_hyperparams`),
so a population can hold one value per member and the step reads it at run time.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import optax

from jaxgan.config import Config


def make_optimizer(config: Config, learning_rate: float,
                   differentiable: bool = False) -> optax.GradientTransformation:
  """Adam(lr, b1, b2), SGD with momentum and the paper's exponential lr decay, or
  RMSprop as torch's (WGAN).

  differentiable: the updates are differentiated through (the unrolled GAN's D): Adam
  then adds eps_root = 1e-16 under its square root, whose derivative is infinite at 0
  (a gradient that is exactly 0, e.g. a maxout piece never selected, would make the
  unrolled gradient NaN); optax's documented remedy, numerically negligible next to
  eps = 1e-8.
  """
  if config.optimizer == "adam":
    if differentiable:
      return optax.inject_hyperparams(optax.adam)(
          learning_rate=learning_rate, b1=config.b1, b2=config.b2, eps_root=1e-16)
    return optax.inject_hyperparams(optax.adam)(
        learning_rate=learning_rate, b1=config.b1, b2=config.b2)
  if config.optimizer == "sgd":
    # pylearn2's ExponentialDecay divides lr by decay_factor after every update, down to
    # min_lr: update t (from 0) uses lr / decay^t. Computed as lr * exp(-t log(decay))
    # with log(decay) taken in float64: in float32, 1.000004 itself rounds to
    # 1.0000040531, a decay 1.3% faster than the paper's (lr 0.8% low at update 150,000).
    log_decay = math.log(config.lr_decay)

    def lr_schedule(count):
      return jnp.maximum(learning_rate * jnp.exp(-log_decay * count), config.min_lr)

    # pylearn2's MomentumAdjustor ramps momentum per epoch, in steps of
    # (final - initial) / (saturate - start); this ramp is linear per update, so within an
    # epoch it runs ahead of pylearn2's by less than one step (tests/test_optim.py).
    # pylearn2's Momentum keeps inc <- m inc - lr g (lr inside the velocity); optax's sgd
    # keeps trace <- g + m trace and steps -lr trace: the same while lr is constant; as
    # lr decays, optax's momentum acts as m / decay (1.000004: 4e-6 relative).
    if config.momentum_ramp_steps:
      momentum = optax.linear_schedule(config.momentum, config.final_momentum,
                                       config.momentum_ramp_steps)
    else:
      momentum = config.momentum
    return optax.inject_hyperparams(optax.sgd)(learning_rate=lr_schedule,
                                               momentum=momentum)
  if config.optimizer == "rmsprop":
    # WGAN (Arjovsky et al. 2017) uses RMSProp: momentum-based methods destabilised
    # its critic. The authors' code used torch.optim.RMSprop's defaults: alpha 0.99,
    # eps 1e-8 added *outside* the square root, p -= lr g / (sqrt(v) + eps); optax puts
    # eps inside by default, which for small gradients makes the steps ~10x smaller.
    return optax.inject_hyperparams(optax.rmsprop, static_args=("eps_in_sqrt",))(
        learning_rate=learning_rate, decay=0.99, eps=1e-8, eps_in_sqrt=False)
  raise ValueError(f"unknown optimizer {config.optimizer!r}")
