"""What D sees: the augmentations applied to every image D is shown, real and generated,
in D's and G's steps (DiffAugment's place: Zhao et al. 2020 augment both, in both steps).

An augmentation is `fn(x [B, H, W, C], key) -> [B, H, W, C]`, differentiable in x (G's
gradient passes through it). A builder `builder(settings, gan) -> fn | None` says whether
its augmentation applies to a run (None: not this run); register it with
`@augmentation(name)`. The active ones apply in registration order. With none active, D
sees its input as it is.

Registered here: 'diffaugment' (--diffaugment=color,translation,cutout), DiffAugment's
differentiable transformations as the authors' DiffAugment_pytorch.py writes them
(mit-han-lab/data-efficient-gans), applied in the policy's order:
  * color: brightness x + (u - 0.5), saturation (x - mean_C x)·2u + mean_C x, contrast
    (x - mean_CHW x)·(u + 0.5) + mean_CHW x, each u ~ U[0, 1) per example (saturation
    is the identity on one-channel images);
  * translation: an integer shift per example and axis, uniform in [-s, s] with
    s = int(side/8 + 0.5), the vacated pixels zero;
  * cutout: a zeroed rectangle of int(side/2 + 0.5) per axis, per example, at the
    authors' offsets and clamped to the image as theirs.
The ops are defined on images in [-1, 1] (the authors' range): for a model with another
`pixel_range` [lo, hi] the images are mapped affinely to [-1, 1] and back, so the
transformation is the same on the picture (zero is mid-grey; brightness moves by up to
a quarter of the range). With packing (--pack=m) each of the m samples of a packed
example is augmented as its own image, with its own draws, before D sees the pack
(PacGAN's D judges m independent samples of the distribution it is shown, here the
augmented one; as one image of m·C channels, saturation's and contrast's means would
mix the samples and all m would share one shift and one cut).

Where: `Nets.discriminate` augments every input of D, each pass with its own draws
(fold_in of the pass's key), as the authors' D(T(x)): the real and the fake pass of D's
loss and G's pass (their README and loss.py files) and also every other pass jaxgan
makes: feature matching's, the unrolled D's, the gradient penalty's on interpolates of
the un-augmented real and fake batches, R1/R2's, whose gradient is taken through the
augmentation with respect to the un-augmented images (as the authors' low-shot
StyleGAN2 loss ns_DiffAugment_r1 and their StyleGAN2-ADA-based PyTorch code).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array
Augmentation = Callable[[Array, Array], Array]

# name -> builder(settings, gan) -> Augmentation | None, in registration order.
AUGMENTATIONS: dict[str, Callable[..., Augmentation | None]] = {}


def augmentation(name: str):
  """Registers a builder of an augmentation under `name` (a decorator)."""
  def register(builder):
    if name in AUGMENTATIONS:
      raise ValueError(f"an augmentation named {name!r} is already registered")
    AUGMENTATIONS[name] = builder
    return builder
  return register


def identity(x: Array, key: Array) -> Array:
  del key
  return x


def make_augment(settings, gan) -> Augmentation:
  """The composition of the augmentations active for `settings` (identity if none)."""
  active = [fn for fn in (b(settings, gan) for b in AUGMENTATIONS.values())
            if fn is not None]
  if not active:
    return identity

  def augment(x: Array, key: Array) -> Array:
    for i, fn in enumerate(active):
      x = fn(x, jax.random.fold_in(key, i))
    return x
  return augment


# --------------------------------------------------------------------------- DiffAugment
# The authors' defaults (rand_translation's and rand_cutout's `ratio`).
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def brightness(x: Array, u: Array) -> Array:
  """rand_brightness: x + (u - 0.5); x [B, H, W, C] in [-1, 1], u [B, 1, 1, 1]."""
  return x + (u - 0.5)


def saturation(x: Array, u: Array) -> Array:
  """rand_saturation: (x - m)·(2u) + m, m the mean over channels (NCHW dim 1 is C)."""
  mean = jnp.mean(x, axis=-1, keepdims=True)
  return (x - mean) * (u * 2) + mean


def contrast(x: Array, u: Array) -> Array:
  """rand_contrast: (x - m)·(u + 0.5) + m, m each image's mean over C, H and W."""
  mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
  return (x - mean) * (u + 0.5) + mean


