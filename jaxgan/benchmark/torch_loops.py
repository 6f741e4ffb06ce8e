r"""PyTorch reference loops for `python -m jaxgan.bench --torch=PYTHON`.

Run with the interpreter of an environment that has torch (torch is not a jaxgan
requirement; `python3 -m venv ../torch-venv && ../torch-venv/bin/pip install torch`).
A standalone script: it imports no jaxgan (that interpreter need not have jaxgan's
requirements), and it ships inside the package so an installed jaxgan finds it by its
own path (jaxgan.benchmark.compare.TORCH_SCRIPT):

    ../torch-venv/bin/python jaxgan/benchmark/torch_loops.py --loop=published \
        --data_dir=/usr/share/datasets/fashion-mnist --steps=200 --repeats=5

--device: where the models and the preloaded data live ("auto": cuda when torch sees a GPU,
else cpu). The tuned and DCGAN loops run there (every tensor made on it, timing synchronised
with the GPU at the end of each repeat); the published loop stays on the CPU wherever it
runs, since its per-example CPU pipeline is what it measures.

Prints one JSON line: {"loop", "it_per_s" (median over the repeats), "it_per_s_repeats",
"batch_size", "torch", "device", "threads", "trial_it_per_s" (the short trials of the thread counts
and memory formats that chose the setting timed), "pipeline", "memory_format" (DCGAN)}.
One iteration is one G update and one D update, as one jaxgan train step (k = 1). Loops:

  published  PyTorch-GAN implementations/gan/gan.py's training loop as published: the
             torchvision FashionMNIST dataset (the IDX files of --data_dir, laid out where
             torchvision reads them) with Resize(28) -> ToTensor -> Normalize(0.5, 0.5), a
             shuffling DataLoader (batch 64), z from np.random.normal, G step then D step,
             Sigmoid + BCELoss, a loss print every batch and a 25-image PNG every 400
             batches. Where torchvision does not import (a torchvision built for another
             torch), the same per-example pipeline is re-created with PIL and plain torch
             (PIL image per example, Resize of a 28 px image returns it as torchvision's
             resize does, ToTensor, Normalize, the same DataLoader; no PNGs), and
             "pipeline" says so.
  tuned      the same model, initialisation and maths with less work per step: the data
             preloaded as one tensor in [-1, 1] (per-epoch randperm batches), z from
             torch.randn, no prints, D's parameters frozen during the G step (no unused D
             weight gradients), D run once on cat(real, fake) (D has no batch-coupled
             layer, so this equals two passes), logits with BCEWithLogitsLoss instead of
             Sigmoid + BCELoss, fused Adam.
  dcgan28    DCGAN with the layer shapes of jaxgan's `dcgan` at 28x28x1 (width 64:
  dcgan32    G Dense -> BN -> ReLU -> [ConvT 4x4/2 -> BN -> ReLU]* -> ConvT 4x4/2 -> Tanh;
             D [Conv 4x4/2 (-> BN after the first) -> LeakyReLU 0.2]* -> Linear) and at
             32x32x3, weights N(0, 0.02), Adam(2e-4, 0.5, 0.999), batch 64, the maths of
             jaxgan's default step (update_order d_then_g, k = 1), written for speed: D
             step on a real batch and G(z1) made without a graph (torch.no_grad), D run
             on real and fake in separate passes (its BatchNorm couples a batch), then the
             G step on a fresh G(z2) through the updated D with D's parameters frozen (no
             unused D weight gradients); BCEWithLogitsLoss (jaxgan's non-saturating loss
             on logits). The FLOPs equal those of PyTorch-GAN's order (G step, then D on
             the same fakes) without freezing D. Data preloaded as one tensor
             (Fashion-MNIST from --data_dir at 28 px, else random uint8 images, as
             jaxgan's bench), NCHW or channels-last, whichever --memory_format names
             ("auto": the faster of the two over a short alternating trial, reported in
             "memory_format").
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn

LATENT = 100
LOOPS = ("published", "tuned", "dcgan28", "dcgan32")


# --------------------------------------------------------------------------- data
def _idx_path(data_dir: str, stem: str) -> str:
  for name in (stem, stem + ".gz"):
    path = os.path.join(data_dir, name)
    if os.path.exists(path):
      return path
  raise FileNotFoundError(f"{stem}[.gz] not in {data_dir}")


def _read_idx(path: str) -> np.ndarray:
  opener = gzip.open if path.endswith(".gz") else open
  with opener(path, "rb") as f:
    raw = f.read()
  ndim = raw[3]
  dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
  return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def train_images(data_dir: str, shape: tuple[int, int, int]) -> torch.Tensor:
  """uint8 [N, C, H, W] on torch's default device: Fashion-MNIST's training images from
  the IDX folder when it has that shape, else 60,000 random images of `shape` (C, H, W),
  seed 0."""
  device = torch.empty(0).device  # The default device (torch.set_default_device).
  if data_dir and shape[0] == 1:
    x = _read_idx(_idx_path(data_dir, "train-images-idx3-ubyte"))
    if x.shape[1:] == shape[1:]:
      return torch.from_numpy(x.copy()).unsqueeze(1).to(device)
  rng = np.random.default_rng(0)
  return torch.from_numpy(rng.integers(0, 256, (60000,) + shape, np.uint8)).to(device)


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
  """uint8 -> float32 in [-1, 1], the values of ToTensor() then Normalize(0.5, 0.5)."""
  return (x.float() / 255.0 - 0.5) / 0.5


class PreloadedBatches:
  """Batches of a preloaded float tensor, in a fresh random order every epoch (the last
  batch of an epoch may be short, as DataLoader(drop_last=False))."""

  def __init__(self, data: torch.Tensor, batch_size: int):
    self.data, self.batch_size = data, batch_size
    self.order, self.pos = torch.randperm(len(data)), 0

  def __next__(self) -> torch.Tensor:
    if self.pos >= len(self.data):
      self.order, self.pos = torch.randperm(len(self.data)), 0
    idx = self.order[self.pos:self.pos + self.batch_size]
    self.pos += self.batch_size
    return self.data.index_select(0, idx)


class PerExampleFashionMNIST(torch.utils.data.Dataset):
  """What torchvision's FashionMNIST(transform=Compose([Resize(28), ToTensor(),
  Normalize([0.5], [0.5])])) does per example, without torchvision: a PIL image of the
  uint8 array (mode L), Resize(28), which torchvision returns unchanged when the image
  already has that size, ToTensor (HWC uint8 -> CHW float / 255), Normalize."""

  def __init__(self, images: np.ndarray):
    from PIL import Image
    self.images, self.image = torch.from_numpy(images.copy()), Image

  def __len__(self) -> int:
    return len(self.images)

  def __getitem__(self, index: int):
    pic = self.image.fromarray(self.images[index].numpy(), mode="L")
    if pic.size != (28, 28):
      pic = pic.resize((28, 28), self.image.BILINEAR)
    img = torch.from_numpy(np.array(pic, np.uint8, copy=True))
    img = img.view(pic.size[1], pic.size[0], 1).permute((2, 0, 1)).contiguous()
    img = img.to(dtype=torch.get_default_dtype()).div(255)
    return (img - 0.5) / 0.5, 0


# --------------------------------------------------------------------------- gan.py
def mlp_generator() -> nn.Module:
  def block(i, o, normalize=True):
    layers = [nn.Linear(i, o)]
    if normalize:
      layers.append(nn.BatchNorm1d(o, 0.8))  # gan.py passes 0.8 as eps.
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return layers
  return nn.Sequential(*block(LATENT, 128, normalize=False), *block(128, 256),
                       *block(256, 512), *block(512, 1024), nn.Linear(1024, 784), nn.Tanh())


def mlp_discriminator(sigmoid: bool) -> nn.Module:
  layers = [nn.Flatten(), nn.Linear(784, 512), nn.LeakyReLU(0.2, inplace=True), nn.Linear(512, 256),
            nn.LeakyReLU(0.2, inplace=True), nn.Linear(256, 1)]
  return nn.Sequential(*layers, *([nn.Sigmoid()] if sigmoid else []))


def adam(params, **kw):
  return torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999), **kw)


def published_loop(args):
  """gan.py's loop; returns (step function, pipeline description)."""
  try:
    import torchvision.transforms as transforms
    from torchvision import datasets
    from torchvision.utils import save_image
  except Exception as e:  # noqa: BLE001 (a broken torchvision raises RuntimeError)
    datasets = None
    why = f"{type(e).__name__}: {str(e)[:80]}"
  workdir = tempfile.mkdtemp(prefix="torch_published_")
  if datasets is not None:
    raw = os.path.join(workdir, "FashionMNIST", "raw")
    os.makedirs(raw)
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
      src = _idx_path(args.data_dir, stem)
      with (gzip.open(src) if src.endswith(".gz") else open(src, "rb")) as f, \
          open(os.path.join(raw, stem), "wb") as g:
        shutil.copyfileobj(f, g)
    dataset = datasets.FashionMNIST(
        workdir, train=True, download=False,
        transform=transforms.Compose([transforms.Resize(28), transforms.ToTensor(),
                                      transforms.Normalize([0.5], [0.5])]))
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True)
    pipeline = "torchvision FashionMNIST + DataLoader (as published)"

    def batches():
      while True:
        for imgs, _ in loader:
          yield imgs
  else:  # torchvision's FashionMNIST + transforms, re-created per example.
    dataset = PerExampleFashionMNIST(_read_idx(_idx_path(args.data_dir,
                                                         "train-images-idx3-ubyte")))
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True)
    pipeline = ("PIL per example + DataLoader, torchvision's FashionMNIST and transforms "
                f"re-created (torchvision does not import: {why})")
    save_image = None

    def batches():
      while True:
        for imgs, _ in loader:
          yield imgs

  generator, discriminator = mlp_generator(), mlp_discriminator(sigmoid=True)
  loss = nn.BCELoss()
  opt_g, opt_d = adam(generator.parameters()), adam(discriminator.parameters())
  it = batches()
  count = [0]

  def step():
    imgs = next(it)
    valid = torch.FloatTensor(imgs.size(0), 1).fill_(1.0)
    fake = torch.FloatTensor(imgs.size(0), 1).fill_(0.0)
    real = imgs.type(torch.FloatTensor)
    opt_g.zero_grad()
    z = torch.FloatTensor(np.random.normal(0, 1, (imgs.shape[0], LATENT)))
    gen = generator(z).view(imgs.size(0), 1, 28, 28)
    g_loss = loss(discriminator(gen), valid)
    g_loss.backward()
    opt_g.step()
    opt_d.zero_grad()
    d_loss = (loss(discriminator(real), valid) + loss(discriminator(gen.detach()), fake)) / 2
    d_loss.backward()
    opt_d.step()
    print("[Batch %d] [D loss: %f] [G loss: %f]" % (count[0], d_loss.item(), g_loss.item()),
          file=sys.stderr)
    if save_image is not None and count[0] % 400 == 0:
      save_image(gen.data[:25], os.path.join(workdir, "%d.png" % count[0]), nrow=5, normalize=True)
    count[0] += 1
  return step, pipeline, lambda: shutil.rmtree(workdir, ignore_errors=True)


