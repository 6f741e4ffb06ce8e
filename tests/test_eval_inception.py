"""The FID Inception network (jaxgan/eval/inception.py) equals pytorch-fid 0.3.0's, its
weights are read from torch.save files without torch (jaxgan/eval/torch_pickle.py), and
the statistics files and FID (jaxgan/eval/stats.py, `python -m jaxgan.evaluate
--feature_network=inception`) equal pytorch-fid's.

The reference is pytorch-fid's own, unmodified code (torch CPU build, a test
requirement: requirements-test.txt). The real weights file is not downloaded: the
network gets random weights, every BatchNorm's running statistics randomized (not
0/1), written by torch.save in the format of pytorch-fid's file, and pytorch-fid's
`load_state_dict_from_url` is pointed at that file. Inputs are tiny (32x32 RGB, 28x28
grey, one 299x299 image): every size costs a 299x299 forward pass per image.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import sys
import types
import warnings

import numpy as np
import pytest

import toolkit
from jaxgan.errors import EXIT_USAGE, EvalError
from jaxgan.eval import features as features_lib
from jaxgan.eval import inception, stats, torch_pickle

TOLERANCE = 1e-4  # float32 features: max |ours - theirs| / max |theirs|.


def import_pytorch_fid():
  """pytorch_fid.inception and pytorch_fid.fid_score, with torchvision's Python sources
  but without torchvision/__init__.py.

  pytorch-fid needs torchvision only for `torchvision.models.inception` (its FID blocks
  subclass InceptionA/C/E; `_inception_v3` calls `torchvision.models.inception_v3`) and
  `torchvision.__version__`. The torchvision wheel that matches the CPU build of torch
  on PyPI is built for CUDA: its __init__ registers fake kernels for its compiled ops
  (`torchvision::nms`), whose library links CUDA libraries the CPU torch lacks, and fails
  ("operator torchvision::nms does not exist"); there is no CPU torchvision wheel on
  PyPI. So `torchvision` is registered as a bare package over the installed folder
  (its version read from version.py), and its modules import from there as usual; no
  compiled torchvision op is used by the Inception network."""
  if "torchvision" not in sys.modules:
    spec = importlib.util.find_spec("torchvision")
    folder = spec.submodule_search_locations[0]
    with open(os.path.join(folder, "version.py")) as f:
      version = re.search(r"__version__ = '([^']+)'", f.read()).group(1)
    package = types.ModuleType("torchvision")
    package.__path__, package.__version__ = [folder], version
    package.__file__ = os.path.join(folder, "__init__.py")
    sys.modules["torchvision"] = package
  import pytorch_fid.fid_score as fid_score
  import pytorch_fid.inception as fid_inception
  return fid_inception, fid_score


@contextlib.contextmanager
def pytorch_fid_loads(reference):
  """pytorch-fid's InceptionV3() reads the random weights instead of downloading."""
  original = reference.fid_inception.load_state_dict_from_url
  reference.fid_inception.load_state_dict_from_url = (
      lambda url, **kw: reference.torch.load(reference.legacy))
  try:
    yield
  finally:
    reference.fid_inception.load_state_dict_from_url = original


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """(pytorch-fid module, fid_score, InceptionV3([3]), the fc layer, state dict, paths):
  the weights saved by torch in the legacy format (pytorch-fid's file's) and the zip
  format."""
  import torch
  fid_inception, fid_score = import_pytorch_fid()
  folder = tmp_path_factory.mktemp("weights")
  state = toolkit.random_inception_state_dict()
  legacy, zipped = str(folder / "random_inception.pth"), str(folder / "random_zip.pth")
  torch.save(state, legacy, _use_new_zipfile_serialization=False)
  torch.save(state, zipped)
  ref = types.SimpleNamespace(fid_inception=fid_inception, fid_score=fid_score,
                              state=state, legacy=legacy, zipped=zipped, torch=torch)
  with pytorch_fid_loads(ref):
    ref.model = fid_inception.InceptionV3([3]).eval()
    ref.fc = fid_inception.fid_inception_v3().eval().fc
  return ref


