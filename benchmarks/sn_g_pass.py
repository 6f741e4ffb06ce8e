r"""Does it matter that jaxgan's G step keeps none of D's spectral-norm state?

torch (and the authors' Chainer code) run a power iteration in every training-mode
forward of D, G's included; jaxgan's step discards D's state from G's pass, so u and v
advance twice per D update (its real and fake passes) and not in G's step. This trains
the flagfile's setting both ways from the same start, alternating nothing (two runs in one
process), and prints how far each run's spectral norms are from the true ones:

    python benchmarks/sn_g_pass.py --data_dir=/usr/share/datasets/fashion-mnist \
        --model=dcgan --steps=1000

For each D layer: σ = uᵀWv from the kept u, v (what D's next forward starts one iteration
from) against W's largest singular value (numpy SVD); the median and the largest relative
error over the layers, at every --every steps, and the runs' losses. 'torch' keeps D's
state from G's pass, as torch does; it exists only here, to measure the difference.
"""

from __future__ import annotations

import dataclasses
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from jaxgan import config as config_lib  # noqa: E402
from jaxgan import data  # noqa: E402
from jaxgan.state import make_gan  # noqa: E402
from jaxgan.steps import make_steps, orders  # noqa: E402
from jaxgan.steps.gate import UNGATED  # noqa: E402

flags.DEFINE_string("data_dir", "/usr/share/datasets/fashion-mnist", "IDX folder.")
flags.DEFINE_string("model", "dcgan", "resnet (the flagfile's) or dcgan (SNGAN's "
                    "standard CNN, --d_norm=spectral, far cheaper on a CPU).")
flags.DEFINE_integer("width", 0, "resnet only: G's and D's widths, 0 = the flagfile's "
                     "(256, 128).")
flags.DEFINE_integer("steps", 1000, "Train steps (5 D updates and 1 G update each).")
flags.DEFINE_integer("every", 100, "Report every N steps.")
flags.DEFINE_integer("seed", 0, "Seed of both runs.")
FLAGS = flags.FLAGS

ORIGINAL = orders.g_update
FLAGFILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "experiments", "fashion_mnist_resnet.flags")


def torch_like_g_update(parts, state, rng, real=None, labels=None, gate=UNGATED):
  """updates.g_update, then D's state as G's pass leaves it in torch: one more power
  iteration of each layer with D's weights (unchanged by G's update). D has no other
  state (spectral norm only), so the pass's input does not matter: the fakes."""
  state, metrics, fake, gate = ORIGINAL(parts, state, rng, real, labels, gate)
  out = parts.nets.discriminate(state.d.params, state.d.batch_stats, fake, rng, labels)
  return state.replace(d=state.d.replace(batch_stats=out.batch_stats)), metrics, fake, gate


def sigma_errors(d) -> list[float]:
  """|uᵀWv / σ_max(W) - 1| for each spectrally normalised layer of D."""
  params = jax.tree_util.tree_map(np.asarray, d.params)
  out = []
  for path, leaf in jax.tree_util.tree_flatten_with_path(d.batch_stats)[0]:
    if path[-1].key != "u":
      continue
    keys = [k.key for k in path[:-1]]
    layer = params
    for k in keys[:-1] + [keys[-1].removesuffix("_spectral")]:
      layer = layer[k]
    w = np.asarray(layer["kernel"], np.float64)
    w = w.reshape(-1, w.shape[-1]).T  # [out, in]
    stats = d.batch_stats
    for k in keys:
      stats = stats[k]
    u, v = (np.asarray(stats[n], np.float64) for n in "uv")
    out.append(abs(u @ w @ v / np.linalg.svd(w, compute_uv=False)[0] - 1))
  return out


def main(argv):
  del argv
  fv = flags.FlagValues()
  config_lib.define_flags(fv)
  args = ["prog", f"--flagfile={FLAGFILE}", f"--data_dir={FLAGS.data_dir}",
          f"--model={FLAGS.model}", f"--seed={FLAGS.seed}", f"--num_steps={FLAGS.steps}"]
  fv(args)
  config = config_lib.from_flags(fv, args).validate()
  ds = data.load_dataset("", FLAGS.data_dir, "train")
  gan = make_gan(config, ds.images.shape[1:])
  if FLAGS.model == "resnet" and FLAGS.width:
    gan = gan._replace(generator=gan.generator.clone(width=FLAGS.width),
                       discriminator=gan.discriminator.clone(width=FLAGS.width))
  images = jax.device_put(ds.images)
  print(f"model={config.model} d_norm={config.d_norm} loss={config.loss} "
        f"k={config.num_d_steps} b1={config.b1} b2={config.b2} seed={config.seed}")
  print("variant  step  median|sigma/svd-1|  max|sigma/svd-1|  d_loss  g_loss")
  for variant, g_update in (("jaxgan", ORIGINAL), ("torch", torch_like_g_update)):
    orders.g_update = g_update
    try:
      steps = make_steps(dataclasses.replace(config), gan, len(images))
      state = jax.jit(gan.init)(jax.random.PRNGKey(config.seed))
      step = jax.jit(steps.train_step)
      for i in range(1, FLAGS.steps + 1):
        state, metrics = step(state, images)
        if i % FLAGS.every == 0 or i == FLAGS.steps:
          errors = sigma_errors(state.d)
          print(f"{variant:7s} {i:5d}  {np.median(errors):.2e}  {max(errors):.2e}  "
                f"{float(metrics['d_loss']):.4f}  {float(metrics['g_loss']):.4f}",
                flush=True)
    finally:
      orders.g_update = ORIGINAL


if __name__ == "__main__":
  app.run(main)