def draw_color(key: Array, shape: tuple[int, ...]) -> Array:
  """u [3, B, 1, 1, 1] ~ U[0, 1): brightness's, saturation's and contrast's
  torch.rand(x.size(0), 1, 1, 1)."""
  return jax.random.uniform(key, (3, shape[0], 1, 1, 1), jnp.float32)


def color(x: Array, u: Array) -> Array:
  """The authors' 'color': brightness, saturation, contrast, in that order."""
  return contrast(saturation(brightness(x, u[0]), u[1]), u[2])


def translation_shifts(height: int, width: int) -> tuple[int, int]:
  """The largest shift s per axis: int(side · 1/8 + 0.5) (4 at 28 and at 32, 1 at 8)."""
  return (int(height * TRANSLATION_RATIO + 0.5), int(width * TRANSLATION_RATIO + 0.5))


def draw_translation(key: Array, shape: tuple[int, ...]) -> Array:
  """[2, B] int32: each example's shift of rows, then of columns, each uniform in
  [-s, s] (torch.randint(-s, s + 1); the authors' translation_x indexes NCHW's dim 2,
  the rows)."""
  b, h, w = shape[:3]
  shift_h, shift_w = translation_shifts(h, w)
  return jax.random.randint(key, (2, b), jnp.array([[-shift_h], [-shift_w]]),
                            jnp.array([[shift_h + 1], [shift_w + 1]]))


def translation(x: Array, shifts: Array) -> Array:
  """rand_translation: out[b, i, j] = x[b, i + t_y, j + t_x], 0 where that is outside;
  shifts [2, B]: (t_y, t_x) per example.

  The authors' index arithmetic: x zero-padded by one pixel on each side, read at
  clamp(i + t + 1, 0, side + 1), so every source outside the image reads the padding.
  Gathered rows first, then columns (the TF version's order; each output pixel reads
  one input pixel either way)."""
  shift_h, shift_w = shifts[0], shifts[1]
  _, h, w, _ = x.shape
  rows = jnp.clip(jnp.arange(h)[None, :] + shift_h[:, None] + 1, 0, h + 1)  # [B, H]
  cols = jnp.clip(jnp.arange(w)[None, :] + shift_w[:, None] + 1, 0, w + 1)  # [B, W]
  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  x = jnp.take_along_axis(padded, rows[:, :, None, None], axis=1)  # [B, H, W + 2, C]
  return jnp.take_along_axis(x, cols[:, None, :, None], axis=2)  # [B, H, W, C]


def cutout_size(height: int, width: int) -> tuple[int, int]:
  """The cut rectangle's sides: int(side · 1/2 + 0.5) (14 at 28, 16 at 32, 4 at 8)."""
  return int(height * CUTOUT_RATIO + 0.5), int(width * CUTOUT_RATIO + 0.5)


def draw_cutout(key: Array, shape: tuple[int, ...]) -> Array:
  """[2, B] int32: each example's rectangle centre row, then column, as the authors
  draw them: uniform in [0, side + 1 - size % 2) (so past the last pixel for an even
  size)."""
  b, h, w = shape[:3]
  size_h, size_w = cutout_size(h, w)
  return jax.random.randint(key, (2, b), 0,
                            jnp.array([[h + 1 - size_h % 2], [w + 1 - size_w % 2]]))


def _cut_span(offset: Array, size: int, side: int) -> Array:
  """[B, side] bool: the authors' cut indices clamp(offset - size//2 + r, 0, side - 1)
  for r < size. Clamping a run of consecutive indices gives the run from the clamped
  first to the clamped last, which a comparison marks without a scatter."""
  first = offset - size // 2
  low = jnp.clip(first, 0, side - 1)[:, None]
  high = jnp.clip(first + size - 1, 0, side - 1)[:, None]
  index = jnp.arange(side)[None, :]
  return (index >= low) & (index <= high)


def cutout(x: Array, offsets: Array) -> Array:
  """rand_cutout: x times a mask that is 0 on each example's rectangle, 1 elsewhere;
  offsets [2, B]: the rectangles' centre rows and columns."""
  _, h, w, _ = x.shape
  size_h, size_w = cutout_size(h, w)
  cut = (_cut_span(offsets[0], size_h, h)[:, :, None]
         & _cut_span(offsets[1], size_w, w)[:, None, :])
  return x * (1 - cut.astype(x.dtype))[..., None]


