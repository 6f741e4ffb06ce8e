"""The run configuration: one frozen dataclass, validated once, and its command line.

Library code takes a `Config` (never absl FLAGS), so it can be built in a notebook:

    cfg = Config(dataset="mnist", num_steps=1000)
    cfg.validate()

Each field carries its flag's help text, so a field is a flag: `define_flags()` declares
one absl flag per field (same name, type and default) and `from_flags` builds the Config
back from them. The command-line programs (jaxgan.cli) are the only callers of both.

Command-line rule: a flag overrides any earlier setting of it, flagfiles included
(absl's own rule). `--num_steps` and `--num_epochs` are one setting, the run's length,
in two units: whichever of them comes last on the command line (flagfiles expanded in
place) decides it, and the other is set to 0. So
`--flagfile=experiments/mnist.flags --num_steps=30` trains 30 steps even though the
flagfile says `--num_epochs=200`. A length given there is a value, not "unset": if the
deciding one is 0 or negative the command line is refused (ConfigError), so
`--flagfile=experiments/mnist.flags --num_steps=0` does not train the flagfile's 200
epochs.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from typing import Any, Callable, Sequence

from jaxgan.errors import ConfigError

UPDATE_ORDERS = ("d_then_g", "g_then_d", "simultaneous")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
RUN_LENGTH = ("num_steps", "num_epochs")
D_STEPS_SCHEDULES = ("", "wgan")
UNROLL_OBJECTIVES = ("g_loss", "minimax")
FEATURE_NETWORKS = ("classifier", "inception")  # jaxgan.eval.members.make_evaluator.
# --diffaugment's names: jaxgan.steps.augment.POLICIES (the authors' AUGMENT_FNS).
DIFFAUGMENT_POLICIES = ("color", "translation", "cutout")


def _field(default: Any, help: str) -> Any:  # noqa: A002 (absl's name for it)
  return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class Config:
  """Everything that determines a run. Field names equal the flag names."""

  # Data.
  dataset: str = _field("mnist", "tfds dataset name (e.g. mnist, fashion_mnist) or a toy "
                        "dataset (toy_ring8, toy_grid25, toy_gauss1d). Not used with "
                        "--data_dir, whose data is named after its folder.")
  data_dir: str = _field("", "Folder with MNIST-format IDX files "
                         "(train-images-idx3-ubyte[.gz], ...), read directly, no "
                         "download; the data is named after the folder "
                         "(.../fashion-mnist -> fashion_mnist).")
  # Model and objective.
  model: str = _field("mlp", "Model: mlp (PyTorch-GAN gan.py), paper_mlp, dcgan "
                      "(28x28 / 32x32), resnet (SNGAN, 28x28 / 32x32) or toy_mlp "
                      "(toy_* datasets).")
  loss: str = _field("non_saturating", "GAN loss: non_saturating, minimax, lsgan, wgan "
                     "(weight clipping), wgan_gp (gradient penalty) or hinge.")
  latent_dim: int = _field(100, "Dimension of z.")
  # Algorithm 1 of Goodfellow et al. 2014.
  num_d_steps: int = _field(1, "k: D updates per G update.")
  update_order: str = _field("d_then_g", "d_then_g (Algorithm 1), g_then_d "
                             "(PyTorch-GAN) or simultaneous (the paper's code).")
  batch_size: int = _field(64, "Minibatch size m.")
  num_steps: int = _field(0, "Train steps (k D updates + 1 G update each). The later "
                          "of --num_steps and --num_epochs on the command line wins.")
  num_epochs: float = _field(0.0, "Epochs of D's real batches (N / batch_size D updates "
                             "each, whatever --pack, as PacGAN counts them), used instead "
                             "of --num_steps; the later of the two on the command line "
                             "wins.")
  # Optimizers (separate learning rates for G and D; the rest shared).
  optimizer: str = _field("adam", "adam, sgd (momentum, lr decay) or rmsprop (WGAN).")
  lr_g: float = _field(2e-4, "Generator learning rate.")
  lr_d: float = _field(2e-4, "Discriminator learning rate.")
  b1: float = _field(0.5, "Adam beta1.")
  b2: float = _field(0.999, "Adam beta2.")
  momentum: float = _field(0.5, "SGD initial momentum.")
  final_momentum: float = _field(0.5, "SGD momentum after the ramp.")
  momentum_ramp_steps: int = _field(0, "SGD: updates over which momentum ramps linearly "
                                    "to --final_momentum (0 = constant).")
  lr_decay: float = _field(1.0, "SGD: lr is divided by this after each update "
                           "(the paper: 1.000004).")
  min_lr: float = _field(0.0, "SGD: floor of the decayed learning rate.")
  # GAN variants.
  label_smoothing: float = _field(0.0, "One-sided label smoothing: D's target for real "
                                  "data is 1 - this (BCE losses only).")
  gp_weight: float = _field(10.0, "WGAN-GP gradient-penalty weight lambda.")
  clip_value: float = _field(0.01, "WGAN weight-clipping bound c.")
  r1_gamma: float = _field(0.0, "R1 (Mescheder et al. 2018): gamma/2 * E|grad_x D(x)|^2 "
                           "on real x added to D's loss (0 = off; StyleGAN2: 10). Needs a "
                           "D that treats examples independently.")
  r2_gamma: float = _field(0.0, "R2: the same penalty on D's fake batch (0 = off).")
  d_reg_interval: int = _field(1, "Lazy R1/R2 (StyleGAN2): the penalty on every Nth D "
                               "update only, weighted by N (1 = every update; "
                               "StyleGAN2: 16).")
  lecam_weight: float = _field(0.0, "LeCam regularization weight lambda (Tseng et al. "
                               "2021): D's outputs held near EMA anchors of its mean "
                               "output on the other kind of data (0 = off; the "
                               "authors' BigGAN: 0.3).")
  lecam_decay: float = _field(0.9, "LeCam: decay of the anchors' EMA (the authors' 0.9).")
  lecam_start: int = _field(1000, "LeCam: the anchors are the batch's mean outputs "
                            "before this train step and an EMA from it on; the penalty "
                            "applies after it (the authors' 1000).")
  feature_matching: bool = _field(False, "G minimises the distance between D's mean "
                                  "features on real and fake data (Salimans et al.).")
  minibatch_kernels: int = _field(0, "Minibatch discrimination kernels B in D's last "
                                  "layer (0 = off).")
  minibatch_kernel_dim: int = _field(5, "Minibatch discrimination kernel dimension C.")
  d_norm: str = _field("batch", "D's normalisation: batch or layer (dcgan's hidden "
                       "convs), spectral (every D layer, head too: mlp, dcgan, toy_mlp, "
                       "pacgan_mlp, resnet) or none; resnet takes spectral (SNGAN) or "
                       "none.")
  g_ema_decay: float = _field(0.0, "Decay of the EMA of G's weights used for samples "
                              "and evaluation (0 = off; e.g. 0.999).")
  noise: str = _field("", "z distribution: normal or uniform (empty = the model's own).")
  conditional: bool = _field(False, "Class-conditional G and D: both take the label as "
                             "a one-hot input (Mirza & Osindero 2014).")
  pack: int = _field(1, "PacGAN packing m (Lin et al. 2018): D judges m samples "
                     "concatenated channel-wise, all real or all generated (1 = off).")
  diffaugment: str = _field("", "DiffAugment (Zhao et al. 2020): comma-separated "
                            "policies from color, translation, cutout (the authors' "
                            "'color,translation,cutout'), applied in that order to every "
                            "image D sees, real and generated, in D's and G's steps; "
                            "images only ('' = off).")
  unroll_steps: int = _field(0, "Unrolled GAN (Metz et al. 2017): G's loss is taken "
                             "against D after K more of its optimizer steps, "
                             "differentiated through them (0 = off).")
  unroll_objective: str = _field("g_loss", "What G minimises against the unrolled D_K "
                                 "(--unroll_steps > 0): 'g_loss', the --loss's G loss on "
                                 "D_K(G(z)) alone; 'minimax', the value E log D_K(x) + "
                                 "E log(1 - D_K(G(z))) as Metz et al.'s paper and demo "
                                 "code, whose real term reaches G through D_K "
                                 "(cross-entropy losses).")
  d_steps_schedule: str = _field("", "'wgan': the WGAN authors' critic schedule, 100 D "
                                 "updates for each of the first 25 G updates and every "
                                 "500th, --num_d_steps otherwise ('' = always "
                                 "--num_d_steps).")
  num_valid: int = _field(0, "Hold out the last N training examples as a validation "
                          "split: never trained on; the Parzen estimate chooses its "
                          "sigma on them (the paper: 10000 of MNIST's 60000).")
  train_subset: int = _field(0, "Train on a fixed subset of N training examples (after "
                             "--num_valid's hold-out; 0 = all), chosen by "
                             "--train_subset_seed as StyleGAN2-ADA's --subset chooses; "
                             "evaluation still uses the whole test split.")
  train_subset_seed: int = _field(0, "Seed of --train_subset's draw; not --seed, so the "
                                  "members of a seed sweep train on one subset.")
  # Randomness.
  seed: int = _field(0, "Random seed: init, noise and data order.")
  # Loop schedule (0 = never; every schedule also fires on the last step).
  log_every: int = _field(100, "Log metrics every N steps (0 = never).")
  sample_every: int = _field(400, "Save a sample grid every N steps (0 = never).")
  checkpoint_every: int = _field(1000, "Checkpoint every N steps (and always at the "
                                 "end and on a stop signal).")
  sample_grid: int = _field(5, "Sample grids are N x N images (1 to 32).")
  max_checkpoints: int = _field(3, "Checkpoints kept.")
  # Performance: train steps per jit dispatch (lax.scan); results are bit-identical.
  steps_per_call: int = _field(1, "Train steps per jit dispatch (lax.scan); same "
                               "results, less dispatch overhead.")
  # Evaluation (jaxgan.eval): FID, KID, IS, Parzen, modes every N steps (0 = never).
  eval_every: int = _field(0, "Evaluate (FID, KID, IS, Parzen, modes) every N steps "
                           "(0 = never); needs `python -m jaxgan.classifier` first.")
  eval_num_samples: int = _field(10000, "Generated samples per evaluation.")
  eval_parzen: bool = _field(True, "Include the Parzen-window estimate.")
  classifier_dir: str = _field("", "Evaluation classifier cache (default "
                               "~/.cache/jaxgan/classifiers).")
  feature_network: str = _field("classifier", "The network evaluation's FID, KID, IS "
                                "and precision/recall use: classifier (the dataset's "
                                "own) or inception (pytorch-fid's FID Inception, the "
                                "FID papers report; needs --inception_weights; the "
                                "mode statistics stay on the classifier).")
  inception_weights: str = _field("", "pytorch-fid's weights file pt_inception-2015-"
                                  "12-05-6726825d.pth for --feature_network=inception "
                                  "(read without torch, its sha256 checked against the "
                                  "hash in its name).")
  # Sweeps: NAME=V1,V2,... specs, trained as one population (jaxgan.sweep).
  sweep: tuple[str, ...] = _field((), "NAME=V1,V2,...: train the cartesian product of "
                                  "all --sweep values as one vmapped population (e.g. "
                                  "--sweep=lr_d=1e-4,2e-4 --sweep=seed=0,1). Sweepable: "
                                  "seed, lr_g, lr_d, b1, b2 (adam), momentum (sgd, no "
                                  "ramp), r1_gamma, r2_gamma, lecam_weight.")
  sweep_metric: str = _field("", "Metric that ranks sweep members; default: eval/fid "
                             "when evaluated, modes_covered on toy data, else none "
                             "(the table is not ranked).")
  mesh_shape: str = _field("", "POP,DATA: devices for sweep members and for each "
                           "batch (product = device count); empty = automatic. Only "
                           "for a --sweep or a run over several processes (a single "
                           "run in one process refuses it).")
  sweep_plot: bool = _field(True, "Draw sweep_plot.png at the end of a sweep (each "
                            "metric against each swept value; matplotlib, about a "
                            "second).")
  # Population-based training (jaxgan.sweep.pbt): a sweep whose members exchange states.
  pbt_interval: int = _field(0, "Population-based training every N steps (0 = off; a "
                             "--sweep only): the members are ranked by the sweep's metric "
                             "(FID when evaluated, modes on toy data), the bottom "
                             "--pbt_fraction take the whole state of a member of the top "
                             "fraction, then perturb or resample its hyperparameters. N "
                             "must be a multiple of the metric's schedule (--eval_every, "
                             "or --sample_every on toy data).")
  pbt_fraction: float = _field(0.25, "PBT: the fraction of members replaced each round "
                               "(and the fraction they copy from), in (0, 0.5].")
  pbt_perturb: str = _field("0.8,1.2", "PBT: factors (comma-separated, > 0), one drawn "
                            "per hyperparameter of each replaced member to multiply "
                            "its copied value.")
  pbt_resample: float = _field(0.0, "PBT: probability that a copied hyperparameter is "
                               "instead drawn anew from that flag's --sweep values, in "
                               "[0, 1].")

  # ------------------------------------------------------------------ derived
  @property
  def data_name(self) -> str:
    """The data's own name: the --data_dir folder's name, else --dataset."""
    from jaxgan.data import data_name
    return data_name(self.dataset, self.data_dir)

  def steps_for(self, num_examples: int) -> int:
    """Number of train steps: --num_steps, or --num_epochs of D's real batches (with
    --d_steps_schedule, counted at --num_d_steps per step). An epoch is
    num_examples // batch_size D updates whatever --pack, as PacGAN's code counts it."""
    if self.num_steps:
      return self.num_steps
    # PacGAN's packed dataset holds N examples of m samples each (drawn with replacement
    # from the N points), and an epoch is N / batch_size updates of D, whatever m: D then
    # sees each sample m times an epoch.
    batches_per_epoch = num_examples // self.batch_size
    return max(1, math.ceil(self.num_epochs * batches_per_epoch / self.num_d_steps))

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

  # ------------------------------------------------------------------ validation
  def validate(self) -> "Config":
    """Raises ConfigError naming the flag and the expected value; returns self."""
    _validate(self)
    return self


