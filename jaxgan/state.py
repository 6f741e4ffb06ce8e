"""GANState (a pure pytree of arrays) and GAN (its static half).

The state holds arrays only, so it checkpoints, vmaps and shards as one pytree; the
static parts (modules, optax transformations, loss, noise, pixel range) live in `GAN`,
built once from a Config by `make_gan`. Optimizer hyperparameters are injected into
`opt_state.hyperparams` (jaxgan.optim), so a sweep can vary them as array leaves.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import flax
import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import optax

from jaxgan import losses, models
from jaxgan import rng as rng_lib
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
  # {name: float32 scalar}: run-time hyperparameters of the step's objective terms
  # (jaxgan.steps.terms: R1's gamma, ...), array leaves so a population varies them;
  # {} when no term reads one.
  hparams: PyTree = flax.struct.field(default_factory=dict)
  # {term name: pytree}: the state objective terms keep between updates (LeCam's
  # anchors, ...); {} when none does. Steps.init fills both.
  aux: PyTree = flax.struct.field(default_factory=dict)


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
  pack: int = 1  # PacGAN: D judges `pack` samples concatenated channel-wise.
  # Data-dependent initialisation: D is initialised on this many real examples (its
  # layers may set parameters from them: minibatch discrimination's weight norm), and
  # G's parameters may be set from the training images (the paper's output bias).
  init_examples: int = 0
  g_init_from_data: Callable[[Any, jax.Array], Any] | None = None

  @property
  def needs_data(self) -> bool:
    """Whether init() takes the training images (a data-dependent initialisation)."""
    return bool(self.init_examples) or self.g_init_from_data is not None

  def sample_noise(self, key: jax.Array, batch: int) -> jax.Array:
    return models.sample_noise(self.noise, key, (batch, self.latent_dim))

  def init(self, rng: jax.Array, images: jax.Array | None = None) -> GANState:
    """A fresh state from a PRNG key (the run's seed key).

    Args:
      rng: the seed key (jaxgan.rng.seed_key).
      images: the training split [N, H, W, C] (uint8, or float toy points), for a GAN
        whose init depends on data (`needs_data`); without it the parameters have their
        shapes but not their data-dependent values (enough to restore a checkpoint).
    Returns:
      GANState at step 0.
    """
    g_key, d_key, run_key = jax.random.split(rng, 3)
    z = jnp.zeros((1, self.latent_dim), jnp.float32)
    h, w, c = self.image_shape
    x = jnp.zeros((1, h, w, c * self.pack), jnp.float32)
    if self.init_examples and images is not None:
      # The first examples of this run's own batch order (as its first D batch).
      from jaxgan import data
      n = images.shape[0]
      count = min(self.init_examples, n // self.pack)
      idx = data.batch_indices(rng_lib.data_key(run_key), 0, n, count * self.pack)
      real = data.gather_batch(images, idx, self.pixel_range)
      x = jnp.concatenate(jnp.split(real, self.pack, axis=0), axis=-1)
    labels = ({"labels": jnp.zeros((x.shape[0],), jnp.int32)} if self.num_classes
              else {})
    g_vars = self.generator.init(g_key, z, train=False,
                                 **{k: v[:1] for k, v in labels.items()})
    d_vars = self.discriminator.init(d_key, x, train=False, **labels)
    if self.g_init_from_data is not None and images is not None:
      g_vars = {**g_vars, "params": self.g_init_from_data(g_vars["params"], images)}

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


MINIBATCH_INIT_EXAMPLES = 500


def make_gan(config: Config, image_shape: tuple[int, int, int],
             num_classes: int = 0) -> GAN:
  """The static GAN of a registered model (jaxgan.models.MODELS) for `config`.

  Args:
    config: the run's Config (model, loss, optimizer and variant fields are read).
    image_shape: (H, W, C) of the data (toy data: (1, 1, D)).
    num_classes: the dataset's number of classes; used with --conditional (then >= 2).
  Returns:
    GAN: modules, optax transformations, loss, noise, pixel range, shapes.
  Raises:
    ConfigError: the model does not fit the shape, or --conditional without labels.
  """
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
             d_tx=make_optimizer(config, config.lr_d,
                                 differentiable=config.unroll_steps > 0),
             loss=losses.get_loss(config.loss), noise=config.noise or spec.noise,
             pixel_range=spec.pixel_range, latent_dim=config.latent_dim,
             image_shape=tuple(image_shape), g_ema=config.g_ema_decay > 0,
             num_classes=num_classes if config.conditional else 0, pack=config.pack,
             # Minibatch discrimination's data-dependent init (the authors' code
             # initialises on 500 training images).
             init_examples=MINIBATCH_INIT_EXAMPLES if config.minibatch_kernels else 0,
             g_init_from_data=spec.g_init_from_data)


def gan_from_modules(generator: nn.Module, discriminator: nn.Module, *,
                     image_shape: tuple[int, ...], latent_dim: int,
                     g_tx: optax.GradientTransformation | None = None,
                     d_tx: optax.GradientTransformation | None = None,
                     loss: str | losses.Loss | tuple[Callable, Callable] = "non_saturating",
                     noise: str = "normal", pixel_range: tuple[float, float] = (-1.0, 1.0),
                     num_classes: int = 0, g_ema: bool = False, pack: int = 1) -> GAN:
  """A GAN of your own Flax modules, for jaxgan.steps.make_steps.

  The modules' contract is all that is required of them:
    generator: `G.apply(variables, z [B, latent_dim], train=bool) -> [B, *image_shape]`
      in `pixel_range`; BatchNorm statistics in the 'batch_stats' collection if any.
    discriminator: `D.apply(variables, x [B, *image_shape], train=bool) -> logits [B]`;
      dropout, if any, takes the rng 'dropout'. Only feature matching
      (Config.feature_matching) needs more: D must sow its feature layer [B, F] with
      `self.sow('intermediates', 'features', h)`.
    With num_classes > 0 both also take `labels=` ([B] int32).

  Args:
    image_shape: (H, W, C) of the data; latent_dim: the size of z.
    g_tx, d_tx: optax transformations (default: Adam 2e-4, b1 0.5, b2 0.999, with the
      hyperparameters injected so a population can vary them).
    loss: a name of jaxgan.losses.LOSSES, a losses.Loss, or a pair of functions
      `(d_loss(real_logits, fake_logits), g_loss(fake_logits))` to minimise (then the
      d_real/d_fake metrics report D's raw outputs).
    noise: 'normal' or 'uniform' z; pixel_range: the range real data is scaled to.
    g_ema: keep an exponential moving average of G in the state; the Config given to
      make_steps then sets its decay (Config.g_ema_decay > 0), and make_steps refuses a
      Config whose decay says otherwise.
    pack: PacGAN's m: D takes m samples concatenated channel-wise (its input has m*C
      channels); make_steps refuses a Config whose pack differs.
  Returns:
    GAN.
  """
  if g_tx is None or d_tx is None:
    default = make_optimizer(Config(), Config().lr_g)
    g_tx, d_tx = g_tx or default, d_tx or default
  if isinstance(loss, str):
    loss = losses.get_loss(loss)
  elif not isinstance(loss, losses.Loss):
    d_loss, g_loss = loss
    loss = losses.Loss(d_loss=lambda real, fake, hp=None: d_loss(real, fake),
                       g_loss=g_loss, d_output=lambda x: x, cross_entropy=False)
  if noise not in models.NOISES:
    raise ValueError(f"noise={noise!r}: expected one of {models.NOISES}")
  return GAN(generator=generator, discriminator=discriminator, g_tx=g_tx, d_tx=d_tx,
             loss=loss, noise=noise, pixel_range=tuple(pixel_range),
             latent_dim=int(latent_dim), image_shape=tuple(image_shape), g_ema=g_ema,
             num_classes=num_classes, pack=int(pack))


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
