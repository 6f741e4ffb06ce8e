r"""Writes a trained generator's samples as uint8 images, for any other tool.

    python -m jaxgan.sample --workdir=runs/fm [--step=N] --num_samples=10000 --out=S.npz
    python -m jaxgan.sample --workdir=runs/fm --num_samples=10000 --out=samples/

restores the checkpoint at step N (default: the latest) as `python -m jaxgan.evaluate`
does and draws the samples evaluation draws: the same noise (the run's seed, stream
EVAL_NOISE, batches of 1000) through the same generator (the EMA one when the run keeps
one, --g_ema_decay). They are written as uint8 pixels round(255 * (G(z) - lo) / (hi - lo)),
[N, H, W, C]: an .npz (array `images`) or .npy, or a folder of PNG files 000000.png, ...
(grey 'L' or 'RGB'), which pytorch-fid and clean-fid read. A progress line per batch goes
to stderr. A sweep's workdir is refused (its members are evaluated by `evaluate`).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

from absl import flags

from jaxgan.cli import common
from jaxgan.errors import ConfigError

BATCH = 1000  # Evaluation's batch of noise draws (jaxgan.eval.members.GENERATE_BATCH).


def define_flags() -> None:
  flags.DEFINE_string("workdir", None, "The training run's folder.")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest; 0: the "
                       "untrained generator).")
  flags.DEFINE_integer("num_samples", 10_000, "Samples to write.")
  flags.DEFINE_string("out", None, "FILE.npz / FILE.npy (an array [N, H, W, C] uint8) "
                      "or DIR/ (one PNG per sample).")


FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
  common.run_reporting_errors(lambda: _sample(argv))


def run() -> None:
  common.run_program(define_flags, main)


def _sample(argv: list[str]) -> None:
  common.no_arguments(argv)
  if not FLAGS.workdir:
    raise ConfigError("--workdir is required: the training run whose generator samples.")
  if not FLAGS.out:
    raise ConfigError("--out is required: FILE.npz, FILE.npy or a folder DIR/ for PNGs.")
  if FLAGS.num_samples < 1 or FLAGS.num_samples > 1_000_000:
    raise ConfigError(f"--num_samples={FLAGS.num_samples}: expected 1 to 1000000.")
  out = FLAGS.out
  as_array = out.lower().endswith((".npz", ".npy"))
  if not as_array and os.path.isfile(out):
    raise ConfigError(f"--out={out!r} is a file; expected FILE.npz, FILE.npy or a folder.")
  if not as_array and os.path.isdir(out) and os.listdir(out):
    raise ConfigError(f"--out={out!r} is a folder that is not empty; expected a new or "
                      "empty folder for the PNG files.")
  # Imported after the flag checks: jax start-up is slow.
  import jax
  import numpy as np

  from jaxgan import data, rng
  from jaxgan.runtime import evaluation as runs
  from jaxgan.runtime.trainees import make_trainee

  config = runs.load_run_config(FLAGS.workdir)
  if config.sweep:
    raise ConfigError(f"--workdir={FLAGS.workdir!r} holds a sweep; jaxgan.sample writes "
                      "a single run's samples.")
  train = data.load_training_split(config)
  trainee = make_trainee(dataclasses.replace(config, mesh_shape="", eval_every=0), train)
  state, step = runs.restore_checkpoint(trainee.initial_state(train.images),
                                        FLAGS.workdir, FLAGS.step)
  gan, sample = trainee.gan, jax.jit(trainee.steps.sample)
  key = rng.seed_stream(config.seed, rng.EVAL_NOISE)
  lo, hi = gan.pixel_range
  n, parts, t0 = FLAGS.num_samples, [], time.perf_counter()
  for i, start in enumerate(range(0, n, BATCH)):
    z = gan.sample_noise(jax.random.fold_in(key, i), BATCH)
    if gan.num_classes:  # A conditional G cycles through the classes, as evaluation.
      images = sample(state, z, jax.numpy.arange(BATCH, dtype=jax.numpy.int32)
                      % gan.num_classes)
    else:
      images = sample(state, z)
    unit = np.clip((np.asarray(images[:n - start], np.float32) - lo) / (hi - lo), 0, 1)
    parts.append(np.round(unit * 255).astype(np.uint8))
    done = min(start + BATCH, n)
    print(f"sampled {done}/{n} (step {step}) {time.perf_counter() - t0:.1f}s",
          file=sys.stderr)
  images = np.concatenate(parts)
  _write(out, images)
  print(f"wrote {out}: {n} samples of step {step}, uint8 {list(images.shape[1:])}")


def _write(out: str, images) -> None:
  import numpy as np

  from jaxgan import fileio
  if out.lower().endswith(".npz"):
    fileio.save_with(out, lambda tmp: _save_npz(tmp, images))
  elif out.lower().endswith(".npy"):
    fileio.save_with(out, lambda tmp: _save_npy(tmp, images))
  else:
    from PIL import Image
    os.makedirs(out, exist_ok=True)
    digits = max(6, len(str(len(images) - 1)))
    for i, image in enumerate(images):
      pixels = image[..., 0] if image.shape[-1] == 1 else image
      fileio.save_with(os.path.join(out, f"{i:0{digits}d}.png"),
                       lambda tmp, p=pixels: Image.fromarray(np.ascontiguousarray(p))
                       .save(tmp, format="PNG"))


def _save_npz(tmp: str, images) -> None:
  import numpy as np
  with open(tmp, "wb") as f:
    np.savez(f, images=images)


def _save_npy(tmp: str, images) -> None:
  import numpy as np
  with open(tmp, "wb") as f:
    np.save(f, images)


if __name__ == "__main__":
  run()