FIELDS = tuple(f.name for f in dataclasses.fields(Config))

# Values whose cost would be absurd (memory, compile time, a picture nobody can open)
# are refused like any other bad value: field -> (largest accepted, why).
MAXIMA = {
    "sample_grid": (32, "a grid of at most 32 x 32 images"),
    "latent_dim": (4096, "z of at most 4096 dimensions"),
    "batch_size": (65536, "at most 65536 examples per batch"),
    "num_d_steps": (100, "at most 100 D updates per step (each is traced into the step)"),
    "minibatch_kernels": (1024, "at most 1024 minibatch kernels"),
    "minibatch_kernel_dim": (256, "kernels of at most 256 dimensions"),
    "steps_per_call": (10000, "at most 10000 steps per dispatch"),
    "eval_num_samples": (100_000, "at most 100000 samples per evaluation (they are "
                         "held on the host at once)"),
    "max_checkpoints": (1000, "at most 1000 checkpoints kept"),
    "pack": (16, "packing of at most 16 samples"),
    "unroll_steps": (100, "at most 100 unrolled D steps (each is traced into G's step)"),
    # Above this nothing trains, and one update could overflow float32 parameters
    # (steps.Gate relies on the bound).
    "lr_g": (1e10, "a learning rate of at most 1e10"),
    "lr_d": (1e10, "a learning rate of at most 1e10"),
}