def tuned_loop(args):
  data = to_unit_range(train_images(args.data_dir, (1, 28, 28))).view(-1, 784)
  pre = PreloadedBatches(data.contiguous(), args.batch_size)
  generator, discriminator = mlp_generator(), mlp_discriminator(sigmoid=False)
  d_params = list(discriminator.parameters())
  loss = nn.BCEWithLogitsLoss()
  opt_g = adam(generator.parameters(), fused=True)
  opt_d = adam(d_params, fused=True)

  def step():
    real = next(pre)
    b = real.shape[0]
    ones, zeros = torch.ones(b, 1), torch.zeros(b, 1)
    opt_g.zero_grad()
    gen = generator(torch.randn(b, LATENT))
    for p in d_params:
      p.requires_grad_(False)
    loss(discriminator(gen), ones).backward()
    for p in d_params:
      p.requires_grad_(True)
    opt_g.step()
    opt_d.zero_grad()
    out = discriminator(torch.cat([real, gen.detach()]))
    ((loss(out[:b], ones) + loss(out[b:], zeros)) / 2).backward()
    opt_d.step()
  return step, "preloaded tensor, randperm batches", lambda: None


# --------------------------------------------------------------------------- DCGAN
def dcgan_stages(side: int) -> tuple[int, int]:
  """jaxgan.models.dcgan.stages: halve the side while even and above 7."""
  base, n = side, 0
  while base % 2 == 0 and base > 7:
    base, n = base // 2, n + 1
  return base, n


