"""The FID Inception network (pytorch-fid's `InceptionV3` for FID) in Flax, and its weights.

    extractor = InceptionExtractor.from_file("pt_inception-2015-12-05-6726825d.pth")
    features, probs = extract(extractor, images)   # jaxgan.eval.features.extract

Every published GAN FID (StudioGAN, mimicry, DiffAugment, StyleGAN2-ADA) is computed on the
2015 TensorFlow Inception network, in practice through pytorch-fid's port of it (weights
`pt_inception-2015-12-05-6726825d.pth`, also torch-fidelity's). This module computes what
pytorch-fid 0.3.0's `InceptionV3([3])` (`use_fid_inception=True`, eval mode) computes:

  * input [B, H, W, C] in [0, 1], C = 1 (repeated to 3 channels, as an 'L' image
    converted to 'RGB') or 3, resized to 299x299 as `F.interpolate(x, (299, 299),
    mode="bilinear", align_corners=False)` (no antialiasing, also when shrinking:
    `torch_bilinear_matrix`), then scaled to [-1, 1];
  * torchvision's Inception v3 stem and blocks with pytorch-fid's patches: FIDInceptionA
    and C and E_1 average-pool without counting the padding (TensorFlow's pool), E_2
    (Mixed_7c) max-pools; every convolution is bias-free and followed by BatchNorm in
    inference (eps 1e-3, the file's running statistics) and ReLU;
  * features: the 2048-d global average pool after Mixed_7c (pool3, FID's features);
  * probs: softmax of the file's `fc` layer (2048 -> 1008, the TensorFlow graph's 1008
    classes) on pool3, for the Inception Score. pytorch-fid's InceptionV3 stops at pool3;
    its weights file holds `fc`, which `fid_inception_v3()` loads into torchvision's
    Inception3, so these logits are that model's `fc(pool3)`.

Weights are read from the .pth file itself (jaxgan.eval.torch_pickle: no torch needed).
The file's sha256 is checked against the hash in its name as torch hub does (the hex
digits after the last '-' before the extension are a prefix of the sha256); a mismatch is
refused; a name without a hash loads with `NonStandardWeights` warning that the FID is
not the standard one (random-weight test files load this way). Keys or shapes other than
the FID Inception's are refused, naming the first that differs.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import warnings
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.errors import EvalError

STANDARD_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/"
                   f"fid_weights/{STANDARD_FILE}")
RESIZE = 299
FEATURE_DIM = 2048
NUM_CLASSES = 1008
BN_EPS = 1e-3  # torchvision's BasicConv2d.
# torch hub's check_hash: the hex digits between a '-' and a '.' of the file's name.
HASH_IN_NAME = re.compile(r"-([a-f0-9]*)\.")
# Full float32 products where the default is lower (TF32 on GPU, bf16 passes on TPU):
# equality with pytorch-fid's float32 CPU numbers needs them.
HIGHEST = jax.lax.Precision.HIGHEST


class NonStandardWeights(UserWarning):
  """The weights file is not pytorch-fid's (no hash in its name): its FID is not
  comparable with published FIDs."""


# --------------------------------------------------------------------------- network
def torch_bilinear_matrix(size_in: int, size_out: int) -> np.ndarray:
  """[size_out, size_in] float32 weights of torch's 1-d bilinear interpolation of a float32
  tensor with align_corners=False, the size given (aten's upsample_bilinear2d CPU kernel,
  reproduced to the bit): scale = float32(in) / float32(out); the source coordinate
  scale * (dst + 0.5) - 0.5 computed in double (dst + 0.5 is a double there), rounded to
  float32 and clamped at 0; its floor and the next pixel (clamped to the last one) with
  weights 1 - lambda and lambda. No antialiasing, as torch without antialias=True."""
  scale = np.float32(size_in) / np.float32(size_out)
  m = np.zeros((size_out, size_in), np.float32)
  for dst in range(size_out):
    src = max(np.float32(float(scale) * (dst + 0.5) - 0.5), np.float32(0))
    i0 = min(int(np.floor(src)), size_in - 1)
    i1 = i0 + (1 if i0 < size_in - 1 else 0)
    lam1 = np.float32(min(max(src - np.float32(i0), np.float32(0)), np.float32(1)))
    m[dst, i0] += np.float32(1) - lam1
    m[dst, i1] += lam1
  return m


def resize_like_torch(images: jax.Array, size: int = RESIZE) -> jax.Array:
  """[B, H, W, C] -> [B, size, size, C] as F.interpolate(bilinear, align_corners=False)."""
  _, h, w, _ = images.shape
  if (h, w) == (size, size):
    return images
  rows = jnp.asarray(torch_bilinear_matrix(h, size))
  cols = jnp.asarray(torch_bilinear_matrix(w, size))
  x = jnp.einsum("oh,bhwc->bowc", rows, images, precision=HIGHEST)
  return jnp.einsum("pw,bowc->bopc", cols, x, precision=HIGHEST)


class BasicConv(nn.Module):
  """torchvision's BasicConv2d: bias-free conv, BatchNorm (inference, eps 1e-3), ReLU.
  Submodules `conv` and `bn` hold the file's `<name>.conv.*` and `<name>.bn.*`."""

  features: int
  kernel: tuple[int, int]
  stride: int = 1
  padding: tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    ph, pw = self.padding
    x = nn.Conv(self.features, self.kernel, strides=self.stride,
                padding=((ph, ph), (pw, pw)), use_bias=False, precision=HIGHEST,
                name="conv")(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=BN_EPS, name="bn")(x)
    return nn.relu(x)


