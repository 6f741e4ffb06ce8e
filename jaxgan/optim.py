"""The optimizers of G and D, with their hyperparameters as array leaves.

Hyperparameters are injected into `opt_state.hyperparams` (optax `inject_hyperparams`),
so a population can hold one value per member and the step reads it at run time.
"""

from __future__ import annotations

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
    # its critic. The authors' code used torch.optim.RMSprop's defaults: alpha 0.99,
    # eps 1e-8 added *outside* the square root, p -= lr g / (sqrt(v) + eps); optax puts
    # eps inside by default, which for small gradients makes the steps ~10x smaller.
    return optax.inject_hyperparams(optax.rmsprop, static_args=("eps_in_sqrt",))(
        learning_rate=learning_rate, decay=0.99, eps=1e-8, eps_in_sqrt=False)
  raise ValueError(f"unknown optimizer {config.optimizer!r}")
