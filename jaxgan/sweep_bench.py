r"""Benchmark: a population of P members against P sequential single runs.

    nice -n 10 python -m jaxgan.sweep_bench \
        --data_dir=/usr/share/datasets/fashion-mnist --members=8,32 --steps=50

For each P, in one process: the population (P seeds, one vmapped step, jit once) trains
`--steps` steps; then P single runs train the same steps one after another, each with
one jitted single train_step (compiled once, reused: the most favourable case for the
sequential side). Wall times are measured after each run's first step (compilation and
first step are reported separately), with block_until_ready at the end, and the ratio
sequential / population is printed. Steps dispatch one at a time in both cases, as in
train.run and sweep.run.
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


def bench(num_members: int, steps: int, base: Config, ds: data.Dataset) -> dict:
  members = population.make_members(
      base, [f"seed={','.join(str(s) for s in range(num_members))}"])
  mesh = population.make_mesh((1, 1), jax.devices()[:1])
  gan = make_gan(base, ds.image_shape)
  pop_steps = make_steps(base, gan, ds.num_examples)
  state = population.init_population(gan, members)
  images = population.place_dataset(ds.images, mesh)
  pop_step = population.make_population_step(pop_steps.train_step, mesh)
  pop_first, pop_time, _ = _timed(pop_step, state, images, steps)

  # The members differ only in seed, which the step does not bake in, so one compiled
  # single step serves them all: the sequential side pays one compilation, the most
  # favourable case for it (separate train.run processes would each compile).
  single_gan = make_gan(members[0].config, ds.image_shape)
  single_step = jax.jit(
      make_steps(members[0].config, single_gan, ds.num_examples).train_step,
      donate_argnums=0)
  seq_first, seq_time = 0.0, 0.0
  for m in members:
    first, t, _ = _timed(single_step, single_gan.init(jax.random.PRNGKey(m.config.seed)),
                         images, steps)
    seq_first = seq_first or first  # The first member's includes the compilation.
    seq_time += t
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
    r = bench(int(p), FLAGS.steps, base, ds)
    print(f"{r['members']:>8} {r['population_s']:>13.2f} {r['sequential_s']:>13.2f} "
          f"{r['ratio']:>7.2f} {r['population_compile_s']:>16.2f} "
          f"{r['sequential_compile_s']:>19.2f}", flush=True)


if __name__ == "__main__":
  app.run(main)