class Policy(NamedTuple):
  """One of the authors' AUGMENT_FNS, split so its random numbers can be recovered:
  `draw(key, x.shape)` gives them (one draw per policy), `apply(x, draws)` transforms x
  [B, H, W, C] (in [-1, 1]). `stream`: its key is fold_in(the augmentation's key,
  stream), fixed per policy, so a policy string that adds or reorders names leaves the
  draws of the others as they were."""

  draw: Callable[[Array, tuple[int, ...]], Any]
  apply: Callable[[Array, Any], Array]
  stream: int


# The authors' AUGMENT_FNS (config.DIFFAUGMENT_POLICIES names the same keys for
# --diffaugment's check).
POLICIES = {
    "color": Policy(draw_color, color, 0),
    "translation": Policy(draw_translation, translation, 1),
    "cutout": Policy(draw_cutout, cutout, 2),
}


def parse_policy(policy: str) -> list[str]:
  """The names of 'color,translation,...', in application order.

  Raises ValueError for an unknown or repeated name (a repeat would draw the same
  numbers twice: each policy has one stream)."""
  names = policy.split(",")
  if any(n not in POLICIES for n in names) or len(set(names)) != len(names):
    raise ValueError(f"DiffAugment policy {policy!r}: expected distinct names from "
                     f"{list(POLICIES)}, comma-separated")
  return names


def unpack(x: Array, pack: int) -> Array:
  """[B, H, W, m·C] -> [m·B, H, W, C]: sample i of packed example b to row i·B + b
  (the inverse of jaxgan.steps.batches.pack_batch's layout)."""
  if pack == 1:
    return x
  b, h, w, channels = x.shape
  c = channels // pack
  return x.reshape(b, h, w, pack, c).transpose(3, 0, 1, 2, 4).reshape(pack * b, h, w, c)


def repack(x: Array, pack: int) -> Array:
  """[m·B, H, W, C] -> [B, H, W, m·C], the inverse of `unpack`."""
  if pack == 1:
    return x
  mb, h, w, c = x.shape
  b = mb // pack
  return x.reshape(pack, b, h, w, c).transpose(1, 2, 3, 0, 4).reshape(b, h, w, pack * c)


def make_diffaugment(policy: str, pixel_range: tuple[float, float] = (-1.0, 1.0),
                     pack: int = 1) -> Augmentation:
  """DiffAugment(x, policy) as `fn(x [B, H, W, pack·C] in pixel_range, key) -> the same
  shape`: the policy's names in order, each drawing from fold_in(key, its stream);
  differentiable in x. Each of a pack's samples is augmented as its own image; images
  in another range than [-1, 1] are transformed as the same pictures in [-1, 1] (the
  module docstring)."""
  chosen = [POLICIES[name] for name in parse_policy(policy)]
  lo, hi = pixel_range
  centre, half = (lo + hi) / 2, (hi - lo) / 2
  # [-1, 1] itself is left untouched (no rounding from a map that is the identity).
  unit = (centre, half) == (0.0, 1.0)

  def augment(x: Array, key: Array) -> Array:
    x = unpack(x, pack)
    if not unit:
      x = (x - centre) / half
    for p in chosen:
      x = p.apply(x, p.draw(jax.random.fold_in(key, p.stream), x.shape))
    if not unit:
      x = x * half + centre
    return repack(x, pack)
  return augment


@augmentation("diffaugment")
def diffaugment(settings, gan):
  """--diffaugment=POLICY (Zhao et al. 2020) on every D input; None when ''."""
  policy = settings.config.diffaugment
  if not policy:
    return None
  if tuple(gan.image_shape[:2]) == (1, 1):
    raise ValueError(f"DiffAugment transforms images, but this GAN's examples have "
                     f"shape {tuple(gan.image_shape)} (points, not pictures: a shift "
                     "of 1/8 is 0 pixels and the cutout covers the whole example)")
  return make_diffaugment(policy, gan.pixel_range, settings.pack)