@pytest.fixture(scope="module")
def extractor(reference):
  with pytest.warns(inception.NonStandardWeights, match="no hash in its name"):
    return inception.InceptionExtractor.from_file(reference.legacy)


def torch_features(reference, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """pytorch-fid's pool3 features and softmax(fc) of uint8 [N, H, W, C] images, as its
  ImagePathDataset gives them (ToTensor: /255, NCHW; grey converted to RGB)."""
  torch = reference.torch
  x = torch.tensor(images.astype(np.float32) / 255.0).permute(0, 3, 1, 2)
  if x.shape[1] == 1:
    x = x.repeat(1, 3, 1, 1)
  with torch.no_grad():
    pool3 = reference.model(x)[0][:, :, 0, 0]
    probs = torch.softmax(reference.fc(pool3), dim=1)
  return pool3.numpy(), probs.numpy()


def relative_error(ours, theirs) -> float:
  return float(np.abs(np.asarray(ours) - theirs).max() / np.abs(theirs).max())


# --------------------------------------------------------------------------- file reading
def test_reads_both_torch_save_formats_exactly(reference, tmp_path):
  torch = reference.torch
  small = {"noncontiguous": torch.randn(4, 3).t(), "offset": torch.randn(10)[3:8],
           "scalar": torch.tensor(2.5, dtype=torch.float64), "long": torch.arange(6),
           "half": torch.randn(5).half(), "bool": torch.tensor([True, False])}
  for zip_format in (True, False):
    path = str(tmp_path / f"small_{zip_format}.pth")
    torch.save(small, path, _use_new_zipfile_serialization=zip_format)
    arrays = torch_pickle.read_state_dict(path)
    assert set(arrays) == set(small)
    for key, tensor in small.items():
      assert arrays[key].dtype == tensor.numpy().dtype, key
      np.testing.assert_array_equal(arrays[key], tensor.numpy(), err_msg=key)
  legacy = torch_pickle.read_state_dict(reference.legacy)
  zipped = torch_pickle.read_state_dict(reference.zipped)
  assert set(legacy) == set(zipped) == set(reference.state)
  for key, tensor in reference.state.items():
    np.testing.assert_array_equal(legacy[key], tensor.numpy(), err_msg=key)
    np.testing.assert_array_equal(zipped[key], tensor.numpy(), err_msg=key)


def test_refuses_what_is_not_a_state_dict_file(reference, tmp_path):
  torch = reference.torch
  text = tmp_path / "notes.pth"
  text.write_text("not a checkpoint")
  with pytest.raises(EvalError, match="not a readable torch.save file|magic"):
    torch_pickle.read_state_dict(str(text))
  truncated = tmp_path / "truncated.pth"
  torch.save({"w": torch.randn(100)}, str(truncated), _use_new_zipfile_serialization=False)
  truncated.write_bytes(truncated.read_bytes()[:-40])
  with pytest.raises(EvalError, match="ends early"):
    torch_pickle.read_state_dict(str(truncated))
  module = tmp_path / "module.pth"
  torch.save(torch.nn.Linear(2, 2), str(module))  # A pickled module runs its classes.
  with pytest.raises(EvalError, match="torch.nn.modules.linear.Linear"):
    torch_pickle.read_state_dict(str(module))


# --------------------------------------------------------------------------- the network
@pytest.mark.parametrize("shape", [(2, 32, 32, 3), (5, 28, 28, 1), (1, 299, 299, 3)],
                         ids=["rgb32_batch2", "grey28_batch5", "rgb299_batch1"])
def test_features_and_probs_equal_pytorch_fid(reference, extractor, shape):
  images = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
  theirs, their_probs = torch_features(reference, images)
  ours, our_probs = features_lib.extract(extractor, images)
  assert ours.shape == (shape[0], 2048) and our_probs.shape == (shape[0], 1008)
  assert np.abs(theirs).max() > 1 and theirs.std() > 0.1  # Not a vanished signal,
  assert their_probs.max() < 0.5  # nor a saturated softmax (one-hot probabilities).
  error = relative_error(ours, theirs)
  assert error < TOLERANCE, (shape, error)
  assert relative_error(our_probs, their_probs) < TOLERANCE, shape


def test_resize_is_torch_bilinear_without_antialiasing(reference):
  """Up (28 -> 299) and down (320 -> 299: torch does not antialias), row by row."""
  torch = reference.torch
  x = np.random.default_rng(3).random((1, 28, 320, 2)).astype(np.float32)
  theirs = torch.nn.functional.interpolate(
      torch.tensor(x).permute(0, 3, 1, 2), size=(299, 299), mode="bilinear",
      align_corners=False).permute(0, 2, 3, 1).numpy()
  assert relative_error(inception.resize_like_torch(x), theirs) < 1e-6


# --------------------------------------------------------------------------- weights
def test_weights_hash_in_the_name_is_checked_as_torch_hub(reference, tmp_path):
  digest = inception.sha256(reference.legacy)
  good = tmp_path / f"random_inception-{digest[:8]}.pth"
  os.symlink(reference.legacy, good)
  with warnings.catch_warnings():
    warnings.simplefilter("error", inception.NonStandardWeights)
    assert inception.check_file(str(good)) == (digest, False)  # Not pytorch-fid's name.
  for name in ("random_inception-deadbeef.pth", inception.STANDARD_FILE):
    os.symlink(reference.legacy, tmp_path / name)
    with pytest.raises(EvalError, match="sha256 .* does not start with"):
      inception.check_file(str(tmp_path / name))
  with pytest.raises(EvalError, match="--inception_weights=.*no such file"):
    inception.check_file(str(tmp_path / "absent.pth"))


def test_weights_of_another_network_are_refused_naming_the_first_key(reference):
  arrays = torch_pickle.read_state_dict(reference.zipped)
  no_counters = {k: v for k, v in arrays.items() if "num_batches_tracked" not in k}
  inception.variables_from_state_dict(no_counters, "W")  # Older files lack them.
  missing = dict(arrays)
  del missing["Mixed_6c.branch7x7dbl_3.bn.running_var"]
  with pytest.raises(EvalError, match="'Mixed_6c.branch7x7dbl_3.bn.running_var' of the "
                     "FID Inception network is missing"):
    inception.variables_from_state_dict(missing, "W")
  reshaped = dict(arrays, **{"fc.weight": arrays["fc.weight"][:1000]})
  with pytest.raises(EvalError, match=r"'fc.weight' has shape \[1000, 2048\].*"
                     r"\[1008, 2048\]"):
    inception.variables_from_state_dict(reshaped, "W")
  extra = dict(arrays, **{"AuxLogits.fc.weight": arrays["fc.weight"]})
  with pytest.raises(EvalError, match="'AuxLogits.fc.weight' is not part of"):
    inception.variables_from_state_dict(extra, "W")


# --------------------------------------------------------------------------- FID
@pytest.mark.parametrize("num", [20, 600], ids=["fewer_samples_than_dims", "more"])
def test_fid_equals_pytorch_fid_calculate_frechet_distance(reference, num):
  """256-d features (scipy's sqrtm of a 2048-d product takes a minute on this CPU; the
  formula does not depend on the dimension), non-negative with dead dimensions as ReLU
  features have. With fewer samples than dimensions both covariances are singular:
  pytorch-fid's eps fallback (a 1e-6 ridge) is for a non-finite sqrtm, which scipy's
  sqrtm does not return for these, so its answer is the exact trace either way."""
  rng = np.random.default_rng(num)
  a = np.maximum(rng.normal(size=(num, 256)), 0).astype(np.float32)
  b = np.maximum(rng.normal(0.1, 1.2, size=(num, 256)), 0).astype(np.float32)
  a[:, :32] = b[:, :32] = 0
  mu_a, sigma_a = stats.feature_stats(a)
  mu_b, sigma_b = stats.feature_stats(b)
  # pytorch-fid's statistics: its activations array is float64 (np.empty((N, dims))).
  np.testing.assert_array_equal(mu_a, np.mean(a.astype(np.float64), axis=0))
  np.testing.assert_array_equal(sigma_a, np.cov(a.astype(np.float64), rowvar=False))
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Its sqrtm's disp=False and singular-matrix notes.
    theirs = reference.fid_score.calculate_frechet_distance(mu_a, sigma_a, mu_b, sigma_b)
  ours = stats.fid_from_stats(mu_a, sigma_a, mu_b, sigma_b)
  assert abs(ours - theirs) / theirs < 1e-6, (ours, theirs)
  # From B's features (the command's way: an N x N matrix when N <= dimensions).
  from_features = stats.fid_of_features(b, stats.Stats(mu_a, sigma_a, num, None))
  assert abs(from_features - theirs) / theirs < 1e-6, (from_features, theirs)


# --------------------------------------------------------------------------- the command
def evaluate(*args: str):
  return toolkit.run_command([sys.executable, "-m", "jaxgan.evaluate", *args], timeout=300)


def write_pngs(folder, images: np.ndarray) -> str:
  from PIL import Image
  os.makedirs(folder)
  for i, image in enumerate(images):
    Image.fromarray(image).save(os.path.join(folder, f"{i:03d}.png"))
  return str(folder)


def test_save_stats_then_ref_stats_give_pytorch_fids_fid(reference, tmp_path):
  """README's commands: A's statistics saved, B scored against them. A.npz equals what
  pytorch-fid's --save-stats (save_fid_stats: its own PNG reading, network and
  statistics) writes for the same images; --ref_stats takes that pytorch-fid file, and
  the FID is pytorch-fid's for A and B: its statistics of A and its activations of B,
  with Tr (Σ_A Σ_B)^{1/2} from the N_B x N_B matrix C_B Σ_A C_Bᵀ / (N_B - 1) (C_B: B's
  centred activations; the same nonzero eigenvalues as Σ_A Σ_B), because scipy's sqrtm
  in calculate_frechet_distance takes a minute at 2,048 dimensions on this CPU (its
  equality with this is test_fid_equals_pytorch_fid_calculate_frechet_distance's)."""
  rng = np.random.default_rng(5)
  a = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
  b = np.clip(a.astype(int) + rng.integers(-60, 60, a.shape), 0, 255).astype(np.uint8)
  np.save(tmp_path / "A.npy", a)
  np.save(tmp_path / "B.npy", np.transpose(b, (0, 3, 1, 2)))  # PyTorch's layout too.
  weights = f"--inception_weights={reference.legacy}"
  done = evaluate(f"--samples={tmp_path / 'A.npy'}", "--feature_network=inception",
                  weights, f"--save_stats={tmp_path / 'A.npz'}")
  assert done.returncode == 0, done.stderr[-3000:]
  assert "no hash in its name" in done.stderr  # The random weights' warning.

  fid_score, cpu = reference.fid_score, reference.torch.device("cpu")
  with pytorch_fid_loads(reference):  # pytorch-fid's --save-stats, as its main calls it.
    fid_score.save_fid_stats([write_pngs(tmp_path / "png_A", a),
                              str(tmp_path / "A_pytorch_fid.npz")], 4, cpu, 2048, 0)
  mu_a, sigma_a = fid_score.compute_statistics_of_path(
      str(tmp_path / "A_pytorch_fid.npz"), reference.model, 4, 2048, cpu, 0)
  with np.load(tmp_path / "A.npz") as saved:
    assert int(saved["num_samples"]) == 4
    assert relative_error(saved["mu"], mu_a) < TOLERANCE
    assert relative_error(saved["sigma"], sigma_a) < TOLERANCE

  done = evaluate(f"--samples={tmp_path / 'B.npy'}", "--feature_network=inception",
                  weights, f"--ref_stats={tmp_path / 'A_pytorch_fid.npz'}")
  assert done.returncode == 0, done.stderr[-3000:]
  with open(tmp_path / "B_eval.json") as f:
    results = json.load(f)
  folder = write_pngs(tmp_path / "png_B", b)
  act_b = fid_score.get_activations(
      sorted(os.path.join(folder, f) for f in os.listdir(folder)), reference.model, 4,
      2048, cpu, 0)
  centred = act_b - act_b.mean(axis=0)
  small = centred @ sigma_a @ centred.T / (len(b) - 1)
  expected = (np.sum((act_b.mean(axis=0) - mu_a) ** 2) + np.trace(sigma_a)
              + np.sum(centred ** 2) / (len(b) - 1)
              - 2 * np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(small), 0, None))))
  assert abs(results["fid"] - expected) / expected < TOLERANCE, (results["fid"], expected)
  assert results["num_samples"] == 4 and results["samples"]["layout"] == "NCHW"
  protocol = results["protocol"]
  assert protocol["weights_sha256"] == inception.sha256(reference.legacy)
  assert protocol["standard_weights"] is False and "299" in protocol["resize"]
  assert protocol["reference"]["stats"].endswith("A_pytorch_fid.npz")