def _validate(c: Config) -> None:
  # Imported here: the registries import jax and flax, which the flag parser must not
  # wait for (--help).
  from jaxgan import data, losses, models

  def need(cond: bool, flag: str, value: Any, expected: str) -> None:
    if not cond:
      raise ConfigError(f"--{flag}={value!r} is invalid: expected {expected}.")

  # Types first (a Config built in Python can hold anything), so that every check
  # below compares numbers with numbers. A field's type is its default's type.
  for field in dataclasses.fields(c):
    value, kind = getattr(c, field.name), type(field.default)
    if kind is float:
      ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind is int:
      ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is tuple:
      ok = isinstance(value, tuple) and all(isinstance(v, str) for v in value)
    else:
      ok = isinstance(value, kind)
    need(ok, field.name, value, f"a{'n' if kind is int else ''} {kind.__name__}")

  need(c.model in models.MODELS, "model", c.model, f"one of {sorted(models.MODELS)}")
  need(c.loss in losses.LOSSES, "loss", c.loss, f"one of {sorted(losses.LOSSES)}")
  need(c.update_order in UPDATE_ORDERS, "update_order", c.update_order,
       f"one of {list(UPDATE_ORDERS)}")
  need(c.optimizer in OPTIMIZERS, "optimizer", c.optimizer, f"one of {list(OPTIMIZERS)}")
  if c.data_dir:
    if data.is_toy(c.dataset):
      raise ConfigError(
          f"--dataset={c.dataset} is a generated toy dataset, but --data_dir="
          f"{c.data_dir!r} names a folder of image files: drop --data_dir, or drop "
          "--dataset to train on the folder's images.")
  else:
    data.check_dataset_name(c.dataset)
  for name in ("latent_dim", "num_d_steps", "batch_size", "sample_grid",
               "max_checkpoints", "steps_per_call", "pack"):
    need(getattr(c, name) >= 1, name, getattr(c, name), "an integer >= 1")
  for name in ("num_steps", "log_every", "sample_every", "checkpoint_every",
               "eval_every", "unroll_steps", "num_valid"):
    need(getattr(c, name) >= 0, name, getattr(c, name), "an integer >= 0")
  need(c.eval_num_samples >= 10, "eval_num_samples", c.eval_num_samples,
       "an integer >= 10 (the Inception Score uses 10 splits)")
  need(c.feature_network in FEATURE_NETWORKS, "feature_network", c.feature_network,
       f"one of {', '.join(FEATURE_NETWORKS)}")
  need(c.feature_network != "inception" or bool(c.inception_weights), "inception_weights",
       c.inception_weights, "pytorch-fid's pt_inception-2015-12-05-6726825d.pth with "
       "--feature_network=inception")
  need(c.feature_network == "inception" or not c.inception_weights, "inception_weights",
       c.inception_weights, "no value without --feature_network=inception (the "
       "classifier evaluates)")
  need(c.num_steps > 0 or c.num_epochs > 0, "num_steps", c.num_steps,
       "a positive number of steps (or a positive --num_epochs)")
  need(math.isfinite(c.num_epochs) and c.num_epochs >= 0, "num_epochs", c.num_epochs,
       "a finite number >= 0")
  for name in ("lr_g", "lr_d"):
    value = getattr(c, name)
    need(math.isfinite(value) and value > 0, name, value, "a finite learning rate > 0")
  for name in ("b1", "b2", "momentum", "final_momentum"):
    value = getattr(c, name)
    need(math.isfinite(value) and 0 <= value < 1, name, value, "a number in [0, 1)")
  need(c.momentum_ramp_steps >= 0, "momentum_ramp_steps", c.momentum_ramp_steps,
       "an integer >= 0")
  need(math.isfinite(c.lr_decay) and c.lr_decay >= 1, "lr_decay", c.lr_decay,
       "a factor >= 1 (1 = no decay)")
  need(math.isfinite(c.min_lr) and c.min_lr >= 0, "min_lr", c.min_lr, "a number >= 0")
  for name, (largest, what) in MAXIMA.items():
    need(getattr(c, name) <= largest, name, getattr(c, name), what)
  need(math.isfinite(c.label_smoothing) and 0 <= c.label_smoothing < 1,
       "label_smoothing", c.label_smoothing, "a number in [0, 1)")
  if c.label_smoothing and not losses.LOSSES[c.loss].cross_entropy:
    raise ConfigError(
        f"--label_smoothing={c.label_smoothing} cannot be combined with "
        f"--loss={c.loss}: one-sided label smoothing changes the cross-entropy "
        "target of real data; use --loss=non_saturating or minimax, or "
        "--label_smoothing=0.")
  need(math.isfinite(c.gp_weight) and c.gp_weight >= 0, "gp_weight", c.gp_weight,
       "a finite number >= 0")
  need(math.isfinite(c.clip_value) and c.clip_value > 0, "clip_value", c.clip_value,
       "a finite number > 0")
  _validate_regularizers(c, need)
  need(c.minibatch_kernels >= 0, "minibatch_kernels", c.minibatch_kernels,
       "an integer >= 0 (0 = off)")
  need(c.minibatch_kernel_dim >= 1, "minibatch_kernel_dim", c.minibatch_kernel_dim,
       "an integer >= 1")
  need(c.d_norm in models.dcgan.D_NORMS, "d_norm", c.d_norm,
       f"one of {list(models.dcgan.D_NORMS)}")
  need(math.isfinite(c.g_ema_decay) and 0 <= c.g_ema_decay < 1, "g_ema_decay",
       c.g_ema_decay, "a number in [0, 1) (0 = no EMA)")
  need(c.noise in ("",) + models.NOISES, "noise", c.noise,
       "'normal', 'uniform' or '' (the model's own)")
  spec = models.MODELS[c.model]
  need(c.d_norm in spec.d_norms, "d_norm", c.d_norm,
       f"one of {list(spec.d_norms)} with --model={c.model}")
  if c.loss == "wgan_gp" and spec.couples_batch(models.ModelOptions.from_config(c)):
    raise ConfigError(
        f"--loss=wgan_gp needs a D that treats examples independently, but "
        f"--minibatch_kernels={c.minibatch_kernels} --model={c.model} "
        f"--d_norm={c.d_norm} couples the examples of a batch, so the gradient "
        "penalty would not be per example; use --minibatch_kernels=0 and, for "
        "dcgan, --d_norm=layer (Gulrajani et al.) or --d_norm=none.")
  need(0 <= c.seed < 2**32, "seed", c.seed, "an integer in [0, 2**32)")
  # The step counter and the batch number (step * k + i) are int32 on the device.
  need(c.num_steps * c.num_d_steps < 2**31, "num_steps", c.num_steps,
       f"at most {2**31 // c.num_d_steps - 1} with --num_d_steps={c.num_d_steps} "
       "(the step counter is int32)")
  if c.num_steps > 0 and c.num_epochs > 0:
    raise ConfigError(
        f"--num_steps={c.num_steps} and --num_epochs={c.num_epochs} contradict each "
        "other: set one of them (the other to 0). On the command line the later of "
        "the two wins.")
  if c.optimizer != "sgd":
    for name, neutral in (("lr_decay", 1.0), ("min_lr", 0.0), ("momentum_ramp_steps", 0)):
      if getattr(c, name) != neutral:
        raise ConfigError(
            f"--{name}={getattr(c, name)!r} only applies to --optimizer=sgd, but "
            f"--optimizer={c.optimizer!r}; drop it or set it to {neutral}.")
  else:
    for name in ("lr_g", "lr_d"):
      need(c.min_lr <= getattr(c, name), "min_lr", c.min_lr,
           f"a floor at most --{name}={getattr(c, name)} (the decayed rate never goes "
           "below it)")
  if c.update_order == "simultaneous" and c.num_d_steps != 1:
    raise ConfigError(
        f"--num_d_steps={c.num_d_steps} cannot be combined with "
        "--update_order=simultaneous: a simultaneous update applies one D and one G "
        "gradient from the same minibatch; use --num_d_steps=1 or another "
        "--update_order.")
  need(c.d_steps_schedule in D_STEPS_SCHEDULES, "d_steps_schedule", c.d_steps_schedule,
       f"one of {list(D_STEPS_SCHEDULES)}")
  if c.d_steps_schedule and c.update_order != "d_then_g":
    raise ConfigError(
        f"--d_steps_schedule={c.d_steps_schedule} varies the number of D updates before "
        f"each G update, which needs --update_order=d_then_g (got {c.update_order}).")
  need(c.unroll_objective in UNROLL_OBJECTIVES, "unroll_objective", c.unroll_objective,
       f"one of {list(UNROLL_OBJECTIVES)}")
  if c.unroll_objective == "minimax":
    if not c.unroll_steps:
      raise ConfigError("--unroll_objective=minimax is what G minimises against the "
                        "unrolled D, but --unroll_steps=0; set --unroll_steps=K > 0 or "
                        "drop --unroll_objective.")
    if not losses.LOSSES[c.loss].cross_entropy:
      raise ConfigError(f"--unroll_objective=minimax is the value E log D_K(x) + "
                        f"E log(1 - D_K(G(z))) of a cross-entropy D, but --loss={c.loss} "
                        "scores are not probabilities; use --loss=non_saturating or "
                        "minimax, or --unroll_objective=g_loss.")
    if c.feature_matching:
      raise ConfigError("--unroll_objective=minimax cannot be combined with "
                        "--feature_matching, which replaces G's adversarial objective; "
                        "drop one of them.")
  need(c.train_subset >= 0, "train_subset", c.train_subset, "an integer >= 0 (0 = all)")
  if c.train_subset:
    need(c.train_subset >= c.batch_size * c.pack, "train_subset", c.train_subset,
         f"at least one D batch, --batch_size x --pack = {c.batch_size * c.pack} "
         "examples")
  need(0 <= c.train_subset_seed < 2**32, "train_subset_seed", c.train_subset_seed,
       "an integer in [0, 2**32)")
  if c.train_subset_seed and not c.train_subset:
    raise ConfigError(f"--train_subset_seed={c.train_subset_seed} chooses the examples of "
                      "--train_subset, but --train_subset=0 trains on all of them; set "
                      "--train_subset=N or drop --train_subset_seed.")
  if c.diffaugment:
    names = c.diffaugment.split(",")
    need(all(n in DIFFAUGMENT_POLICIES for n in names) and len(set(names)) == len(names),
         "diffaugment", c.diffaugment, f"distinct names from {list(DIFFAUGMENT_POLICIES)}, "
         "comma-separated, e.g. 'color,translation,cutout' ('' = off)")
    if data.is_toy(c.dataset):
      raise ConfigError(f"--diffaugment={c.diffaugment} transforms images, but "
                        f"--dataset={c.dataset} is a toy dataset of points; drop "
                        "--diffaugment.")
  if c.pack > 1 and c.conditional:
    raise ConfigError(f"--pack={c.pack} cannot be combined with --conditional: a packed "
                      "example holds several samples, each with its own label; use "
                      "--pack=1 or drop --conditional.")
  if c.sweep:
    parse_sweep(c.sweep)
  if c.mesh_shape:
    parse_mesh_shape(c.mesh_shape)
  _validate_pbt(c, need)


