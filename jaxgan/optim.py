"""The optimizers of G and D, with their hyperparameters as array leaves.

Hyperparameters are injected into `opt_state.hyperparams` (optax `inject_hyperparams`),
so a population can hold one value per member and the step reads it at run time.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

from jaxgan.config import Config


def make_optimizer(config: Config, learning_rate: float) -> optax.GradientTransformation:
  """Adam(lr, b1, b2), or SGD with momentum and the paper's exponential lr decay."""
  if config.optimizer == "adam":
    return optax.inject_hyperparams(optax.adam)(
        learning_rate=learning_rate, b1=config.b1, b2=config.b2)
  if config.optimizer == "sgd":
    # pylearn2's ExponentialDecay divides lr by decay_factor after every update, down to
    # min_lr; its MomentumAdjustor ramps momentum linearly to final_momentum.
    def lr_schedule(count):
      return jnp.maximum(learning_rate / config.lr_decay ** count, config.min_lr)

    if config.momentum_ramp_steps:
      momentum = optax.linear_schedule(config.momentum, config.final_momentum,
                                       config.momentum_ramp_steps)
    else:
      momentum = config.momentum
    return optax.inject_hyperparams(optax.sgd)(learning_rate=lr_schedule,
                                               momentum=momentum)
  if config.optimizer == "rmsprop":
    # WGAN (Arjovsky et al. 2017) uses RMSProp: momentum-based methods destabilised
    # its critic. decay 0.99, eps 1e-8 are torch.optim.RMSprop's defaults, which the
    # authors' code used.
    return optax.inject_hyperparams(optax.rmsprop)(learning_rate=learning_rate,
                                                   decay=0.99, eps=1e-8)
  raise ValueError(f"unknown optimizer {config.optimizer!r}")
