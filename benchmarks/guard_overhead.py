r"""What the population's divergence guard costs: the training loop's guarded population
step against the same vmapped train step without the guard, in one process, alternating.

    python benchmarks/guard_overhead.py --members=8 --data_dir=/usr/share/datasets/fashion-mnist

Prints the median ms per population step of each and their ratio. The unguarded step is
not a path the loop runs: it exists only here, to measure the guard.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
from absl import app, flags  # noqa: E402

from jaxgan import data  # noqa: E402
from jaxgan.config import Config  # noqa: E402
from jaxgan.runtime.compile import StepFunctions  # noqa: E402
from jaxgan.runtime.trainees import PopulationRun  # noqa: E402
from jaxgan.sweep import population  # noqa: E402

flags.DEFINE_integer("members", 8, "Population size (seeds 0..P-1).")
flags.DEFINE_string("data_dir", "/usr/share/datasets/fashion-mnist", "IDX folder.")
flags.DEFINE_string("model", "mlp", "Model.")
flags.DEFINE_integer("steps", 15, "Steps per timed repeat.")
flags.DEFINE_integer("repeats", 8, "Timed repeats per side (alternating).")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  ds = data.load_dataset("", FLAGS.data_dir, "train")
  seeds = ",".join(str(i) for i in range(FLAGS.members))
  config = Config(data_dir=FLAGS.data_dir, model=FLAGS.model, num_steps=1,
                  sweep=(f"seed={seeds}",)).validate()
  run = PopulationRun(config, ds)
  sh = population.shardings(run.mesh)
  train_step = run.steps.train_step

  def unguarded(state, images, labels):
    gan, metrics = jax.vmap(train_step, in_axes=(0, None, None),
                            spmd_axis_name=population.POP)(state.gan, images, labels)
    return state.replace(gan=gan), metrics

  plain = StepFunctions(unguarded, 1, in_shardings=(sh["members"], sh["replicated"],
                                                    sh["replicated"]),
                        out_shardings=(sh["members"], sh["replicated"]))
  fns = {"guarded": run.step_fns.single, "unguarded": plain.single}
  images, _ = run.place_data(ds.images, None)
  states = {name: run.initial_state() for name in fns}
  for _ in range(3):  # Compile and warm up.
    for name, fn in fns.items():
      states[name], metrics = fn(states[name], images, None)
  jax.block_until_ready(states)
  times = {name: [] for name in fns}
  order = list(fns)
  for r in range(FLAGS.repeats):
    for name in order if r % 2 == 0 else order[::-1]:
      t = time.perf_counter()
      for _ in range(FLAGS.steps):
        states[name], metrics = fns[name](states[name], images, None)
      jax.block_until_ready(metrics)
      times[name].append((time.perf_counter() - t) / FLAGS.steps)
  ms = {name: statistics.median(v) * 1e3 for name, v in times.items()}
  print(f"{FLAGS.members} {FLAGS.model} members, ms per population step (median of "
        f"{FLAGS.repeats}): guarded {ms['guarded']:.1f}, unguarded {ms['unguarded']:.1f}, "
        f"guarded / unguarded {ms['guarded'] / ms['unguarded']:.3f}")


if __name__ == "__main__":
  app.run(main)
