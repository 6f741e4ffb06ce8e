"""DiffAugment (jaxgan/steps/augment.py) against a NumPy transcription of the authors'
DiffAugment_pytorch.py (mit-han-lab/data-efficient-gans), fed the same random numbers:
each transformation, its gradient, the policy's order, the pixel range and packing, what
D sees in D's and G's steps, and the flag's refusals.

The transcriptions below are the authors' functions line for line, on NCHW arrays as
theirs (jaxgan is NHWC: the tests transpose), with their constants written out; the
random numbers are the ones jaxgan draws (each op's `draw`), handed to both."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import config as config_lib
from jaxgan.config import Config
from jaxgan.errors import ConfigError, WorkdirError
from jaxgan.runtime import workdir
from jaxgan.runtime.compile import compile_once
from jaxgan.state import make_gan
from jaxgan.steps import augment, make_steps, settings
from jaxgan.steps.batches import pack_batch

import toolkit

# Not square and with one odd side, so a swapped axis or the odd cutout's offsets show:
# shift 2 on the 12 rows and 1 on the 5 columns; cutout 6 x 3.
SHAPE = (6, 12, 5, 3)
X = np.random.default_rng(0).uniform(-1, 1, SHAPE).astype(np.float32)
W = np.random.default_rng(1).normal(size=SHAPE)  # Weights of the sum differentiated.
KEY = jax.random.PRNGKey(7)


# --------------------------------------------------------------------------- theirs
def rand_brightness(x, r):
  return x + (r - 0.5)


def rand_saturation(x, r):
  x_mean = x.mean(axis=1, keepdims=True)
  return (x - x_mean) * (r * 2) + x_mean


def rand_contrast(x, r):
  x_mean = x.mean(axis=(1, 2, 3), keepdims=True)
  return (x - x_mean) * (r + 0.5) + x_mean


def rand_translation(x, translation_x, translation_y, ratio=0.125):
  b, _, h, w = x.shape
  translation_x, translation_y = translation_x[:, None, None], translation_y[:, None, None]
  grid_batch, grid_x, grid_y = np.meshgrid(np.arange(b), np.arange(h), np.arange(w),
                                           indexing="ij")
  grid_x = np.clip(grid_x + translation_x + 1, 0, h + 1)
  grid_y = np.clip(grid_y + translation_y + 1, 0, w + 1)
  x_pad = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)])
  return x_pad.transpose(0, 2, 3, 1)[grid_batch, grid_x, grid_y].transpose(0, 3, 1, 2)


def rand_cutout(x, offset_x, offset_y, ratio=0.5):
  b, _, h, w = x.shape
  cutout_size = int(h * ratio + 0.5), int(w * ratio + 0.5)
  offset_x, offset_y = offset_x[:, None, None], offset_y[:, None, None]
  grid_batch, grid_x, grid_y = np.meshgrid(
      np.arange(b), np.arange(cutout_size[0]), np.arange(cutout_size[1]), indexing="ij")
  grid_x = np.clip(grid_x + offset_x - cutout_size[0] // 2, 0, h - 1)
  grid_y = np.clip(grid_y + offset_y - cutout_size[1] // 2, 0, w - 1)
  mask = np.ones((b, h, w), x.dtype)
  mask[grid_batch, grid_x, grid_y] = 0
  return x * mask[:, None]


AUGMENT_FNS = {"color": [rand_brightness, rand_saturation, rand_contrast],
               "translation": [rand_translation], "cutout": [rand_cutout]}


def theirs(name, x_nhwc, draws):
  """Their policy `name` on NHWC x with jaxgan's draws (float64). Color's draws are the
  three transformations' torch.rand, translation's and cutout's their two randint."""
  x = np.asarray(x_nhwc, np.float64).transpose(0, 3, 1, 2)
  draws = np.asarray(draws)
  if name == "color":
    for f, r in zip(AUGMENT_FNS["color"], draws):
      x = f(x, r)
  else:
    x = AUGMENT_FNS[name][0](x, draws[0], draws[1])
  return x.transpose(0, 2, 3, 1)


def policy_draws(policy, shape, key):
  """Each policy's draws as jaxgan makes them: from fold_in(key, its stream)."""
  return [augment.POLICIES[n].draw(jax.random.fold_in(key, augment.POLICIES[n].stream),
                                   shape) for n in policy.split(",")]


def their_policy(policy, x, draws):
  """DiffAugment(x, policy): `for p in policy.split(',')`, with `draws`."""
  for name, d in zip(policy.split(","), draws):
    x = theirs(name, x, d)
  return x