def test_bad_statistics_files_are_refused_naming_the_flag(tmp_path):
  np.savez(tmp_path / "small.npz", mu=np.zeros(64), sigma=np.eye(64))
  with pytest.raises(EvalError, match=r"--ref_stats=.*small.npz.* holds mu \[64\].*"
                     r"expected mu \[2048\]"):
    stats.load_stats(str(tmp_path / "small.npz"), 2048)
  np.savez(tmp_path / "nan.npz", mu=np.full(8, np.nan), sigma=np.eye(8))
  with pytest.raises(EvalError, match="NaN or Inf"):
    stats.load_stats(str(tmp_path / "nan.npz"), 8)
  np.savez(tmp_path / "other.npz", mu=np.zeros(8), sigma=np.eye(8), weights_sha256="ab")
  with pytest.raises(EvalError, match="same network weights"):
    stats.load_stats(str(tmp_path / "other.npz"), 8, weights_sha256="cd")
  np.savez(tmp_path / "nomu.npz", sigma=np.eye(8))
  with pytest.raises(EvalError, match="has no 'mu' array"):
    stats.load_stats(str(tmp_path / "nomu.npz"), 8)
  with pytest.raises(EvalError, match="too few"):
    stats.feature_stats(np.zeros((1, 8)))
  # The command: a bad flag value is one line and exit 2, before jax starts.
  done = evaluate(f"--samples={tmp_path / 'x.npy'}", "--feature_network=inception")
  assert done.returncode == EXIT_USAGE and "Traceback" not in done.stderr
  assert "--feature_network=inception needs --inception_weights=PATH" in (
      done.stderr.strip().splitlines()[-1])