def _conv(features, kernel, stride=1, padding=(0, 0), name=None):
  kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
  padding = (padding, padding) if isinstance(padding, int) else padding
  return BasicConv(features, kernel, stride, padding, name=name)


def _avg_pool_no_pad(x):  # pytorch-fid's patch: TensorFlow's pool ignores the padding.
  return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


def _max_pool(x, stride, pad=0):
  return nn.max_pool(x, (3, 3), (stride, stride), ((pad, pad), (pad, pad)))


class FIDInceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = _conv(64, 1, name="branch1x1")(x)
    b5 = _conv(48, 1, name="branch5x5_1")(x)
    b5 = _conv(64, 5, padding=2, name="branch5x5_2")(b5)
    b3 = _conv(64, 1, name="branch3x3dbl_1")(x)
    b3 = _conv(96, 3, padding=1, name="branch3x3dbl_2")(b3)
    b3 = _conv(96, 3, padding=1, name="branch3x3dbl_3")(b3)
    bp = _conv(self.pool_features, 1, name="branch_pool")(_avg_pool_no_pad(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):  # torchvision's, unpatched (Mixed_6a).

  @nn.compact
  def __call__(self, x):
    b3 = _conv(384, 3, stride=2, name="branch3x3")(x)
    bd = _conv(64, 1, name="branch3x3dbl_1")(x)
    bd = _conv(96, 3, padding=1, name="branch3x3dbl_2")(bd)
    bd = _conv(96, 3, stride=2, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, _max_pool(x, 2)], axis=-1)


