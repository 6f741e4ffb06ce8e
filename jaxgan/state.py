"""GANState (a pure pytree of arrays) and the optimizers that update it.

The state holds arrays only, so it checkpoints, vmaps and shards as one pytree; the
static parts (modules, optax transformations) live in `GAN`, built once from a Config.
Optimizer hyperparameters are injected into `opt_state.hyperparams` (optax
`inject_hyperparams`), so a sweep can vary them as array leaves.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxgan import hostmem, losses, models
from jaxgan.config import Config
from jaxgan.errors import ConfigError

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


# A program that runs once per process (the initial state) needs no optimised code: on
# CPU, LLVM at -O0 with XLA's elemental emitters compiles the mlp's init in 0.8 s instead
# of 3.0 s (its ~25 threefry calls become ~116 fused kernels). The values agree with the
# optimised build to ~1 ulp, and every process compiles the init the same way.
_ONE_SHOT_CPU_OPTIONS = {"xla_backend_optimization_level": 0,
                         "xla_cpu_use_fusion_emitters": False}


def one_shot_compiler_options() -> dict[str, Any]:
  """XLA options for a program whose speed does not matter (runs once, or is tiny)."""
  return dict(_ONE_SHOT_CPU_OPTIONS) if jax.default_backend() == "cpu" else {}


# The train step on CPU: XLA's region-based copy insertion proves that the donated
# parameters are read before the optimizer overwrites them in place, so the mlp step
# loses 11 parameter copies (and 66 other copies): +6% steps/s for mlp, +9% for a
# population of 8, in-process A/B runs; the results are bit-identical.
_STEP_CPU_OPTIONS = {"xla_cpu_copy_insertion_use_region_analysis": True}


def step_compiler_options() -> dict[str, Any]:
  """XLA options for the train step (jax.jit(..., compiler_options=...))."""
  return dict(_STEP_CPU_OPTIONS) if jax.default_backend() == "cpu" else {}


def compile_once(fn: Callable, *args: Any, **jit_kwargs: Any) -> Callable:
  """jax.jit(fn, **jit_kwargs) compiled for `args` with options for a program that runs
  once (cheap compilation, unoptimised code) on CPU; as plain jit elsewhere."""
  return compile_lowered_once(jax.jit(fn, **jit_kwargs).lower(*args))


def compile_lowered_once(lowered: Any) -> Callable:
  """compile_once for an already lowered program (jax.stages.Lowered)."""
  compiled = lowered.compile(one_shot_compiler_options())
  hostmem.release_freed_memory()
  return compiled


def initial_state(gan: "GAN", key: jax.Array) -> GANState:
  """gan.init(key), compiled as a one-shot program (eager init compiles op by op and is
  ~5x slower still)."""
  return compile_once(gan.init, key)(key)


def make_gan(config: Config, image_shape: tuple[int, int, int],
             num_classes: int = 0) -> GAN:
  """The static GAN for `config`; `num_classes` (the dataset's) is used when
  --conditional is set, and then must be >= 2."""
  spec = models.get_model(config.model)
  if config.conditional and num_classes < 2:
    raise ConfigError(f"--conditional needs a dataset with class labels, but "
                      f"--dataset={config.dataset!r} has {num_classes} classes; use a "
                      "labelled dataset or drop --conditional.")
  if config.model == "dcgan":
    from jaxgan import dcgan
    problem = dcgan.check_image_shape(tuple(image_shape))
    if problem:
      raise ConfigError(f"--model=dcgan cannot train on --dataset={config.dataset!r} "
                        f"({problem}); expected square images such as 28x28 or 32x32.")
  generator = spec.generator(tuple(image_shape))
  discriminator = spec.discriminator(tuple(image_shape),
                                     models.ModelOptions.from_config(config))
  if config.conditional:
    from jaxgan import conditional
    generator = conditional.ConditionalGenerator(generator, num_classes)
    discriminator = conditional.ConditionalDiscriminator(discriminator, num_classes)
  return GAN(generator=generator, discriminator=discriminator,
             g_tx=make_optimizer(config, config.lr_g),
             d_tx=make_optimizer(config, config.lr_d),
             loss=losses.get_loss(config.loss), noise=config.noise or spec.noise,
             pixel_range=spec.pixel_range, latent_dim=config.latent_dim,
             image_shape=tuple(image_shape), g_ema=config.g_ema_decay > 0,
             num_classes=num_classes if config.conditional else 0)
