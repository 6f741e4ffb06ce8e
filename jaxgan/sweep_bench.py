r"""Benchmark: a population of P members against P sequential single runs.

    nice -n 10 python -m jaxgan.sweep_bench \
        --data_dir=/usr/share/datasets/fashion-mnist --members=8,32 --steps=50

For each P, in one process: the population (P seeds, one vmapped step, jit once) trains
`--steps` steps; then P single runs train the same steps one after another, each with
one jitted single train_step (compiled once, reused: the most favourable case for the
sequential side). Wall times are measured after each run's first step (compilation and
first step of the first repeat are reported separately), with block_until_ready at the
end, and the ratio sequential / population is printed. Each side runs --repeats times
in alternating order and keeps its best time (the machine may be shared). Steps
dispatch one at a time on both sides, as in train.run and sweep.run.
"""

from __future__ import annotations

import time

import jax
from absl import app, flags

from jaxgan import data, population
from jaxgan.config import Config
from jaxgan.state import make_gan
from jaxgan.steps import make_steps

flags.DEFINE_string("data_dir", "/usr/share/datasets/fashion-mnist", "IDX folder.")
flags.DEFINE_list("members", ["8", "32"], "Population sizes to measure.")
flags.DEFINE_integer("steps", 50, "Timed train steps per member.")
flags.DEFINE_integer("repeats", 2, "Alternating repeats per side; the best is kept.")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_string("model", "mlp", "Model.")
FLAGS = flags.FLAGS


def _timed(fn, state, images, steps: int):
  """(compile+first step seconds, seconds for `steps` more steps, final state)."""
  t0 = time.perf_counter()
  state, _ = fn(state, images)
  jax.block_until_ready(state)
  t1 = time.perf_counter()
  for _ in range(steps):
    state, _ = fn(state, images)
  jax.block_until_ready(state)
  return t1 - t0, time.perf_counter() - t1, state


def bench(num_members: int, steps: int, repeats: int, base: Config,
          ds: data.Dataset) -> dict:
  members = population.make_members(
      base, [f"seed={','.join(str(s) for s in range(num_members))}"])
  mesh = population.make_mesh((1, 1), jax.devices()[:1])
  images = population.place_dataset(ds.images, mesh)
  gan = make_gan(base, ds.image_shape)
  pop_step = population.make_population_step(
      make_steps(base, gan, ds.num_examples).train_step, mesh)
  # The members differ only in seed, which the step does not bake in, so one compiled
  # single step serves them all: the sequential side pays one compilation, the most
  # favourable case for it (separate train.run processes would each compile).
  single_step = jax.jit(make_steps(base, gan, ds.num_examples).train_step,
                        donate_argnums=0)

  def run_population():
    return _timed(pop_step, population.init_population(gan, members), images, steps)

  def run_sequential():
    first, total = 0.0, 0.0
    for m in members:
      f, t, _ = _timed(single_step, gan.init(jax.random.PRNGKey(m.config.seed)),
                       images, steps)
      first, total = first or f, total + t
    return first, total, None

  # Alternating order (pop, seq, seq, pop, ...) and the best of `repeats` per side, so
  # that load from other processes on a shared machine biases neither side.
  pop_times, seq_times, pop_first, seq_first = [], [], None, None
  for r in range(repeats):
    for side in ((run_population, run_sequential) if r % 2 == 0 else
                 (run_sequential, run_population)):
      first, t, _ = side()
      if side is run_population:
        pop_first = pop_first if pop_first is not None else first
        pop_times.append(t)
      else:
        seq_first = seq_first if seq_first is not None else first
        seq_times.append(t)
  pop_time, seq_time = min(pop_times), min(seq_times)
  return {"members": num_members, "steps": steps, "population_s": pop_time,
          "sequential_s": seq_time, "ratio": seq_time / pop_time,
          "population_compile_s": pop_first, "sequential_compile_s": seq_first}


def main(argv):
  del argv
  ds = data.load_dataset("fashion_mnist", FLAGS.data_dir)
  base = Config(dataset="fashion_mnist", data_dir=FLAGS.data_dir, model=FLAGS.model,
                batch_size=FLAGS.batch_size, num_steps=FLAGS.steps).validate()
  print(f"device: {jax.devices()[0].platform} x{jax.device_count()}  model "
        f"{FLAGS.model}  batch {FLAGS.batch_size}  {FLAGS.steps} timed steps per member")
  print(f"{'members':>8} {'population s':>13} {'sequential s':>13} {'ratio':>7} "
        f"{'pop compile+1 s':>16} {'single compile+1 s':>19}")
  for p in FLAGS.members:
    r = bench(int(p), FLAGS.steps, FLAGS.repeats, base, ds)
    print(f"{r['members']:>8} {r['population_s']:>13.2f} {r['sequential_s']:>13.2f} "
          f"{r['ratio']:>7.2f} {r['population_compile_s']:>16.2f} "
          f"{r['sequential_compile_s']:>19.2f}", flush=True)


if __name__ == "__main__":
  app.run(main)
