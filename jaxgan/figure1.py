r"""Goodfellow et al. 2014, Figure 1, reproduced: `python -m jaxgan.figure1`.

A 1-D GAN on the registered toy dataset `toy_gauss1d` (x ~ N(2, 0.5²)), with uniform z,
trained by the library's own pure steps. Draws p_data (black, dotted), p_g (green, a
histogram density of 200k samples of G) and D(x) (blue, dashed) into one PNG, in three
panels as the paper's (a), (b) and (d):
  (a) at the start;
  (b) after D alone is trained (G fixed) for --d_only_steps: D approaches
      D*(x) = p_data / (p_data + p_g) (drawn thin, red);
  (c) at the end of --steps of Algorithm 1: p_g ≈ p_data and D(x) ≈ ½.
Then checks that D(x) → ½: the mean of |D(x) − ½| over x ~ p_data must be at most
--tolerance; prints the figures and exits 1 if not.

    python -m jaxgan.figure1 --out=docs/figure1.png
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from jaxgan import data, toy
from jaxgan.config import Config
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


def run(out: str, seed: int = 0, d_only_steps: int = 500, steps: int = 3000,
        tolerance: float = 0.05) -> dict[str, float]:
  """Trains, draws the PNG at `out`; returns {'mean_abs_d_minus_half': ..., ...}."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  config = figure1_config(seed, steps)
  ds = data.load_dataset(DATASET, split="train")
  gan = make_gan(config, ds.image_shape)
  fns = make_steps(config, gan, ds.num_examples)
  seed_key = jax.random.PRNGKey(seed)
  state = gan.init(seed_key)
  images = jax.device_put(ds.images)
  xs = np.linspace(-1.0, 5.0, 241)
  plot_key = jax.random.fold_in(seed_key, 7)

  @jax.jit
  def d_only(state: GANState, i: jax.Array) -> GANState:
    idx = data.batch_indices(data_key(state), i, ds.num_examples, config.batch_size)
    real = data.gather_batch(images, idx, gan.pixel_range)
    return fns.d_step(state, real, jax.random.fold_in(jax.random.fold_in(seed_key, 9), i))[0]

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
  z = gan.sample_noise(jax.random.fold_in(seed_key, 8), 10_000)
  g_samples = np.asarray(fns.sample(state, z)).reshape(-1)
  result = {"mean_abs_d_minus_half": float(np.mean(np.abs(d_on_data - 0.5))),
            "mean_d_on_data": float(np.mean(d_on_data)),
            "g_mean": float(np.mean(g_samples)), "g_std": float(np.std(g_samples)),
            "tolerance": tolerance}

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
  axes[2].text(0.02, 0.97, f"mean |D(x) − ½| on data: {result['mean_abs_d_minus_half']:.3f}",
               transform=axes[2].transAxes, fontsize=7, va="top")
  fig.tight_layout()
  import os
  os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
  fig.savefig(out)
  plt.close(fig)
  return result


_OUT = flags.DEFINE_string("out", "docs/figure1.png", "Where to write the PNG.")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed.")
_D_ONLY = flags.DEFINE_integer("d_only_steps", 500, "D-only updates for panel (b).")
_STEPS = flags.DEFINE_integer("steps", 3000, "Algorithm 1 steps after panel (b).")
_TOL = flags.DEFINE_float("tolerance", 0.05, "Largest accepted mean |D(x) - 1/2|.")


def main(argv: list[str]) -> None:
  del argv
  result = run(_OUT.value, _SEED.value, _D_ONLY.value, _STEPS.value, _TOL.value)
  print(f"wrote {_OUT.value}")
  print(f"G samples: mean {result['g_mean']:.3f} std {result['g_std']:.3f} "
        f"(p_data: mean 2, std 0.5)")
  print(f"D on data: mean {result['mean_d_on_data']:.3f}, mean |D(x) - 1/2| "
        f"{result['mean_abs_d_minus_half']:.3f} (tolerance {result['tolerance']})")
  ok = result["mean_abs_d_minus_half"] <= result["tolerance"]
  print("D(x) -> 1/2: " + ("yes" if ok else "NO"))
  sys.exit(0 if ok else 1)


if __name__ == "__main__":
  app.run(main)