# Metrics a PBT round may not rank by: the losses say how the game stands, not how good
# the samples are (a collapsed G can hold a low loss).
TRAINING_METRICS = ("d_loss", "g_loss", "d_real", "d_fake")


def parse_pbt_perturb(text: str) -> tuple[float, ...]:
  """'0.8,1.2' -> (0.8, 1.2). Raises ConfigError naming --pbt_perturb."""
  try:
    factors = tuple(float(t) for t in text.split(","))
  except ValueError:
    factors = ()
  if not factors or not all(math.isfinite(f) and f > 0 for f in factors):
    raise ConfigError(f"--pbt_perturb={text!r} is invalid: expected comma-separated "
                      "factors > 0, e.g. 0.8,1.2.")
  return factors


def _validate_pbt(c: Config, need: Callable) -> None:
  """--pbt_*: PBT needs a population of at least two members, and its rounds must fall
  on steps where the ranking metric was just measured (the decisions read it)."""
  if not c.pbt_interval:
    for name, default in (("pbt_fraction", 0.25), ("pbt_perturb", "0.8,1.2"),
                          ("pbt_resample", 0.0)):
      if getattr(c, name) != default:
        raise ConfigError(f"--{name}={getattr(c, name)!r} applies to population-based "
                          "training, which is off (--pbt_interval=0); set "
                          "--pbt_interval=N or drop it.")
    return
  need(c.pbt_interval > 0, "pbt_interval", c.pbt_interval, "an integer >= 0 (0 = off)")
  need(0 < c.pbt_fraction <= 0.5, "pbt_fraction", c.pbt_fraction,
       "a fraction in (0, 0.5] (the bottom and top fractions must not overlap)")
  need(math.isfinite(c.pbt_resample) and 0 <= c.pbt_resample <= 1, "pbt_resample",
       c.pbt_resample, "a probability in [0, 1]")
  parse_pbt_perturb(c.pbt_perturb)
  sizes = [len(v) for v in parse_sweep(c.sweep).values()] if c.sweep else []
  if math.prod(sizes or [1]) < 2:
    raise ConfigError(f"--pbt_interval={c.pbt_interval} exchanges states between the "
                      "members of a population, but there is "
                      + ("no --sweep" if not c.sweep else "one member")
                      + ": sweep at least two, e.g. --sweep=lr_g=1e-4,2e-4,4e-4,8e-4.")
  if c.sweep_metric in TRAINING_METRICS:
    raise ConfigError(f"--sweep_metric={c.sweep_metric} is a training loss, which PBT "
                      f"(--pbt_interval={c.pbt_interval}) does not rank by: a collapsed "
                      "G can hold a low loss; rank by an evaluation metric (fid, ...) "
                      "or, on toy data, modes_covered.")
  from jaxgan import data
  if c.eval_every:
    if c.pbt_interval % c.eval_every:
      raise ConfigError(f"--pbt_interval={c.pbt_interval} must be a multiple of "
                        f"--eval_every={c.eval_every}: each PBT round ranks the members "
                        "by the evaluation of its step.")
  elif data.is_toy(c.dataset):
    if not c.sample_every or c.pbt_interval % c.sample_every:
      raise ConfigError(f"--pbt_interval={c.pbt_interval} must be a multiple of "
                        f"--sample_every={c.sample_every}: on toy data each PBT round "
                        "ranks the members by the mode metrics of its step's samples "
                        "(or set --eval_every to a divisor of it).")
  else:
    raise ConfigError(f"--pbt_interval={c.pbt_interval} ranks the members by their "
                      "evaluation (FID), but --eval_every=0: set --eval_every to a "
                      f"divisor of {c.pbt_interval}.")