def test_a_splits_statistics_and_png_samples_against_the_test_split(reference, extractor,
                                                                    tmp_path):
  """--save_stats of a dataset's --split, and --samples as a folder of PNG files (read as
  RGB, as pytorch-fid reads them) scored against the --data_dir's test split: FID, KID
  and precision/recall on Inception features, the statistics those of the split's
  images."""
  from PIL import Image
  rng = np.random.default_rng(9)
  data_dir = toolkit.write_idx_dir(
      tmp_path / "tiny", rng.integers(0, 256, (6, 8, 8)), np.arange(6) % 3,
      rng.integers(0, 256, (6, 8, 8)), np.arange(6) % 3)
  weights = f"--inception_weights={reference.legacy}"
  done = evaluate("--feature_network=inception", weights, f"--data_dir={data_dir}",
                  "--split=test", f"--save_stats={tmp_path / 'test.npz'}")
  assert done.returncode == 0, done.stderr[-3000:]
  from jaxgan import data
  test = data.load_dataset("", data_dir, "test").images  # [6, 8, 8, 1]
  real, _ = features_lib.extract(extractor, np.repeat(test, 3, axis=-1))
  with np.load(tmp_path / "test.npz") as saved:
    assert relative_error(saved["mu"], np.mean(np.asarray(real, np.float64), 0)) < 1e-6
    assert int(saved["num_samples"]) == 6

  samples = rng.integers(0, 256, (6, 8, 8), dtype=np.uint8)
  os.makedirs(tmp_path / "pngs")
  for i, image in enumerate(samples):
    Image.fromarray(image).save(tmp_path / "pngs" / f"{i}.png")
  done = evaluate(f"--samples={tmp_path / 'pngs'}", "--feature_network=inception",
                  weights, f"--data_dir={data_dir}")
  assert done.returncode == 0, done.stderr[-3000:]
  with open(tmp_path / "pngs_eval.json") as f:
    results = json.load(f)
  fake, _ = features_lib.extract(extractor, np.repeat(samples[..., None], 3, axis=-1))
  expected = stats.fid_of_features(fake, stats.Stats(*stats.feature_stats(real), 6, None))
  assert abs(results["fid"] - expected) / expected < 1e-6
  assert results["samples"]["format"] == "png" and results["num_real"] == 6
  assert results["protocol"]["reference"] == {"split": "tiny test", "num_samples": 6}
  for key in ("kid", "precision", "recall", "density", "coverage"):
    assert np.isfinite(results[key]), key


