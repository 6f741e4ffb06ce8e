"""What D sees: the augmentations applied to every image D is shown, real and generated,
in D's and G's steps (DiffAugment's place: Zhao et al. 2020 augment both, in both steps).

An augmentation is `fn(x [B, H, W, C], key) -> [B, H, W, C]`, differentiable in x (G's
gradient passes through it). A builder `builder(settings, gan) -> fn | None` says whether
its augmentation applies to a run (None: not this run); register it with
`@augmentation(name)`. The active ones apply in registration order. With none active, D
sees its input as it is.
"""

from __future__ import annotations

from typing import Callable

import jax

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