class FIDInceptionC(nn.Module):
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    b1 = _conv(192, 1, name="branch1x1")(x)
    b7 = _conv(c7, 1, name="branch7x7_1")(x)
    b7 = _conv(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
    b7 = _conv(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
    bd = _conv(c7, 1, name="branch7x7dbl_1")(x)
    bd = _conv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
    bd = _conv(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
    bd = _conv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
    bd = _conv(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
    bp = _conv(192, 1, name="branch_pool")(_avg_pool_no_pad(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):  # torchvision's, unpatched (Mixed_7a).

  @nn.compact
  def __call__(self, x):
    b3 = _conv(192, 1, name="branch3x3_1")(x)
    b3 = _conv(320, 3, stride=2, name="branch3x3_2")(b3)
    b7 = _conv(192, 1, name="branch7x7x3_1")(x)
    b7 = _conv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = _conv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = _conv(192, 3, stride=2, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, _max_pool(x, 2)], axis=-1)


class FIDInceptionE(nn.Module):
  """E_1 (Mixed_7b): average pool without the padding; E_2 (Mixed_7c, max_pool=True):
  pytorch-fid's max pool, which the TensorFlow graph has there."""

  max_pool: bool = False

  @nn.compact
  def __call__(self, x):
    b1 = _conv(320, 1, name="branch1x1")(x)
    b3 = _conv(384, 1, name="branch3x3_1")(x)
    b3 = jnp.concatenate([_conv(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
                          _conv(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)],
                         axis=-1)
    bd = _conv(448, 1, name="branch3x3dbl_1")(x)
    bd = _conv(384, 3, padding=1, name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate([_conv(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
                          _conv(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)],
                         axis=-1)
    pooled = _max_pool(x, 1, pad=1) if self.max_pool else _avg_pool_no_pad(x)
    bp = _conv(192, 1, name="branch_pool")(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FIDInceptionV3(nn.Module):
  """images [B, H, W, 1 or 3] in [0, 1] -> (pool3 features [B, 2048], logits [B, 1008]).
  Module names are the weights file's (Conv2d_1a_3x3, Mixed_5b, ..., fc)."""

  @nn.compact
  def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    x = images.astype(jnp.float32)
    if x.shape[-1] == 1:
      x = jnp.repeat(x, 3, axis=-1)
    x = resize_like_torch(x)
    x = 2.0 * x - 1.0
    x = _conv(32, 3, stride=2, name="Conv2d_1a_3x3")(x)
    x = _conv(32, 3, name="Conv2d_2a_3x3")(x)
    x = _conv(64, 3, padding=1, name="Conv2d_2b_3x3")(x)
    x = _max_pool(x, 2)
    x = _conv(80, 1, name="Conv2d_3b_1x1")(x)
    x = _conv(192, 3, name="Conv2d_4a_3x3")(x)
    x = _max_pool(x, 2)
    x = FIDInceptionA(32, name="Mixed_5b")(x)
    x = FIDInceptionA(64, name="Mixed_5c")(x)
    x = FIDInceptionA(64, name="Mixed_5d")(x)
    x = InceptionB(name="Mixed_6a")(x)
    x = FIDInceptionC(128, name="Mixed_6b")(x)
    x = FIDInceptionC(160, name="Mixed_6c")(x)
    x = FIDInceptionC(160, name="Mixed_6d")(x)
    x = FIDInceptionC(192, name="Mixed_6e")(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = FIDInceptionE(name="Mixed_7b")(x)
    x = FIDInceptionE(max_pool=True, name="Mixed_7c")(x)
    features = jnp.mean(x, axis=(1, 2))
    logits = nn.Dense(NUM_CLASSES, precision=HIGHEST, name="fc")(features)
    return features, logits


# --------------------------------------------------------------------------- weights
# (collection, leaf) of each torch state-dict suffix, and how its array is laid out.
_LEAVES = {
    "conv.weight": ("params", "conv", "kernel"),        # OIHW -> HWIO
    "bn.weight": ("params", "bn", "scale"),
    "bn.bias": ("params", "bn", "bias"),
    "bn.running_mean": ("batch_stats", "bn", "mean"),
    "bn.running_var": ("batch_stats", "bn", "var"),
}
# BatchNorm's step counter: written by torch >= 0.4.1, unused in inference; files may
# hold it or not (torch's own loader fills it in for older files).
OPTIONAL_SUFFIX = ".num_batches_tracked"


@functools.lru_cache(maxsize=1)
def expected_shapes() -> dict[str, tuple[int, ...]]:
  """{torch key: torch shape} of every tensor the network needs, in the network's order."""
  shapes = jax.eval_shape(FIDInceptionV3().init, jax.random.PRNGKey(0),
                          jax.ShapeDtypeStruct((1, RESIZE, RESIZE, 3), jnp.float32))
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(dict(shapes))[0]:
    names = [p.key for p in path]
    collection, module, leaf_name = names[0], names[1:-1], names[-1]
    shape = tuple(leaf.shape)
    if module[-1] == "fc":
      key = ".".join(module) + (".weight" if leaf_name == "kernel" else ".bias")
      shape = shape[::-1] if leaf_name == "kernel" else shape
    else:
      suffix = next(s for s, v in _LEAVES.items()
                    if v == (collection, module[-1], leaf_name))
      key = ".".join(module[:-1]) + "." + suffix
      if suffix == "conv.weight":
        shape = (shape[3], shape[2], shape[0], shape[1])
    out[key] = shape
  return out


def variables_from_state_dict(arrays: dict[str, np.ndarray], source: str) -> dict[str, Any]:
  """Flax variables of FIDInceptionV3 from a pytorch-fid state dict; EvalError naming
  the first key that is missing, unexpected, or of another shape."""
  expected = expected_shapes()
  for key, shape in expected.items():
    if key not in arrays:
      raise EvalError(f"{source}: key {key!r} of the FID Inception network is missing; "
                      "expected pytorch-fid's weights (pt_inception-2015-12-05-*.pth).")
    if tuple(arrays[key].shape) != shape:
      raise EvalError(f"{source}: {key!r} has shape {list(arrays[key].shape)}; the FID "
                      f"Inception network's is {list(shape)}.")
  for key in arrays:
    counter_of = key[:-len(OPTIONAL_SUFFIX)] + ".weight"  # The BatchNorm it counts for.
    if key not in expected and not (key.endswith(".bn" + OPTIONAL_SUFFIX)
                                    and counter_of in expected):
      raise EvalError(f"{source}: key {key!r} is not part of the FID Inception network; "
                      "expected pytorch-fid's weights (pt_inception-2015-12-05-*.pth).")
  variables: dict[str, Any] = {"params": {}, "batch_stats": {}}
  for key in expected:
    value = np.asarray(arrays[key], np.float32)
    parts = key.split(".")
    if parts[0] == "fc":
      node = variables["params"].setdefault("fc", {})
      if parts[1] == "weight":
        node["kernel"] = value.T
      else:
        node["bias"] = value
      continue
    collection, sub, leaf = _LEAVES[".".join(parts[-2:])]
    if leaf == "kernel":
      value = np.transpose(value, (2, 3, 1, 0))
    node = variables[collection]
    for name in parts[:-2] + [sub]:
      node = node.setdefault(name, {})
    node[leaf] = value
  return variables


def sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def check_file(path: str, flag: str = "--inception_weights") -> tuple[str, bool]:
  """(sha256, standard) of a weights file: standard when the hash in its name (torch
  hub's rule) is a prefix of its sha256 and the name is pytorch-fid's. A hash in the
  name that does not match is refused; no hash warns (NonStandardWeights)."""
  if not os.path.isfile(path):
    raise EvalError(f"{flag}={path!r}: no such file; expected pytorch-fid's weights "
                    f"{STANDARD_FILE} ({FID_WEIGHTS_URL}).")
  digest = sha256(path)
  match = HASH_IN_NAME.search(os.path.basename(path))
  if match and match.group(1):
    if not digest.startswith(match.group(1)):
      raise EvalError(f"{flag}={path!r}: its sha256 {digest[:16]}... does not start with "
                      f"the {match.group(1)!r} in its name: the file is damaged or not "
                      "the one its name says (download it again).")
    return digest, os.path.basename(path) == STANDARD_FILE
  warnings.warn(f"{flag}={path!r} has no hash in its name: loaded without a check, and "
                f"FIDs on it are not the standard FID (that needs {STANDARD_FILE}).",
                NonStandardWeights, stacklevel=2)
  return digest, False


# --------------------------------------------------------------------------- extractor
@functools.partial(jax.jit, static_argnums=0)
def _apply(module: FIDInceptionV3, variables: Any, images: jax.Array):
  features, logits = module.apply(variables, images)
  return features, jax.nn.softmax(logits, axis=-1)


class InceptionExtractor:
  """The FID Inception network as a `jaxgan.eval.features.FeatureExtractor`: any image
  size (resized to 299), 1 or 3 channels, any dataset."""

  dataset = None
  image_shape = None  # Any H x W; 1 or 3 channels.
  num_classes = NUM_CLASSES
  feature_dim = FEATURE_DIM
  accuracy = None
  # Images per jitted batch (pytorch-fid's default --batch-size): 299x299 activations of
  # a batch of 50 take ~1.5 GB.
  batch_size = 50

  def __init__(self, variables: Any, sha256_hex: str, standard: bool, source: str):
    self.variables = jax.device_put(variables)
    self.sha256, self.standard, self.source = sha256_hex, standard, source
    self.name = f"inception:{os.path.basename(source)}"
    self._module = FIDInceptionV3()

  @classmethod
  def from_file(cls, path: str, flag: str = "--inception_weights") -> "InceptionExtractor":
    """Checks the name's hash (check_file), reads the file without torch and checks
    its keys and shapes; EvalError on any mismatch."""
    from jaxgan.eval import torch_pickle
    digest, standard = check_file(path, flag)
    arrays = torch_pickle.read_state_dict(path)
    variables = variables_from_state_dict(arrays, f"{flag}={path!r}")
    return cls(variables, digest, standard, path)

  def apply(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """images [B, H, W, 1|3] float in [0, 1] -> (pool3 [B, 2048], softmax [B, 1008])."""
    return _apply(self._module, self.variables, images)

  def protocol(self) -> dict[str, Any]:
    """What a result computed on these features states about them."""
    return {"network": "pytorch-fid InceptionV3 (FID Inception, pool3)",
            "weights": os.path.basename(self.source), "weights_sha256": self.sha256,
            "standard_weights": self.standard,
            "resize": f"bilinear to {RESIZE}x{RESIZE} (torch align_corners=False), "
                      "grey repeated to RGB, scaled to [-1, 1]"}