def test_evaluation_during_training_on_inception_keeps_modes_on_the_classifier(
    reference, tmp_path):
  """--feature_network=inception in a run's Config (training's --eval_every, a sweep's
  members and `evaluate --workdir` all build their Evaluator with make_evaluator): FID,
  KID, IS and precision/recall on Inception features with the protocol stated, the
  mode statistics those of the dataset's classifier."""
  from jaxgan.config import Config
  from jaxgan.eval import members
  _, _, cache = toolkit.cached_tiny_classifier(tmp_path)
  data_dir = toolkit.write_classes_folder(str(tmp_path / "classes"), num_train=12,
                                          num_test=10)
  config = Config(num_steps=1, data_dir=data_dir, classifier_dir=cache,
                  eval_num_samples=10, eval_parzen=False, feature_network="inception",
                  inception_weights=reference.legacy).validate()
  samples, _ = toolkit.make_class_images(10, seed=4)
  with pytest.warns(inception.NonStandardWeights):
    on_inception = members.make_evaluator(config).evaluate_images(samples[..., None])
  classifier_config = Config(num_steps=1, data_dir=data_dir, classifier_dir=cache,
                             eval_num_samples=10, eval_parzen=False).validate()
  on_classifier = members.make_evaluator(classifier_config).evaluate_images(
      samples[..., None])
  assert on_inception["classifier"] == "inception:random_inception.pth"
  assert on_inception["mode_classifier"] == on_classifier["classifier"]
  for key in ("modes_covered", "mode_kl", "mode_histogram"):
    assert on_inception[key] == on_classifier[key], key
  for key in ("fid", "kid", "inception_score", "precision", "recall"):
    assert np.isfinite(on_inception[key]), key
  assert on_inception["fid"] != on_classifier["fid"]  # Another network's features.
  assert on_inception["protocol"]["reference"] == {"split": "classes test",
                                                   "num_samples": 10}