def ours(policy, x, key, pixel_range=(-1.0, 1.0), pack=1, fn=None, policy_key=None):
  """(jaxgan's DiffAugment of x, the draws it made for the unpacked x), one program.
  fn: the augmentation (default make_diffaugment's); policy_key(key): the key its
  policies fold their streams into (default: key)."""
  fn = fn or augment.make_diffaugment(policy, pixel_range, pack)
  policy_key = policy_key or (lambda key: key)
  b, h, w, c = x.shape
  x = jnp.asarray(x, jnp.float32)
  out, draws = compile_once(lambda x, key: (fn(x, key), policy_draws(
      policy, (b * pack, h, w, c // pack), policy_key(key))), x, key)(x, key)
  return np.asarray(out), draws


# --------------------------------------------------------------------------- the ops
def translated_back(w, shifts):
  """The adjoint of a translation: output (i, j) read input (i + t_y, j + t_x)."""
  grad = np.zeros_like(w)
  for b, (t_y, t_x) in enumerate(zip(*shifts)):
    for i in range(w.shape[1]):
      for j in range(w.shape[2]):
        if 0 <= i + t_y < w.shape[1] and 0 <= j + t_x < w.shape[2]:
          grad[b, i + t_y, j + t_x] += w[b, i, j]
  return grad


@pytest.mark.parametrize("name", list(augment.POLICIES))
def test_each_policy_is_theirs_on_the_same_draws_and_so_is_its_gradient(name):
  policy = augment.POLICIES[name]

  def run(x, w, key):  # The draws, policy(x) and d/dx sum(W · policy(x)), in one program.
    draws = policy.draw(key, x.shape)
    out, vjp = jax.vjp(lambda x: policy.apply(x, draws), x)
    return draws, out, vjp(w)[0]

  args = jnp.asarray(X), jnp.asarray(W, jnp.float32), KEY
  draws, out, grad = compile_once(run, *args)(*args)
  np.testing.assert_allclose(out, theirs(name, X, draws), atol=1e-6)
  # The gradient by hand, from their formulas.
  draws = np.asarray(draws)
  if name == "color":
    # Contrast (x - m)s + m, m each image's mean over C, H, W; then saturation's, m the
    # channels' mean; brightness passes it as it is.
    s = draws[2] + 0.5
    want = s * W + (1 - s) * W.mean(axis=(1, 2, 3), keepdims=True)
    s = draws[1] * 2
    want = s * want + (1 - s) * want.mean(axis=-1, keepdims=True)
  elif name == "translation":
    want = translated_back(W, draws)
  else:  # Only the kept pixels pass a gradient.
    want = W * theirs("cutout", np.ones(SHAPE), draws)
  np.testing.assert_allclose(grad, want, atol=1e-5)


def test_the_draws_are_theirs_per_example_over_the_authors_ranges():
  big = (4000, 12, 5, 3)
  shifts, offsets, u = compile_once(lambda key: tuple(
      augment.POLICIES[name].draw(key, big) for name in ("translation", "cutout", "color")),
      KEY)(KEY)
  # torch.randint(-s, s + 1): s = int(12/8 + 0.5) = 2 rows, int(5/8 + 0.5) = 1 column.
  rows, cols = (np.asarray(d) for d in shifts)
  assert rows.shape == cols.shape == (4000,)
  assert set(rows) == set(range(-2, 3)) and set(cols) == set(range(-1, 2))
  # randint(0, side + (1 - size % 2)): size int(12/2 + 0.5) = 6 even -> 0..12; size
  # int(5/2 + 0.5) = 3 odd -> 0..4.
  rows, cols = (np.asarray(d) for d in offsets)
  assert set(rows) == set(range(13)) and set(cols) == set(range(5))
  u = np.asarray(u)
  assert u.shape == (3, 4000, 1, 1, 1) and 0 <= u.min() and u.max() < 1
  assert np.abs(u.mean(axis=(1, 2, 3, 4)) - 0.5).max() < 0.02
  assert abs(np.corrcoef(u[0].ravel(), u[1].ravel())[0, 1]) < 0.05  # Independent.


# --------------------------------------------------------------------------- policies
def test_the_policy_applies_its_transformations_in_its_order():
  assert set(augment.POLICIES) == set(config_lib.DIFFAUGMENT_POLICIES)
  outs = {}
  for policy in ("color,translation,cutout", "cutout,translation,color"):
    outs[policy], draws = ours(policy, X, KEY)
    np.testing.assert_allclose(outs[policy], their_policy(policy, X, draws), atol=1e-5)
  # The order matters (brightness after cutout lights the cut pixels), and was tested.
  assert np.abs(outs["color,translation,cutout"]
                - outs["cutout,translation,color"]).max() > 0.1


def test_a_0_1_model_gets_the_same_pictures_and_each_packed_sample_its_own_draws():
  """What a run builds (the registered 'diffaugment' for paper_mlp, pixels in [0, 1],
  with --pack=2): [0, 1] images are transformed as their [-1, 1] pictures (the cut and
  the padding mid-grey 0.5), and each of the 2B samples is augmented as its own image,
  at its place in pack_batch's layout."""
  policy = "color,translation,cutout"
  config = Config(model="paper_mlp", pack=2, diffaugment=policy, num_steps=1)
  gan = make_gan(config, SHAPE[1:])
  fn = augment.make_augment(settings.resolve(config, gan), gan)
  x01 = (X + 1) / 2  # 6 samples: 3 packed examples of 2.
  packed, draws = ours(policy, pack_batch(jnp.asarray(x01), 2), KEY, pack=2, fn=fn,
                       policy_key=lambda key: jax.random.fold_in(key, 0))
  want = (their_policy(policy, 2 * x01 - 1, draws) + 1) / 2
  np.testing.assert_allclose(packed, pack_batch(jnp.asarray(want, jnp.float32), 2),
                             atol=1e-5)
  # Cut pixels are mid-grey, not the [0, 1] black.
  assert set(np.unique(ours("cutout", np.ones(SHAPE), KEY, (0.0, 1.0))[0])) == {0.5, 1.0}


# --------------------------------------------------------------------------- the steps
def test_d_and_g_see_the_augmented_images_in_every_pass():
  """d_step's real and fake passes and g_step's pass see theirs(x) with the step's keys
  (jaxgan.rng: each pass's dropout key, fold_in AUGMENT_STREAM = 1, then make_augment's
  index 0 of the one active augmentation)."""
  policy = "color,translation,cutout"
  config = toolkit.tiny_config(diffaugment=policy)
  gan = make_gan(config, (8, 8, 1))
  gan = gan._replace(generator=gan.generator.clone(hidden=(8,)),
                     discriminator=gan.discriminator.clone(hidden=(8,)))
  steps = make_steps(config, gan, 64)
  real, fake = (jnp.asarray(np.random.default_rng(i).uniform(-1, 1, (8, 8, 8, 1)),
                            jnp.float32) for i in (2, 3))

  def pass_draws(key):  # The draws of the three passes, from the steps' keys.
    real_key, fake_key, _ = jax.random.split(jax.random.split(key)[1], 3)
    g_key = jax.random.split(key, 3)[1]
    return [policy_draws(policy, real.shape, jax.random.fold_in(jax.random.fold_in(k, 1), 0))
            for k in (real_key, fake_key, g_key)]

  def both(real, fake, key):  # One program: the state, D's and G's steps, the draws.
    state = gan.init(key)
    return (state.d.params, steps.d_step(state, real, key, fake)[1],
            steps.g_step(state, key)[1:], pass_draws(key))

  d_params, d_metrics, (g_metrics, g_fake), draws = compile_once(both, real, fake, KEY)(
      real, fake, KEY)
  seen = [jnp.asarray(their_policy(policy, np.asarray(x), d), jnp.float32)
          for x, d in zip((real, fake, g_fake), draws)]
  d = lambda x: gan.discriminator.apply({"params": d_params}, x)  # noqa: E731
  real_logits, fake_logits, g_logits = compile_once(
      lambda a, b, c: (d(a), d(b), d(c)), *seen)(*seen)
  assert float(d_metrics["d_real"]) == pytest.approx(
      float(jnp.mean(jax.nn.sigmoid(real_logits))), rel=1e-5)
  assert float(d_metrics["d_fake"]) == pytest.approx(
      float(jnp.mean(jax.nn.sigmoid(fake_logits))), rel=1e-5)
  assert float(g_metrics["g_loss"]) == pytest.approx(float(gan.loss.g_loss(g_logits)),
                                                     rel=1e-5)


# --------------------------------------------------------------------------- the flag
@pytest.mark.parametrize("overrides, message", [
    (dict(diffaugment="colour"), "--diffaugment='colour' is invalid: expected distinct "
     "names from ['color', 'translation', 'cutout']"),
    (dict(diffaugment="color,color"), "--diffaugment='color,color' is invalid"),
    (dict(diffaugment="color,"), "--diffaugment='color,' is invalid"),
    (dict(diffaugment="color", dataset="toy_ring8", model="toy_mlp"),
     "--diffaugment=color transforms images, but --dataset=toy_ring8 is a toy dataset"),
])
def test_bad_diffaugment_is_refused_in_one_line_naming_the_flag(overrides, message):
  with pytest.raises(ConfigError) as info:
    Config(num_steps=1, **overrides).validate()
  assert message in str(info.value) and "\n" not in str(info.value)


def test_points_are_refused_by_the_step_and_the_command_line(tmp_path, capsys):
  config = Config(dataset="toy_ring8", model="toy_mlp", num_steps=1, diffaugment="color")
  with pytest.raises(ValueError, match="DiffAugment transforms images"):
    make_steps(config, make_gan(config, (1, 1, 2)), 64)
  run = tmp_path / "run"
  code, err = toolkit.run_main_in_process(
      [f"--workdir={run}", "--dataset=toy_ring8", "--model=toy_mlp", "--num_steps=2",
       "--diffaugment=translation"], capsys)
  assert code == 2 and "Traceback" not in err and not run.exists()
  assert err.count("jaxgan: error: --diffaugment=translation transforms images") == 1


def test_a_run_saved_without_diffaugment_is_not_resumed_with_it(tmp_path):
  saved = json.loads(Config(num_steps=1).to_json())
  del saved["diffaugment"]  # Saved before the flag existed: trained without it.
  (tmp_path / "config.json").write_text(json.dumps(saved))
  workdir.check_resume_config(str(tmp_path), Config(num_steps=1))
  with pytest.raises(WorkdirError, match=r"--diffaugment='' \(saved\) vs 'color' \(now\)"):
    workdir.check_resume_config(str(tmp_path), Config(num_steps=1, diffaugment="color"))