class DCGANGenerator(nn.Module):
  def __init__(self, shape, width=64):
    super().__init__()
    c, side, _ = shape
    self.base, n = dcgan_stages(side)
    self.ch = width * 2 ** (n - 1)
    self.fc = nn.Linear(LATENT, self.base * self.base * self.ch)
    self.bn = nn.BatchNorm1d(self.base * self.base * self.ch)
    layers, ch = [], self.ch
    for _ in range(n - 1):
      layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1), nn.BatchNorm2d(ch // 2),
                 nn.ReLU(True)]
      ch //= 2
    layers += [nn.ConvTranspose2d(ch, c, 4, 2, 1), nn.Tanh()]
    self.net = nn.Sequential(*layers)
    self.memory_format = torch.contiguous_format

  def forward(self, z):
    x = torch.relu(self.bn(self.fc(z))).view(-1, self.ch, self.base, self.base)
    return self.net(x.contiguous(memory_format=self.memory_format))


class DCGANDiscriminator(nn.Module):
  def __init__(self, shape, width=64):
    super().__init__()
    c, side, _ = shape
    base, n = dcgan_stages(side)
    layers, ch, cin = [], width, c
    for i in range(n):
      layers.append(nn.Conv2d(cin, ch, 4, 2, 1))
      if i > 0:
        layers.append(nn.BatchNorm2d(ch))
      layers.append(nn.LeakyReLU(0.2, True))
      cin, ch = ch, ch * 2
    self.net = nn.Sequential(*layers, nn.Flatten())
    self.fc = nn.Linear(base * base * cin, 1)

  def forward(self, x):
    return self.fc(self.net(x))[:, 0]