@pytest.mark.parametrize("overrides, message", [
    (dict(feature_network="vgg"), "--feature_network='vgg' is invalid: expected one of "
     "classifier, inception"),
    (dict(feature_network="inception"), "--inception_weights='' is invalid: expected "
     "pytorch-fid's pt_inception-2015-12-05-6726825d.pth"),
    (dict(inception_weights="w.pth"), "--inception_weights='w.pth' is invalid: expected "
     "no value without --feature_network=inception"),
])
def test_the_feature_network_flags_are_checked_naming_the_flag(overrides, message):
  from jaxgan.config import Config
  from jaxgan.errors import ConfigError
  from jaxgan.runtime import workdir
  with pytest.raises(ConfigError, match=re.escape(message)):
    Config(num_steps=1, **overrides).validate()
  # Which network scores a run changes what it writes, not what it trains.
  assert {"feature_network", "inception_weights"} <= set(workdir.RESUME_FREE)


def test_sample_writes_evaluations_samples_as_pngs_pytorch_fid_scores_alike(
    reference, extractor, tmp_path):
  """`python -m jaxgan.sample --out=DIR/` writes the samples evaluation draws (same noise,
  same generator), as uint8 PNGs; pytorch-fid's statistics of that folder equal jaxgan's
  of the same folder, and so the FID against any reference (here the test split's)."""
  import types as pytypes

  import jax

  from jaxgan import data, rng
  from jaxgan.eval import evaluator, samples as samples_lib
  from jaxgan.runtime import evaluation as runs
  from jaxgan.runtime import loop
  from jaxgan.runtime.trainees import make_trainee
  data_dir = toolkit.tiny_idx_dir(tmp_path / "tiny", num_train=32, num_test=6)
  workdir = str(tmp_path / "run")
  loop.run(toolkit.tiny_config(data_dir, num_steps=2, checkpoint_every=2).validate(),
           workdir)
  out = tmp_path / "pngs"
  done = toolkit.run_command([sys.executable, "-m", "jaxgan.sample",
                              f"--workdir={workdir}", "--num_samples=5", f"--out={out}/"])
  assert done.returncode == 0, done.stderr[-3000:]
  assert "sampled 5/5 (step 2)" in done.stderr and f"wrote {out}/: 5 samples" in done.stdout
  assert sorted(os.listdir(out)) == [f"{i:06d}.png" for i in range(5)]

  config = runs.load_run_config(workdir)
  train = data.load_training_split(config)
  trainee = make_trainee(config, train)
  state, _ = runs.restore_checkpoint(trainee.initial_state(train.images), workdir, None)
  expected = evaluator.Evaluator.generate(
      pytypes.SimpleNamespace(num_samples=5), jax.jit(trainee.steps.sample), state,
      trainee.gan.sample_noise, trainee.gan.pixel_range,
      rng.seed_stream(config.seed, rng.EVAL_NOISE))
  grey, _ = samples_lib.load_samples(str(out), (8, 8, 1))
  np.testing.assert_array_equal(grey, np.round(np.asarray(expected) * 255))

  rgb, _ = samples_lib.load_samples(str(out), None)  # pytorch-fid's reading: RGB.
  ours, _ = features_lib.extract(extractor, rgb)
  cpu = reference.torch.device("cpu")
  theirs = reference.fid_score.get_activations(
      sorted(str(out / f) for f in os.listdir(out)), reference.model, 5, 2048, cpu, 0)
  assert relative_error(ours, theirs) < TOLERANCE
  test = data.load_dataset("", data_dir, "test").images
  real, _ = features_lib.extract(extractor, np.repeat(test[:5], 3, axis=-1))
  ref = stats.Stats(*stats.feature_stats(real), 5, None)
  ours_fid, their_fid = stats.fid_of_features(ours, ref), stats.fid_of_features(theirs, ref)
  assert abs(ours_fid - their_fid) / their_fid < TOLERANCE


