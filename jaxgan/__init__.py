"""jaxgan: Generative Adversarial Networks in JAX/Flax.

The public import surface for research code is `jaxgan.steps` (pure D/G/train steps),
`jaxgan.state` (GANState), `jaxgan.models`, `jaxgan.losses` and `jaxgan.data`.
"""

__version__ = "0.1.0"
