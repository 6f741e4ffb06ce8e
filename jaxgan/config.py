"""The run configuration: one frozen dataclass, validated once.

Library code takes a `Config` (never absl FLAGS), so it can be built in a notebook:

    cfg = Config(dataset="mnist", num_steps=1000)
    cfg.validate()

`from_flags` builds one from parsed absl flags; main.py is its only caller.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from jaxgan.errors import ConfigError

UPDATE_ORDERS = ("d_then_g", "g_then_d", "simultaneous")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
NOISES = ("", "normal", "uniform")


@dataclasses.dataclass(frozen=True)
class Config:
  """Everything that determines a run. Field names equal the flag names."""

  # Data.
  dataset: str = "mnist"
  data_dir: str = ""  # A folder of IDX files; when set, no tfds download is attempted.
  # Model and objective.
  model: str = "mlp"
  loss: str = "non_saturating"
  latent_dim: int = 100
  # Algorithm 1 of Goodfellow et al. 2014.
  num_d_steps: int = 1  # k: D updates per G update.
  update_order: str = "d_then_g"
  batch_size: int = 64
  num_steps: int = 0  # Train steps (one step = k D updates + one G update).
  num_epochs: float = 0.0  # Used when num_steps is 0: epochs of D's real batches.
  # Optimizers (separate learning rates for G and D; the rest shared).
  optimizer: str = "adam"
  lr_g: float = 2e-4
  lr_d: float = 2e-4
  b1: float = 0.5
  b2: float = 0.999
  momentum: float = 0.5  # sgd only.
  final_momentum: float = 0.5  # sgd: momentum ramps linearly to this ...
  momentum_ramp_steps: int = 0  # ... over this many optimizer updates (0 = constant).
  lr_decay: float = 1.0  # sgd: lr_t = max(lr / lr_decay**t, min_lr) (paper: 1.000004).
  min_lr: float = 0.0
  # GAN variants (issue 4; jaxgan/losses.py, layers.py, dcgan.py, toy.py).
  label_smoothing: float = 0.0  # One-sided: D's real target is 1 - this (BCE losses).
  gp_weight: float = 10.0  # λ of WGAN-GP's gradient penalty (--loss=wgan_gp).
  clip_value: float = 0.01  # c of WGAN's weight clipping (--loss=wgan).
  feature_matching: bool = False  # G matches the mean of D's feature layer instead.
  minibatch_kernels: int = 0  # Minibatch discrimination kernels B in D (0 = off).
  minibatch_kernel_dim: int = 5  # ... and their dimension C.
  d_norm: str = "batch"  # dcgan D's normalisation: batch, layer or none.
  g_ema_decay: float = 0.0  # EMA of G's weights for samples/evaluation (0 = off).
  noise: str = ""  # z's distribution: normal or uniform ("" = the model's own).
  conditional: bool = False  # Class-conditional G and D (the dataset's labels).
  # Randomness.
  seed: int = 0
  # Loop schedule (0 = never; every schedule also fires on the last step).
  log_every: int = 100
  sample_every: int = 400
  checkpoint_every: int = 1000
  sample_grid: int = 5  # Sample grids are sample_grid x sample_grid images.
  max_checkpoints: int = 3
  # Performance: train steps per jit dispatch (lax.scan); results are bit-identical.
  steps_per_call: int = 1
  # Evaluation (jaxgan/eval): FID, KID, IS, Parzen, modes every N steps (0 = never).
  eval_every: int = 0
  eval_num_samples: int = 10000  # Generated samples per evaluation.
  eval_parzen: bool = True  # Also the paper's Parzen-window estimate (seconds more).
  classifier_dir: str = ""  # Classifier cache ('' = ~/.cache/jaxgan/classifiers).
  # Sweeps (population.py, sweep.py): NAME=V1,V2,... specs, trained as one population.
  sweep: tuple[str, ...] = ()
  sweep_metric: str = ""  # Ranks sweep members; "" = fid when evaluated, else g_loss.
  mesh_shape: str = ""  # POP,DATA devices of the population mesh; "" = automatic.

  # ------------------------------------------------------------------ validation
  def validate(self) -> "Config":
    """Raises ConfigError naming the flag and the expected value; returns self."""
    # Imported here: the registries import this module's neighbours.
    from jaxgan import data, losses, models

    def need(cond: bool, flag: str, value: Any, expected: str) -> None:
      if not cond:
        raise ConfigError(f"--{flag}={value!r} is invalid: expected {expected}.")

    # Types first (a Config built in Python can hold anything), so that every check
    # below compares numbers with numbers. A field's type is its default's type.
    for field in dataclasses.fields(self):
      value, kind = getattr(self, field.name), type(field.default)
      if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
      elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
      else:
        ok = isinstance(value, kind)
      need(ok, field.name, value, f"a{'n' if kind is int else ''} {kind.__name__}")

    need(self.model in models.MODELS, "model", self.model,
         f"one of {sorted(models.MODELS)}")
    need(self.loss in losses.LOSSES, "loss", self.loss,
         f"one of {sorted(losses.LOSSES)}")
    need(self.update_order in UPDATE_ORDERS, "update_order", self.update_order,
         f"one of {list(UPDATE_ORDERS)}")
    need(self.optimizer in OPTIMIZERS, "optimizer", self.optimizer,
         f"one of {list(OPTIMIZERS)}")
    if not self.data_dir:
      data.check_dataset_name(self.dataset)
    for name in ("latent_dim", "num_d_steps", "batch_size", "sample_grid",
                 "max_checkpoints", "steps_per_call"):
      value = getattr(self, name)
      need(isinstance(value, int) and value >= 1, name, value, "an integer >= 1")
    for name in ("num_steps", "log_every", "sample_every", "checkpoint_every",
                 "eval_every"):
      value = getattr(self, name)
      need(isinstance(value, int) and value >= 0, name, value, "an integer >= 0")
    need(isinstance(self.eval_num_samples, int) and self.eval_num_samples >= 10,
         "eval_num_samples", self.eval_num_samples,
         "an integer >= 10 (the Inception Score uses 10 splits)")
    need(self.num_steps > 0 or self.num_epochs > 0, "num_steps", self.num_steps,
         "a positive number of steps (or a positive --num_epochs)")
    need(math.isfinite(self.num_epochs) and self.num_epochs >= 0, "num_epochs",
         self.num_epochs, "a finite number >= 0")
    for name in ("lr_g", "lr_d"):
      value = getattr(self, name)
      need(math.isfinite(value) and value > 0, name, value,
           "a finite learning rate > 0")
    for name in ("b1", "b2", "momentum", "final_momentum"):
      value = getattr(self, name)
      need(math.isfinite(value) and 0 <= value < 1, name, value,
           "a number in [0, 1)")
    need(self.momentum_ramp_steps >= 0, "momentum_ramp_steps",
         self.momentum_ramp_steps, "an integer >= 0")
    need(math.isfinite(self.lr_decay) and self.lr_decay >= 1, "lr_decay",
         self.lr_decay, "a factor >= 1 (1 = no decay)")
    need(math.isfinite(self.min_lr) and self.min_lr >= 0, "min_lr", self.min_lr,
         "a number >= 0")
    need(math.isfinite(self.label_smoothing) and 0 <= self.label_smoothing < 1,
         "label_smoothing", self.label_smoothing, "a number in [0, 1)")
    if self.label_smoothing and not losses.LOSSES[self.loss].cross_entropy:
      raise ConfigError(
          f"--label_smoothing={self.label_smoothing} cannot be combined with "
          f"--loss={self.loss}: one-sided label smoothing changes the cross-entropy "
          "target of real data; use --loss=non_saturating or minimax, or "
          "--label_smoothing=0.")
    need(math.isfinite(self.gp_weight) and self.gp_weight >= 0, "gp_weight",
         self.gp_weight, "a finite number >= 0")
    need(math.isfinite(self.clip_value) and self.clip_value > 0, "clip_value",
         self.clip_value, "a finite number > 0")
    need(isinstance(self.minibatch_kernels, int) and self.minibatch_kernels >= 0,
         "minibatch_kernels", self.minibatch_kernels, "an integer >= 0 (0 = off)")
    need(isinstance(self.minibatch_kernel_dim, int) and self.minibatch_kernel_dim >= 1,
         "minibatch_kernel_dim", self.minibatch_kernel_dim, "an integer >= 1")
    from jaxgan import dcgan
    need(self.d_norm in dcgan.D_NORMS, "d_norm", self.d_norm,
         f"one of {list(dcgan.D_NORMS)}")
    need(math.isfinite(self.g_ema_decay) and 0 <= self.g_ema_decay < 1, "g_ema_decay",
         self.g_ema_decay, "a number in [0, 1) (0 = no EMA)")
    need(self.noise in NOISES, "noise", self.noise,
         "'normal', 'uniform' or '' (the model's own)")
    if self.loss == "wgan_gp" and (
        self.minibatch_kernels or (self.model == "dcgan" and self.d_norm == "batch")):
      raise ConfigError(
          f"--loss=wgan_gp needs a D that treats examples independently, but "
          f"--minibatch_kernels={self.minibatch_kernels} --model={self.model} "
          f"--d_norm={self.d_norm} couples the examples of a batch, so the gradient "
          "penalty would not be per example; use --minibatch_kernels=0 and, for "
          "dcgan, --d_norm=layer (Gulrajani et al.) or --d_norm=none.")
    need(isinstance(self.seed, int) and 0 <= self.seed < 2**32, "seed", self.seed,
         "an integer in [0, 2**32)")
    # The step counter and the batch number (step * k + i) are int32 on the device.
    need(self.num_steps * self.num_d_steps < 2**31, "num_steps", self.num_steps,
         f"at most {2**31 // self.num_d_steps - 1} with --num_d_steps="
         f"{self.num_d_steps} (the step counter is int32)")
    if self.num_steps > 0 and self.num_epochs > 0:
      raise ConfigError(
          f"--num_steps={self.num_steps} and --num_epochs={self.num_epochs} contradict "
          "each other: set one of them (the other to 0).")
    if self.optimizer != "sgd":
      for name, neutral in (("lr_decay", 1.0), ("min_lr", 0.0),
                            ("momentum_ramp_steps", 0)):
        if getattr(self, name) != neutral:
          raise ConfigError(
              f"--{name}={getattr(self, name)!r} only applies to --optimizer=sgd, but "
              f"--optimizer={self.optimizer!r}; drop it or set it to {neutral}.")
    else:
      for name in ("lr_g", "lr_d"):
        need(self.min_lr <= getattr(self, name), "min_lr", self.min_lr,
             f"a floor at most --{name}={getattr(self, name)} (the decayed rate "
             "never goes below it)")
    if self.update_order == "simultaneous" and self.num_d_steps != 1:
      raise ConfigError(
          f"--num_d_steps={self.num_d_steps} cannot be combined with "
          "--update_order=simultaneous: a simultaneous update applies one D and one "
          "G gradient from the same minibatch; use --num_d_steps=1 or another "
          "--update_order.")
    if self.sweep:
      from jaxgan import population  # Checks the sweep specs' syntax and names.
      population.parse_sweep(self.sweep)
    if self.mesh_shape:
      from jaxgan import population
      population.parse_mesh_shape(self.mesh_shape)
    return self

  def steps_for(self, num_examples: int) -> int:
    """Number of train steps: --num_steps, or --num_epochs of D's real batches."""
    if self.num_steps:
      return self.num_steps
    batches_per_epoch = num_examples // self.batch_size
    return max(1, math.ceil(self.num_epochs * batches_per_epoch / self.num_d_steps))

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)


FIELDS = tuple(f.name for f in dataclasses.fields(Config))


def from_flags(flag_values: Any) -> Config:
  """Builds a Config from parsed absl flags whose names equal the field names."""
  kwargs = {}
  for field in dataclasses.fields(Config):
    if field.name in flag_values:
      kwargs[field.name] = flag_values[field.name].value
  if kwargs.get("sweep") is not None:
    kwargs["sweep"] = tuple(kwargs["sweep"])  # A multi-string flag gives a list.
  return Config(**kwargs)