def _init_normal(module):
  if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
    nn.init.normal_(module.weight, 0.0, 0.02)
    nn.init.zeros_(module.bias)


def dcgan_loop(args, shape, memory_format):
  images = train_images(args.data_dir, shape)
  data = to_unit_range(images).contiguous(memory_format=memory_format)
  pre = PreloadedBatches(data, args.batch_size)
  generator, discriminator = DCGANGenerator(shape), DCGANDiscriminator(shape)
  generator.memory_format = memory_format
  for net in (generator, discriminator):
    net.apply(_init_normal)
    net.to(memory_format=memory_format)
  loss = nn.BCEWithLogitsLoss()
  opt_g, opt_d = adam(generator.parameters()), adam(discriminator.parameters())

  d_params = list(discriminator.parameters())

  def step():
    real = next(pre)
    b = real.shape[0]
    ones, zeros = torch.ones(b), torch.zeros(b)
    opt_d.zero_grad()
    with torch.no_grad():
      fake = generator(torch.randn(b, LATENT))
    d_loss = (loss(discriminator(real), ones) + loss(discriminator(fake), zeros)) / 2
    d_loss.backward()
    opt_d.step()
    opt_g.zero_grad()
    for p in d_params:
      p.requires_grad_(False)
    loss(discriminator(generator(torch.randn(b, LATENT))), ones).backward()
    for p in d_params:
      p.requires_grad_(True)
    opt_g.step()
  source = "Fashion-MNIST" if args.data_dir and shape[0] == 1 else "random uint8"
  return step, f"preloaded tensor ({source}), randperm batches", lambda: None


# --------------------------------------------------------------------------- timing
def time_loop(step, steps: int, repeats: int, warmup: int,
              budget_s: float = float("inf")) -> list[float]:
  """Iterations/s of each repeat of `steps` iterations (a repeat ends early after
  budget_s seconds: the short trials of the settings)."""
  for _ in range(warmup):
    step()
  _synchronize()
  rates = []
  for _ in range(repeats):
    t = time.perf_counter()
    n = 0
    while n < steps and (n < 2 or time.perf_counter() - t < budget_s):
      step()
      n += 1
    _synchronize()  # A GPU runs the queued kernels asynchronously: wait for them.
    rates.append(n / (time.perf_counter() - t))
  return rates


