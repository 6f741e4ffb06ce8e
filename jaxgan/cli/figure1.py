r"""Goodfellow et al. 2014, Figure 1, reproduced: `python -m jaxgan.figure1`.

A 1-D GAN on the registered toy dataset `toy_gauss1d` (x ~ N(2, 0.5²)), with uniform z,
trained by the library's own pure steps. Draws p_data (black, dotted), p_g (green, a
histogram density of 200k samples of G) and D(x) (blue, dashed) into one PNG, in three
panels as the paper's (a), (b) and (d):
  (a) at the start;
  (b) after D alone is trained (G fixed) for --d_only_steps: D approaches
      D*(x) = p_data / (p_data + p_g) (drawn thin, red);
  (c) at the end of --steps of Algorithm 1: p_g ≈ p_data and D(x) ≈ ½.
Then checks the end state of the paper's argument, both halves of it: D(x) → ½ (the
mean of |D(x) − ½| over x ~ p_data is at most --tolerance) *and* p_g = p_data (the 1-D
Wasserstein distance between 10,000 samples of G and of p_data is at most
--g_tolerance; a D stuck at ½ passes the first half whatever G does). Prints the
figures and exits 1 if either fails.

    python -m jaxgan.figure1 --out=docs/figure1.png
"""

from __future__ import annotations

import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from jaxgan import data, fileio, rng
from jaxgan.cli import common
from jaxgan.config import Config
from jaxgan.data import toy
from jaxgan.errors import ConfigError
from jaxgan.state import GANState, make_gan
from jaxgan.steps import data_key, make_steps

DATASET = "toy_gauss1d"


def figure1_config(seed: int = 0, steps: int = 3000) -> Config:
  """The 1-D GAN: toy MLPs, 1-d uniform z, Adam, Algorithm 1 with k = 1."""
  return Config(dataset=DATASET, model="toy_mlp", noise="uniform", latent_dim=1,
                loss="non_saturating", batch_size=256, num_steps=steps,
                lr_g=1e-3, lr_d=1e-3, b1=0.5, seed=seed).validate()


def panel_curves(gan, steps, state: GANState, xs: np.ndarray, key: jax.Array,
                 num_samples: int = 200_000) -> dict[str, np.ndarray]:
  """p_g (histogram density on the xs grid), D(x) on xs, and D* = p_data/(p_data+p_g)."""
  problem = toy.get_problem(DATASET)
  z = gan.sample_noise(key, num_samples)
  samples = np.asarray(steps.sample(state, z)).reshape(-1)
  width = xs[1] - xs[0]
  edges = np.concatenate([xs - width / 2, [xs[-1] + width / 2]])
  p_g = np.histogram(samples, bins=edges)[0] / (num_samples * width)
  d_vars = {"params": state.d.params, "batch_stats": state.d.batch_stats}
  logits = gan.discriminator.apply(d_vars, jnp.asarray(xs, jnp.float32).reshape(-1, 1, 1, 1),
                                   train=False)
  p_data = problem.density(xs[:, None])
  return {"p_g": p_g, "d": np.asarray(jax.nn.sigmoid(logits)), "p_data": p_data,
          "d_star": p_data / np.maximum(p_data + p_g, 1e-12)}


def wasserstein_1d(a: np.ndarray, b: np.ndarray) -> float:
  """W1 between two equal-size 1-D samples: the mean gap of their sorted values."""
  return float(np.mean(np.abs(np.sort(np.ravel(a)) - np.sort(np.ravel(b)))))


def figure1_checks(d_on_data: np.ndarray, g_samples: np.ndarray, data_samples: np.ndarray,
                   tolerance: float = 0.05, g_tolerance: float = 0.15) -> dict[str, Any]:
  """The two checks of the end state: D(x) -> 1/2 on the data, and p_g = p_data.

  d_on_data: D(x) [n] on samples of p_data; g_samples, data_samples: [n] each.
  Returns the figures and `d_half`, `g_matches`, `ok` (both).
  """
  result = {"mean_abs_d_minus_half": float(np.mean(np.abs(d_on_data - 0.5))),
            "mean_d_on_data": float(np.mean(d_on_data)),
            "g_mean": float(np.mean(g_samples)), "g_std": float(np.std(g_samples)),
            "g_w1": wasserstein_1d(g_samples, data_samples),
            "tolerance": tolerance, "g_tolerance": g_tolerance}
  result["d_half"] = result["mean_abs_d_minus_half"] <= tolerance
  result["g_matches"] = result["g_w1"] <= g_tolerance
  result["ok"] = result["d_half"] and result["g_matches"]
  return result