def _validate_regularizers(c: Config, need: Callable) -> None:
  """R1, R2 and LeCam (jaxgan.steps.regularizers). A weight is on when it is > 0 or
  swept (a swept weight builds its term for every member, 0 included)."""
  from jaxgan import models
  swept = set(parse_sweep(c.sweep)) if c.sweep else set()
  for name in ("r1_gamma", "r2_gamma", "lecam_weight"):
    need(math.isfinite(getattr(c, name)) and getattr(c, name) >= 0, name,
         getattr(c, name), "a finite number >= 0 (0 = off)")
  need(1 <= c.d_reg_interval < 2**31, "d_reg_interval", c.d_reg_interval,
       "an integer >= 1 (1 = every D update)")
  need(math.isfinite(c.lecam_decay) and 0 <= c.lecam_decay < 1, "lecam_decay",
       c.lecam_decay, "a number in [0, 1)")
  need(1 <= c.lecam_start < 2**31, "lecam_start", c.lecam_start,
       "an integer >= 1 (before it the anchors are the batch's means; the authors' EMA "
       "would start from 1000)")
  on = {name: getattr(c, name) > 0 or name in swept
        for name in ("r1_gamma", "r2_gamma", "lecam_weight")}
  if c.d_reg_interval != 1 and not (on["r1_gamma"] or on["r2_gamma"]):
    raise ConfigError(f"--d_reg_interval={c.d_reg_interval} only applies with "
                      "--r1_gamma or --r2_gamma > 0 (it makes R1/R2 lazy); drop it or "
                      "set it to 1.")
  for name, default in (("lecam_decay", 0.9), ("lecam_start", 1000)):
    if getattr(c, name) != default and not on["lecam_weight"]:
      raise ConfigError(f"--{name}={getattr(c, name)!r} only applies with "
                        f"--lecam_weight > 0; drop it or set it to {default}.")
  for name in ("r1_gamma", "r2_gamma"):
    if getattr(c, name) > 0 and models.MODELS[c.model].couples_batch(
        models.ModelOptions.from_config(c)):
      raise ConfigError(
          f"--{name}={getattr(c, name)} needs a D that treats examples independently, "
          f"but --minibatch_kernels={c.minibatch_kernels} --model={c.model} "
          f"--d_norm={c.d_norm} couples the examples of a batch, so the penalty would "
          "not be per example; use --minibatch_kernels=0 and, for dcgan, a --d_norm "
          "other than batch.")
  if on["lecam_weight"] and c.d_steps_schedule:
    raise ConfigError(f"--lecam_weight={c.lecam_weight} cannot be combined with "
                      f"--d_steps_schedule={c.d_steps_schedule}: LeCam's start counts "
                      "train steps as D updates // --num_d_steps, which the schedule "
                      "varies; use --d_steps_schedule=''.")


