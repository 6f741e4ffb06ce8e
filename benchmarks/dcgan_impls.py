r"""The dcgan train step with each way of computing its stride-2 layers, in one process,
alternating (models/dcgan.py IMPLS: "dot" im2col matmuls, "conv" stride-1 lax
convolutions, "xla" flax's nn.ConvTranspose / nn.Conv; the same function and parameters).

    python benchmarks/dcgan_impls.py --side=28 --impls=dot,conv,xla
    python benchmarks/dcgan_impls.py --side=32 --impls=dot,xla

Each impl is the training loop's step (jaxgan.runtime SingleRun: jit, donation, the
step's XLA options) on random uint8 images of side x side x (1 at 28, 3 otherwise),
batch 64. Prints the median steps/s of each and its ratio to the first. XLA_FLAGS in the
environment apply to every impl alike (to compare flags, run the script once per flag
setting, alternating).
"""

from __future__ import annotations

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from jaxgan import data, models  # noqa: E402
from jaxgan.config import Config  # noqa: E402
from jaxgan.models.dcgan import DCGANDiscriminator, DCGANGenerator  # noqa: E402
from jaxgan.runtime.trainees import SingleRun  # noqa: E402

flags.DEFINE_integer("side", 28, "Image side (28: 1 channel, else 3).")
flags.DEFINE_list("impls", ["dot", "conv", "xla"], "models.dcgan.IMPLS to compare.")
flags.DEFINE_integer("steps", 10, "Steps per timed repeat.")
flags.DEFINE_integer("repeats", 6, "Timed repeats per impl (alternating).")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
FLAGS = flags.FLAGS


def dcgan_spec(impl: str) -> models.ModelSpec:
  spec = models.MODELS["dcgan"]
  return spec._replace(
      generator=lambda shape: DCGANGenerator(shape, impl=impl),
      discriminator=lambda shape, o=models.ModelOptions(): DCGANDiscriminator(
          d_norm=o.d_norm, minibatch_kernels=o.minibatch_kernels,
          minibatch_kernel_dim=o.minibatch_kernel_dim, impl=impl))


def main(argv):
  del argv
  channels = 1 if FLAGS.side == 28 else 3
  images = data.aligned_empty((6400, FLAGS.side, FLAGS.side, channels))
  images[...] = np.random.default_rng(0).integers(0, 256, images.shape, np.uint8)
  ds = data.Dataset("synthetic", images, None, 0)
  runs, states, placed = {}, {}, {}
  for impl in FLAGS.impls:
    models.MODELS[f"dcgan_{impl}"] = dcgan_spec(impl)
    config = Config(model=f"dcgan_{impl}", batch_size=FLAGS.batch_size,
                    num_steps=1).validate()
    t = time.perf_counter()
    runs[impl] = SingleRun(config, ds)
    runs[impl].compile(ds.images, None, multi=False)
    compile_s = time.perf_counter() - t
    states[impl] = runs[impl].initial_state()
    placed[impl], _ = runs[impl].place_data(ds.images, None)
    print(f"{impl}: compile {compile_s:.1f} s", flush=True)
  fns = {impl: run.step_fns.single for impl, run in runs.items()}
  for impl, fn in fns.items():  # Warm-up.
    for _ in range(2):
      states[impl], metrics = fn(states[impl], placed[impl], None)
    jax.block_until_ready(metrics)
  times = {impl: [] for impl in fns}
  order = list(fns)
  for r in range(FLAGS.repeats):
    for impl in order if r % 2 == 0 else order[::-1]:
      t = time.perf_counter()
      for _ in range(FLAGS.steps):
        states[impl], metrics = fns[impl](states[impl], placed[impl], None)
      jax.block_until_ready(metrics)
      times[impl].append(FLAGS.steps / (time.perf_counter() - t))
  rate = {impl: statistics.median(v) for impl, v in times.items()}
  first = order[0]
  for impl in order:
    print(f"dcgan{FLAGS.side} impl={impl}: {rate[impl]:.2f} steps/s (median of "
          f"{FLAGS.repeats}: {', '.join(f'{x:.2f}' for x in times[impl])}), "
          f"{rate[impl] / rate[first]:.2f}x {first}", flush=True)


if __name__ == "__main__":
  app.run(main)
