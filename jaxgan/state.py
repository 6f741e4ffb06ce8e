"""GANState (a pure pytree of arrays) and GAN (its static half).

The state holds arrays only, so it checkpoints, vmaps and shards as one pytree; the
static parts (modules, optax transformations, loss, noise, pixel range) live in `GAN`,
built once from a Config by `make_gan`. Optimizer hyperparameters are injected into
`opt_state.hyperparams` (jaxgan.optim), so a sweep can vary them as array leaves.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax
import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import optax

from jaxgan import losses, models
from jaxgan.config import Config
from jaxgan.errors import ConfigError
from jaxgan.optim import make_optimizer

PyTree = Any


class NetState(flax.struct.PyTreeNode):
  """One network's trainable state: parameters, BatchNorm statistics, optimizer state."""

  params: PyTree
  batch_stats: PyTree  # {} for models without BatchNorm.
  opt_state: PyTree


class GANState(flax.struct.PyTreeNode):
  """The whole training state; a run is a pure function of (config, this state).

  step: int32 scalar, completed train steps. rng: the run's PRNG key (uint32 [2]);
  per-step keys are derived with fold_in(rng, step), never stored.
  """

  step: jax.Array
  rng: jax.Array
  g: NetState
  d: NetState
  # {'params', 'batch_stats'}: the exponential moving average of G (--g_ema_decay > 0),
  # used for samples and evaluation; {} when off.
  g_ema: PyTree = flax.struct.field(default_factory=dict)


class GAN(NamedTuple):
  """The static half of a GAN: modules, optimizers, objective; built once per config."""

  generator: nn.Module
  discriminator: nn.Module
  g_tx: optax.GradientTransformation
  d_tx: optax.GradientTransformation
  loss: losses.Loss
  noise: str
  pixel_range: tuple[float, float]
  latent_dim: int
  image_shape: tuple[int, int, int]
  g_ema: bool = False  # Keep an EMA copy of G in the state.
  num_classes: int = 0  # > 0: class-conditional G and D (they take `labels`).

  def sample_noise(self, key: jax.Array, batch: int) -> jax.Array:
    return models.sample_noise(self.noise, key, (batch, self.latent_dim))

  def init(self, rng: jax.Array) -> GANState:
    """A fresh state from a PRNG key (the run's seed key)."""
    g_key, d_key, run_key = jax.random.split(rng, 3)
    z = jnp.zeros((1, self.latent_dim), jnp.float32)
    x = jnp.zeros((1,) + self.image_shape, jnp.float32)
    labels = {"labels": jnp.zeros((1,), jnp.int32)} if self.num_classes else {}
    g_vars = self.generator.init(g_key, z, train=False, **labels)
    d_vars = self.discriminator.init(d_key, x, train=False, **labels)

    def net(variables, tx):
      params = variables["params"]
      return NetState(params=params, batch_stats=variables.get("batch_stats", {}),
                      opt_state=tx.init(params))

    g = net(g_vars, self.g_tx)
    # A copy, not an alias: the train step donates the state, and one buffer cannot be
    # donated twice.
    g_ema = (jax.tree_util.tree_map(jnp.copy, {"params": g.params,
                                                "batch_stats": g.batch_stats})
             if self.g_ema else {})
    return GANState(step=jnp.zeros((), jnp.int32), rng=run_key,
                    g=g, d=net(d_vars, self.d_tx), g_ema=g_ema)


def make_gan(config: Config, image_shape: tuple[int, int, int],
             num_classes: int = 0) -> GAN:
  """The static GAN for `config`; `num_classes` (the dataset's) is used when
  --conditional is set, and then must be >= 2."""
  spec = models.get_model(config.model)
  if config.conditional and num_classes < 2:
    raise ConfigError(f"--conditional needs a dataset with class labels, but "
                      f"{config.data_name!r} has {num_classes} classes; use a "
                      "labelled dataset or drop --conditional.")
  problem = spec.check_shape(tuple(image_shape))
  if problem:
    raise ConfigError(f"--model={config.model} cannot train on the data "
                      f"{config.data_name!r} of shape {list(image_shape)}: {problem}.")
  generator = spec.generator(tuple(image_shape))
  discriminator = spec.discriminator(tuple(image_shape),
                                     models.ModelOptions.from_config(config))
  if config.conditional:
    generator = models.ConditionalGenerator(generator, num_classes)
    discriminator = models.ConditionalDiscriminator(discriminator, num_classes)
  return GAN(generator=generator, discriminator=discriminator,
             g_tx=make_optimizer(config, config.lr_g),
             d_tx=make_optimizer(config, config.lr_d),
             loss=losses.get_loss(config.loss), noise=config.noise or spec.noise,
             pixel_range=spec.pixel_range, latent_dim=config.latent_dim,
             image_shape=tuple(image_shape), g_ema=config.g_ema_decay > 0,
             num_classes=num_classes if config.conditional else 0)


def named_leaves(tree) -> dict[str, object]:
  """{'g/params/Dense_0/kernel': leaf, ...} for a GANState or a nested-dict tree: the
  one naming scheme of state paths (checkpoints, divergence reports)."""
  def name(key) -> str:  # DictKey.key, GetAttrKey.name, SequenceKey.idx, ...
    for attr in ("key", "name", "idx"):
      if hasattr(key, attr):
        return str(getattr(key, attr))
    return str(key)

  tree = flax.serialization.to_state_dict(tree)
  return {"/".join(name(k) for k in path): leaf
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}