# --------------------------------------------------------------------------- sweeps
def _adam_only(flag: str) -> Callable[[Config], str | None]:
  def requires(config: Config) -> str | None:
    if config.optimizer != "adam":
      return (f"--{flag} is only a run-time hyperparameter with --optimizer=adam; with "
              f"--optimizer={config.optimizer} it is compiled into the step's schedule")
    return None
  return requires


def _constant_sgd_momentum(config: Config) -> str | None:
  if config.optimizer != "sgd":
    return f"--momentum is only used with --optimizer=sgd (got {config.optimizer})"
  if config.momentum_ramp_steps:
    return ("--momentum is a compiled schedule when --momentum_ramp_steps > 0; use "
            "--momentum_ramp_steps=0 to sweep it")
  return None


@dataclasses.dataclass(frozen=True)
class SweepKind:
  """A flag a population can vary: its value type, and `requires(config)`: None when it
  is read at run time under that config, else the reason it is not (e.g. SGD's learning
  rate is a compiled schedule). jaxgan.sweep.population writes the values into the
  state's array leaves."""

  kind: type
  requires: Callable[[Config], str | None]


SWEEPABLE: dict[str, SweepKind] = {
    "seed": SweepKind(int, lambda config: None),
    "lr_g": SweepKind(float, _adam_only("lr_g")),
    "lr_d": SweepKind(float, _adam_only("lr_d")),
    "b1": SweepKind(float, _adam_only("b1")),
    "b2": SweepKind(float, _adam_only("b2")),
    "momentum": SweepKind(float, _constant_sgd_momentum),
    # Weights of D terms (jaxgan.steps.regularizers), read from GANState.hparams.
    "r1_gamma": SweepKind(float, lambda config: None),
    "r2_gamma": SweepKind(float, lambda config: None),
    "lecam_weight": SweepKind(float, lambda config: None),
}