def _synchronize() -> None:
  if torch.empty(0).device.type == "cuda":
    torch.cuda.synchronize()


def make_loop(args, memory_format=None):
  if args.loop == "published":
    return published_loop(args)
  if args.loop == "tuned":
    return tuned_loop(args)
  shape = (1, 28, 28) if args.loop == "dcgan28" else (3, 32, 32)
  return dcgan_loop(args, shape, memory_format)


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--loop", choices=LOOPS, required=True)
  p.add_argument("--data_dir", default="", help="Fashion-MNIST IDX folder.")
  p.add_argument("--steps", type=int, default=100, help="Iterations per timed repeat.")
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument("--warmup", type=int, default=5)
  p.add_argument("--batch_size", type=int, default=64)
  p.add_argument("--memory_format", choices=("auto", "nchw", "channels_last"),
                 default="auto", help="DCGAN loops only.")
  p.add_argument("--threads", type=int, default=0,
                 help="torch.set_num_threads; 0: the faster of 1 and torch's default (one "
                      "per core) over a short trial (on a CPU shared with other jobs "
                      "torch's OpenMP threads can run ~10x slower than one thread).")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--device", default="auto",
                 help="cpu, cuda, or auto (cuda when torch sees a GPU); not the "
                      "published loop, which runs on the CPU.")
  args = p.parse_args()
  device = args.device
  if device == "auto":
    device = "cuda" if torch.cuda.is_available() else "cpu"
  if args.loop == "published":
    device = "cpu"
  torch.set_default_device(device)
  if args.loop in ("published", "tuned") and not args.data_dir:
    p.error(f"--loop={args.loop} needs --data_dir (a Fashion-MNIST IDX folder)")
  torch.manual_seed(args.seed)
  np.random.seed(args.seed)
  formats = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
  if not args.loop.startswith("dcgan"):
    format_names = [None]
  else:
    format_names = list(formats) if args.memory_format == "auto" else [args.memory_format]
  default_threads = torch.get_num_threads()
  thread_counts = [args.threads] if args.threads else sorted({1, default_threads})
  loops = {}
  candidates = [(f, t) for f in format_names for t in thread_counts]
  trial = {}
  if len(candidates) > 1:  # Short trials, alternating; the fastest setting is timed.
    for r in range(2):
      for f, t in candidates if r == 0 else candidates[::-1]:
        if f not in loops:
          loops[f] = make_loop(args, formats.get(f))
        torch.set_num_threads(t)
        rate = max(time_loop(loops[f][0], max(2, args.steps // 4), 1,
                              2 if r else args.warmup, budget_s=3.0))
        trial[f"{f or 'default'}/{t}"] = max(rate, trial.get(f"{f or 'default'}/{t}", 0))
    memory_format, threads = max(candidates, key=lambda c: trial[f"{c[0] or 'default'}/{c[1]}"])
  else:
    memory_format, threads = candidates[0]
  torch.set_num_threads(threads)
  if memory_format not in loops:
    loops[memory_format] = make_loop(args, formats.get(memory_format))
  for f, (_, _, cleanup) in loops.items():
    if f != memory_format:
      cleanup()
  step, pipeline, cleanup = loops[memory_format]
  try:
    rates = time_loop(step, args.steps, args.repeats, args.warmup)
  finally:
    cleanup()
  print(json.dumps({
      "loop": args.loop, "it_per_s": round(statistics.median(rates), 2),
      "it_per_s_repeats": [round(r, 2) for r in rates], "batch_size": args.batch_size,
      "torch": torch.__version__, "device": device, "threads": threads,
      **({"trial_it_per_s": {k: round(v, 2) for k, v in trial.items()}} if trial else {}),
      "pipeline": pipeline, **({"memory_format": memory_format} if memory_format else {}),
  }), flush=True)


if __name__ == "__main__":
  main()