@pytest.mark.xdist_group("tensorflow")  # Imports TensorFlow: see test_data.py.
def test_cifar10_loads_through_tfds_offline_as_rgb_32px():
  """The RGB data the papers' Inception FIDs are reported on (docs/evaluation.md, CIFAR-10
  rows), offline: tfds's mock data in CIFAR-10's shapes."""
  import tensorflow_datasets as tfds

  from jaxgan import data
  with tfds.testing.mock_data(num_examples=12):
    train = data.load_dataset("cifar10", "", "train")
  assert train.name == "cifar10" and train.num_classes == 10
  assert train.images.shape == (12, 32, 32, 3) and train.images.dtype == np.uint8


def test_sample_writes_arrays_and_refuses_a_used_folder(tmp_path):
  from jaxgan.cli import sample
  images = np.random.default_rng(0).integers(0, 256, (3, 4, 4, 3), dtype=np.uint8)
  sample._write(str(tmp_path / "s.npz"), images)
  sample._write(str(tmp_path / "s.npy"), images)
  with np.load(tmp_path / "s.npz") as f:
    np.testing.assert_array_equal(f["images"], images)
  np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), images)
  (tmp_path / "used").mkdir()
  (tmp_path / "used" / "x.png").write_bytes(b"")
  done = toolkit.run_command([sys.executable, "-m", "jaxgan.sample",
                              f"--workdir={tmp_path}", f"--out={tmp_path / 'used'}"])
  assert done.returncode == EXIT_USAGE and "Traceback" not in done.stderr
  assert "is a folder that is not empty" in done.stderr.strip().splitlines()[-1]