def parse_sweep(specs: Sequence[str]) -> dict[str, list[Any]]:
  """['lr_d=1e-4,2e-4', 'seed=0,1'] -> {'lr_d': [1e-4, 2e-4], 'seed': [0, 1]}.

  Raises ConfigError naming the --sweep spec for bad syntax, an unknown flag, a flag that
  changes shapes or code paths, a non-numeric or repeated value, or a repeated name.
  """
  sweep: dict[str, list[Any]] = {}
  for spec in specs:
    name, sep, raw = spec.partition("=")
    name = name.strip().lstrip("-")
    if not sep or not name or not raw.strip():
      raise ConfigError(f"--sweep={spec!r} is invalid: expected NAME=V1,V2,... "
                        "(e.g. --sweep=lr_d=1e-4,2e-4).")
    if name not in FIELDS:
      raise ConfigError(f"--sweep={spec!r}: there is no flag --{name}; sweepable flags "
                        f"are {sorted(SWEEPABLE)}.")
    if name not in SWEEPABLE:
      raise ConfigError(
          f"--sweep={spec!r}: --{name} cannot be swept: it changes shapes, code paths "
          "or the loop, which are compiled into the one program a population shares; "
          f"run separate sweeps for each --{name}. Sweepable flags are "
          f"{sorted(SWEEPABLE)}.")
    if name in sweep:
      raise ConfigError(f"--sweep={spec!r}: --{name} is swept twice; give all its "
                        "values in one --sweep.")
    kind = SWEEPABLE[name].kind
    values = []
    for text in raw.split(","):
      text = text.strip()
      try:
        value = kind(text)
        if kind is int and str(value) != text.lstrip("+"):
          raise ValueError
      except ValueError:
        raise ConfigError(f"--sweep={spec!r}: {text!r} is not "
                          f"{'an integer' if kind is int else 'a number'}.") from None
      if value in values:
        raise ConfigError(f"--sweep={spec!r}: the value {text} is repeated.")
      values.append(value)
    sweep[name] = values
  return sweep


