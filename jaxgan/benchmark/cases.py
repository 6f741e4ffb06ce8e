"""The bench's cases: what each one trains, how many steps a timed repeat runs, the single
run a population is compared with, and the PyTorch loops beside it. Data only."""

from __future__ import annotations

# PacGAN's ring protocol (experiments/ring_vanilla.flags) with the toy_mlp G and D (2 x 128
# ReLU, the unrolled-GAN/VEEGAN mixture size), 10 steps per dispatch; RING_PACGAN: the
# protocol's own pacgan_mlp (G 4 x 400 + BatchNorm, D 3 maxout 200 x 5).
RING = dict(dataset="toy_ring8", model="toy_mlp", latent_dim=2, noise="normal",
            loss="non_saturating", update_order="simultaneous", batch_size=100,
            optimizer="adam", lr_g=1e-4, lr_d=1e-4, b1=0.8, b2=0.999, steps_per_call=10)
RING_PACGAN = dict(RING, model="pacgan_mlp")

# name -> Config overrides (and `members`: a population of seeds 0..P-1; `shape`: the
# synthetic images' shape). Batch sizes are the reference settings of each model.
CASES: dict[str, dict] = {
    "mlp": dict(model="mlp", batch_size=64),  # PyTorch-GAN gan.py.
    "mlp_scan10": dict(model="mlp", batch_size=64, steps_per_call=10),
    "paper_mlp": dict(model="paper_mlp", batch_size=100, update_order="simultaneous",
                      optimizer="sgd", lr_g=0.1, lr_d=0.1, lr_decay=1.000004,
                      min_lr=1e-6),
    # dcgan at 28x28x1 (the data of --data_dir, else synthetic) and on synthetic 32x32x3.
    "dcgan28": dict(model="dcgan", batch_size=64),
    "dcgan32": dict(model="dcgan", batch_size=64, shape=(32, 32, 3)),
    # Populations of mlp members (seeds 0..P-1) as one vmapped step (jaxgan.sweep);
    # steps_per_s is then member-steps/s, comparable with the "mlp" case.
    "pop8": dict(model="mlp", batch_size=64, members=8),
    "pop32": dict(model="mlp", batch_size=64, members=32),
    # Population scaling on an accelerator (benchmarks/accelerator.sh): small networks
    # leave a GPU mostly idle, so member-steps/s should grow with the member count.
    "pop64": dict(model="mlp", batch_size=64, members=64),
    "pop512": dict(model="mlp", batch_size=64, members=512),
    "dcgan28_pop8": dict(model="dcgan", batch_size=64, members=8),
    "dcgan28_pop64": dict(model="dcgan", batch_size=64, members=64),
    # PacGAN's ring toy protocol (experiments/ring_vanilla.flags, its 100 steps per
    # dispatch): a single run and populations of 8 and 32 seeds.
    "ring": dict(RING),
    "ring_pop8": dict(RING, members=8),
    "ring_pop32": dict(RING, members=32),
    "ring_pacgan": dict(RING_PACGAN),
    "ring_pacgan_pop8": dict(RING_PACGAN, members=8),
}

# Steps per timed repeat with --steps=0: about the same seconds for each case.
STEPS = {"dcgan28": 16, "dcgan32": 8, "pop8": 32, "pop32": 8, "pop64": 8, "pop512": 4,
         "dcgan28_pop8": 4, "dcgan28_pop64": 2, "ring": 1000,
         "ring_pop8": 500, "ring_pop32": 200,
         "ring_pacgan": 100, "ring_pacgan_pop8": 20}
DEFAULT_STEPS = 200


def case_steps(name: str, steps: int) -> int:
  """Steps per timed repeat of case `name`: `steps`, or the case's own when 0."""
  return steps or STEPS.get(name, DEFAULT_STEPS)


# A population case -> the single-run case it is compared with (member-steps/s over the
# single run's steps/s, measured in the same round).
SINGLE = {"pop8": "mlp", "pop32": "mlp", "pop64": "mlp", "pop512": "mlp",
          "dcgan28_pop8": "dcgan28", "dcgan28_pop64": "dcgan28",
          "ring_pop8": "ring", "ring_pop32": "ring",
          "ring_pacgan_pop8": "ring_pacgan"}

# A case -> its PyTorch loops (torch_loops.py --loop=...), the same model at the same
# batch size. The mlp loops read Fashion-MNIST (they need a data folder).
TORCH_LOOPS = {"mlp": ("published", "tuned"), "dcgan28": ("dcgan28",),
               "dcgan32": ("dcgan32",)}
LOOPS_NEEDING_DATA = ("published", "tuned")
