"""jaxgan: Generative Adversarial Networks in JAX/Flax.

The public surface for research code, importable from the package root:

    import jaxgan
    config = jaxgan.Config(dataset="mnist", num_steps=1000).validate()
    gan = jaxgan.make_gan(config, (28, 28, 1))          # or jaxgan.gan_from_modules(G, D, ...)
    steps = jaxgan.make_steps(config, gan, num_examples)  # pure, jittable d/g/train steps

and the modules `jaxgan.steps`, `jaxgan.state`, `jaxgan.models`, `jaxgan.losses`,
`jaxgan.data` and `jaxgan.config`. Each name is imported on first use (PEP 562), so
`import jaxgan` imports neither jax nor flax: the command-line programs parse their flags
(and answer --help) before paying for them.

jaxgan sets no process-wide XLA flags (XLA_FLAGS); the train step's own compiler options
are set per program in jaxgan.runtime.compile. An XNNPACK flag jaxgan once set by default
compiled to the identical program with jaxlib 0.10.2 and was dropped (docs/performance.md,
"Throughput: where the milliseconds go").
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS = {
    "make_steps": "jaxgan.steps",
    "Steps": "jaxgan.steps",
    "repeat_step": "jaxgan.steps",
    "Config": "jaxgan.config",
    "GANState": "jaxgan.state",
    "NetState": "jaxgan.state",
    "GAN": "jaxgan.state",
    "make_gan": "jaxgan.state",
    "gan_from_modules": "jaxgan.state",
    "load_dataset": "jaxgan.data",
    "Dataset": "jaxgan.data",
}
_MODULES = ("steps", "state", "models", "losses", "data", "config")

__all__ = sorted(_EXPORTS) + list(_MODULES) + ["__version__"]


def __getattr__(name: str) -> Any:
  if name in _EXPORTS:
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
  elif name in _MODULES:
    value = importlib.import_module(f"jaxgan.{name}")
  else:
    raise AttributeError(f"module 'jaxgan' has no attribute {name!r}")
  globals()[name] = value  # Later lookups do not come back here.
  return value


def __dir__() -> list[str]:
  return sorted(__all__)