def make_figure1(out: str, seed: int = 0, d_only_steps: int = 500, steps: int = 3000,
                 tolerance: float = 0.05, g_tolerance: float = 0.15) -> dict[str, Any]:
  """Trains, draws the PNG at `out`; returns {'mean_abs_d_minus_half': ..., ...}."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  config = figure1_config(seed, steps)
  ds = data.load_dataset(DATASET, split="train")
  gan = make_gan(config, ds.image_shape)
  fns = make_steps(config, gan, ds.num_examples)
  seed_key = rng.seed_key(seed)
  state = gan.init(seed_key)
  images = jax.device_put(ds.images)
  xs = np.linspace(-1.0, 5.0, 241)
  plot_key = jax.random.fold_in(seed_key, rng.FIGURE1_PLOT)

  @jax.jit
  def d_only(state: GANState, i: jax.Array) -> GANState:
    idx = data.batch_indices(data_key(state), i, ds.num_examples, config.batch_size)
    real = data.gather_batch(images, idx, gan.pixel_range)
    d_key = jax.random.fold_in(jax.random.fold_in(seed_key, rng.FIGURE1_D_ONLY), i)
    return fns.d_step(state, real, d_key)[0]

  train_step = jax.jit(fns.train_step)
  panels = [("(a) start", panel_curves(gan, fns, state, xs, plot_key))]
  trained_d = state
  for i in range(d_only_steps):
    trained_d = d_only(trained_d, jnp.int32(i))
  panels.append((f"(b) D trained {d_only_steps} steps, G fixed",
                 panel_curves(gan, fns, trained_d, xs, plot_key)))
  state = trained_d
  for _ in range(steps):
    state, _ = train_step(state, images)
  end = panel_curves(gan, fns, state, xs, plot_key)
  panels.append((f"(c) after {steps} steps", end))

  # The check: D(x) -> 1/2 where the data lives.
  problem = toy.get_problem(DATASET)
  x_data, _ = problem.sample(10_000, seed=123)
  d_vars = {"params": state.d.params, "batch_stats": state.d.batch_stats}
  d_on_data = np.asarray(jax.nn.sigmoid(gan.discriminator.apply(
      d_vars, jnp.asarray(x_data).reshape(-1, 1, 1, 1), train=False)))
  z = gan.sample_noise(jax.random.fold_in(seed_key, rng.FIGURE1_SAMPLES), 10_000)
  g_samples = np.asarray(fns.sample(state, z)).reshape(-1)
  result = figure1_checks(d_on_data, g_samples, x_data, tolerance, g_tolerance)

  fig, axes = plt.subplots(1, 3, figsize=(10.5, 2.8), dpi=72, sharey=True)
  for ax, (title, c) in zip(axes, panels):
    ax.plot(xs, c["p_data"], "k:", lw=2, label="p_data")
    ax.plot(xs, c["p_g"], "g-", lw=1.5, label="p_g")
    ax.plot(xs, c["d"], "b--", lw=1.5, label="D(x)")
    if title.startswith("(b)"):
      ax.plot(xs, c["d_star"], "r-", lw=0.7, label="D* = p_data/(p_data+p_g)")
    ax.axhline(0.5, color="0.8", lw=0.5)
    ax.set_ylim(0, 1.6)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("x", fontsize=8)
    ax.tick_params(labelsize=7)
  axes[1].legend(fontsize=7, loc="upper left")
  axes[2].text(0.02, 0.97, f"mean |D(x) − ½| on data: {result['mean_abs_d_minus_half']:.3f}\n"
               f"W1(p_g, p_data): {result['g_w1']:.3f}",
               transform=axes[2].transAxes, fontsize=7, va="top")
  fig.tight_layout()
  fileio.save_with(out, fig.savefig)
  plt.close(fig)
  return result


def define_flags() -> None:
  """The program's flags (defined when it runs, so importing the module defines nothing)."""
  flags.DEFINE_string("out", "docs/figure1.png", "Where to write the PNG.")
  flags.DEFINE_integer("seed", 0, "Random seed.")
  flags.DEFINE_integer("d_only_steps", 500, "D-only updates for panel (b).")
  flags.DEFINE_integer("steps", 3000, "Algorithm 1 steps after panel (b).")
  flags.DEFINE_float("tolerance", 0.05, "Largest accepted mean |D(x) - 1/2|.")
  flags.DEFINE_float("g_tolerance", 0.15, "Largest accepted W1 distance between G's "
                     "samples and p_data (0.3 of the data's std).")


FLAGS = flags.FLAGS


def _main(argv: list[str]) -> None:
  common.no_arguments(argv)
  if min(FLAGS.steps, FLAGS.d_only_steps) < 0 or not (FLAGS.tolerance > 0 and FLAGS.g_tolerance > 0):
    raise ConfigError("--steps and --d_only_steps must be >= 0, --tolerance and "
                      "--g_tolerance > 0.")
  result = make_figure1(FLAGS.out, FLAGS.seed, FLAGS.d_only_steps, FLAGS.steps, FLAGS.tolerance,
                        FLAGS.g_tolerance)
  print(f"wrote {FLAGS.out}")
  print(f"G samples: mean {result['g_mean']:.3f} std {result['g_std']:.3f} "
        f"(p_data: mean 2, std 0.5), W1 to p_data {result['g_w1']:.3f} "
        f"(tolerance {result['g_tolerance']})")
  print(f"D on data: mean {result['mean_d_on_data']:.3f}, mean |D(x) - 1/2| "
        f"{result['mean_abs_d_minus_half']:.3f} (tolerance {result['tolerance']})")
  print("D(x) -> 1/2: " + ("yes" if result["d_half"] else "NO"))
  print("p_g = p_data: " + ("yes" if result["g_matches"] else "NO"))
  sys.exit(0 if result["ok"] else 1)


def main(argv: list[str]) -> None:
  common.run_reporting_errors(lambda: _main(argv))


def run() -> None:
  common.run_program(define_flags, main)


if __name__ == "__main__":
  run()
