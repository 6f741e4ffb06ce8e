"""jaxgan: Generative Adversarial Networks in JAX/Flax.

The public import surface for research code is `jaxgan.steps` (pure D/G/train steps),
`jaxgan.state` (GANState), `jaxgan.models`, `jaxgan.losses` and `jaxgan.data`.

jaxgan sets no XLA flags: with jaxlib 0.10.2, XLA:CPU already sends matmuls to its
YNNPACK fusions by default (an earlier `--xla_cpu_experimental_xnn_fusion_type=dot`
default compiled to the identical program, so it was dropped; WORKSPACE.md,
"Performance").
"""

__version__ = "0.1.0"