@dataclasses.dataclass(frozen=True)
class Member:
  """One configuration of a population. hparams: the swept values, in sweep order."""

  index: int
  hparams: dict[str, Any]
  config: Config


def sweep_members(base: Config) -> list[Member]:
  """The cartesian product of base.sweep over `base` (itertools.product order: the last
  --sweep varies fastest), each member validated. No sweep: one member, `base`."""
  sweep = parse_sweep(base.sweep)
  for name in sweep:
    reason = SWEEPABLE[name].requires(base)
    if reason:
      raise ConfigError(f"--sweep={name}=...: cannot be swept: {reason}.")
  names = list(sweep)
  members = []
  for index, values in enumerate(itertools.product(*(sweep[n] for n in names))):
    hparams = dict(zip(names, values))
    config = dataclasses.replace(base, **hparams)
    try:
      config.validate()
    except ConfigError as e:
      raise ConfigError(f"sweep member {index} {hparams}: {e}") from None
    members.append(Member(index=index, hparams=hparams, config=config))
  return members


def parse_mesh_shape(text: str) -> tuple[int, int] | None:
  """'4,2' -> (4, 2) (pop, data); '' -> None (automatic). Raises ConfigError."""
  if not text.strip():
    return None
  parts = [p.strip() for p in text.replace("x", ",").split(",")]
  try:
    shape = tuple(int(p) for p in parts)
  except ValueError:
    shape = ()
  if len(shape) != 2 or min(shape) < 1:
    raise ConfigError(f"--mesh_shape={text!r} is invalid: expected POP,DATA, two "
                      "integers >= 1 whose product is the device count (e.g. 4,2), "
                      "or empty for an automatic choice.")
  return shape  # type: ignore[return-value]


# --------------------------------------------------------------------------- flags
def define_flags(flag_values: Any = None, names: Sequence[str] | None = None,
                 as_overrides: bool = False) -> None:
  """Declares one absl flag per Config field (or per field in `names`): same name,
  type, default and help text.

  as_overrides: every flag defaults to None, meaning "keep the value saved with the
  run" (jaxgan.evaluate's overrides of a workdir's config).
  """
  from absl import flags
  flag_values = flags.FLAGS if flag_values is None else flag_values
  for field in dataclasses.fields(Config):
    if names is not None and field.name not in names:
      continue
    default, help_text = field.default, field.metadata["help"]
    if as_overrides:
      default, help_text = None, help_text + " (default: the run's own value)"
    kind = type(field.default)
    define = {str: flags.DEFINE_string, int: flags.DEFINE_integer,
              float: flags.DEFINE_float, bool: flags.DEFINE_bool,
              tuple: flags.DEFINE_multi_string}[kind]
    if kind is tuple and default is not None:
      default = list(default)
    define(field.name, default, help_text, flag_values=flag_values)


def last_given(argv: Sequence[str], names: Sequence[str], flag_values: Any) -> str | None:
  """Which of the flags `names` is given last in argv (flagfiles expanded in place)."""
  args = flag_values.read_flags_from_files(list(argv[1:]), force_gnu=False)
  last = None
  for arg in args:
    if arg == "--":
      break
    if arg.startswith("-"):
      name = arg.lstrip("-").split("=", 1)[0]
      if name in names:
        last = name
  return last


def from_flags(flag_values: Any, argv: Sequence[str] | None = None) -> Config:
  """Builds a Config from parsed absl flags whose names equal the field names.

  argv: the command line the flags were parsed from; with it, the run-length rule of
  the module docstring resolves --num_steps against --num_epochs, and a deciding length
  of 0 or less raises ConfigError naming the flag.
  """
  kwargs = {}
  for field in dataclasses.fields(Config):
    if field.name in flag_values and flag_values[field.name].value is not None:
      kwargs[field.name] = flag_values[field.name].value
  if kwargs.get("sweep") is not None:
    kwargs["sweep"] = tuple(kwargs["sweep"])  # A multi-string flag gives a list.
  if argv is not None and all(name in kwargs for name in RUN_LENGTH):
    winner = last_given(argv, RUN_LENGTH, flag_values)
    if winner is not None:
      # A length typed on the command line is a value, never "unset": were 0 read as
      # unset, `--flagfile=F --num_steps=0` would train F's --num_epochs.
      value = kwargs[winner]
      if not value > 0:  # Also refuses NaN.
        unit = "steps" if winner == "num_steps" else "epochs"
        raise ConfigError(
            f"--{winner}={value!r} is invalid: expected a positive number of {unit} "
            "(the later of --num_steps and --num_epochs on the command line sets the "
            "run's length).")
      loser = RUN_LENGTH[1 - RUN_LENGTH.index(winner)]
      kwargs[loser] = type(getattr(Config(), loser))(0)
  return Config(**kwargs)
