"""Populations (--sweep) through the one training loop: member i is the single run with
member i's config (same initial state bit for bit, same updates up to float
reassociation), per-member records, grids and evaluations, the results table and its
ranking, exact resume, toy mode metrics, and the sweep's refusals.

Every population trains the real `mlp` GAN (latent 4, batch 8) on tiny 8x8 IDX folders;
the toy population trains `toy_mlp` on the 25-Gaussian grid.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import os
import re
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from jaxgan import data, rng
from jaxgan.config import Config, sweep_members
from jaxgan.data import toy
from jaxgan.errors import EXIT_USAGE, WorkdirError
from jaxgan.eval import members as eval_members
from jaxgan.eval import modes
from jaxgan.runtime import evaluation, loop, trainees, writers
from jaxgan.state import make_gan, named_leaves
from jaxgan.steps import make_steps
from jaxgan.sweep import population, results

import toolkit
from test_plots import assert_png, figures_drawn

SPECS = ("lr_d=1e-4,3e-4", "seed=0,1")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  """The 3-class dataset of 120 8x8 images (toolkit.make_class_images), the data of the
  evaluated sweep too: populations of one size share their compiled step."""
  return toolkit.write_classes_folder(str(tmp_path_factory.mktemp("sweep") / "classes"))


@pytest.fixture(scope="module")
def dataset(data_dir):
  return data.load_dataset("", data_dir, "train")


def run_printing(config: Config, workdir: str) -> tuple[object, str]:
  """loop.run's state and what it printed (the results summary)."""
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    state = loop.run(config, workdir)
  return state, out.getvalue()


# --------------------------------------------------------------------------- state
def advance(trainee, state, images, labels, steps: int):
  step = 0
  while step < steps:
    state, metrics, step = trainee.step_fns.advance(state, images, labels, step, steps)
  return state, metrics


@pytest.mark.parametrize("optimizer, specs", [
    # Two values where it matters for member order; one elsewhere (fewer inits).
    ("adam", ("lr_g=1e-4,3e-4", "lr_d=5e-4", "b1=0.9", "b2=0.99", "seed=0,3")),
    ("sgd", ("momentum=0.1,0.7", "seed=1,2")),
])
def test_population_init_equals_each_members_single_run_init(data_dir, dataset,
                                                              optimizer, specs):
  config = toolkit.tiny_config(data_dir, model="toy_mlp", optimizer=optimizer,
                               sweep=specs)
  members = sweep_members(config)
  pop_state = trainees.PopulationRun(config, dataset).initial_state()
  np.testing.assert_array_equal(pop_state.health.diverged_at, [population.HEALTHY] * 4)
  for m in (members[1], members[-1]):
    # What the loop starts a single run from.
    single = trainees.SingleRun(m.config, dataset).initial_state()
    toolkit.assert_trees_equal(toolkit.member(pop_state, m.index), single)


def test_population_steps_per_call_equals_single_dispatches(data_dir, dataset):
  config = toolkit.tiny_config(data_dir, model="toy_mlp", steps_per_call=3, sweep=SPECS)
  pop = trainees.PopulationRun(config, dataset)
  images, labels = pop.place_data(dataset.images, dataset.labels)
  singles, single_metrics = pop.initial_state(), None
  for step in range(3):  # One step per dispatch (an event right after each).
    singles, single_metrics, _ = pop.step_fns.advance(singles, images, labels, step,
                                                      step + 1)
  multi, multi_metrics, step = pop.step_fns.advance(pop.initial_state(), images, labels,
                                                    0, 3)
  assert step == 3
  np.testing.assert_array_equal(multi.gan.step, [3, 3, 3, 3])
  toolkit.assert_trees_equal(multi, singles)
  toolkit.assert_trees_equal(multi_metrics, single_metrics)


# --------------------------------------------------------------------------- the loop
@pytest.fixture(scope="module")
def finished(data_dir, tmp_path_factory):
  """A 4-step population of 4 members, checkpointed at steps 2 and 4, no evaluation."""
  config = toolkit.tiny_config(data_dir, num_steps=4, log_every=2, sample_every=4,
                               checkpoint_every=2, sweep=SPECS)
  workdir = str(tmp_path_factory.mktemp("sweep") / "run")
  state, printed = run_printing(config, workdir)
  return config, workdir, toolkit.host_tree(state), printed


# G's hidden layers 1 to 3 feed a BatchNorm (models/mlp.py), which removes any constant
# shift: the gradient of their biases is exactly 0, and what a step computes for it is
# rounding noise (~1e-12) that differs between a vmapped or sharded program and the
# single run's. Adam normalises that noise into updates, so these leaves (the biases and
# their moments) are left out of the comparison; their moments are checked to be noise.
BN_FED_BIASES = re.compile(r"^(gan/)?g/.*TorchLinear_[123]/bias$")


def assert_trains_alike(a, b, rtol: float = 1e-4, init=None) -> None:
  """The states `a` and `b` (GANStates, or PopulationStates) of the mlp GAN agree.

  With `init`, the state both were trained from: they made the same updates, each leaf's
  change a - init equal to b - init within `rtol` of that change's own scale
  (max |b - init|), so a wrong update cannot hide behind the size of the weights it is
  added to; a leaf that did not change must not change in either. Without it, each leaf
  of a within `rtol` of b relative to the leaf's own scale (Adam's second moments are
  ~1e-8): weaker, as a wrong update of 1e-4 passes on weights of 1.
  BN_FED_BIASES are left out; their first moments must be 1e4 times below their
  kernel's."""
  a, b = named_leaves(toolkit.host_tree(a)), named_leaves(toolkit.host_tree(b))
  assert a.keys() == b.keys()
  if init is not None:
    init = named_leaves(toolkit.host_tree(init))
    assert init.keys() == a.keys()
  exact = sorted(k for k in a if not BN_FED_BIASES.match(k))
  assert len(a) - len(exact) == 3 * 3  # 3 biases, each with Adam's mu and nu.
  for k in exact:
    if init is None:
      try:
        toolkit.assert_trees_close(a[k], b[k], rtol=rtol)
      except AssertionError as e:
        raise AssertionError(f"{k}: {e}") from None
      continue
    x0 = np.asarray(init[k], np.float64)
    da, db = np.asarray(a[k], np.float64) - x0, np.asarray(b[k], np.float64) - x0
    scale = np.max(np.abs(db), initial=0.0)
    err = np.max(np.abs(da - db), initial=0.0)
    assert err <= rtol * scale, f"{k}: updates differ by {err:.3g}, their scale {scale:.3g}"
  for tree in (a, b):
    for k in tree:
      if BN_FED_BIASES.match(k) and "/mu/" in k:
        kernel = tree[k.replace("/bias", "/kernel")]
        assert np.max(np.abs(tree[k])) < 1e-4 * np.max(np.abs(kernel)), k


def test_population_member_trains_like_the_single_run(finished, dataset):
  config, workdir, state, _ = finished
  members = sweep_members(config)
  logged = {r["member"]: r for r in toolkit.read_metrics(workdir) if r["step"] == 4}
  for m in (members[0], members[-1]):
    single = trainees.SingleRun(m.config, dataset)
    images, labels = single.place_data(dataset.images, dataset.labels)
    init = single.initial_state()  # The member's own, bit for bit (tested above).
    init_host = toolkit.host_tree(init)  # advance donates the state it is given.
    single_state, metrics = advance(single, init, images, labels, 4)
    assert_trains_alike(toolkit.member(state, m.index), single_state,
                        rtol=1e-3, init=init_host)
    for name in ("d_loss", "g_loss", "d_real", "d_fake"):
      assert logged[m.index][name] == pytest.approx(float(metrics[name]), rel=1e-5), name
  # Members 0 and 2 differ only in lr_d: the swept value is not silently ignored.
  assert members[2].hparams == {"lr_d": 3e-4, "seed": 0}
  d0, d2 = (jax.tree_util.tree_leaves(toolkit.member(state, i).d.params)[0]
            for i in (0, 2))
  assert not np.allclose(d0, d2)


def test_metrics_records_carry_member_index_and_hyperparameters(finished):
  _, workdir, _, _ = finished
  records = toolkit.read_metrics(workdir)
  assert [(r["step"], r["member"]) for r in records] == [
      (s, m) for s in (2, 4) for m in range(4)]
  assert [(r["lr_d"], r["seed"]) for r in records[:4]] == [
      (1e-4, 0), (1e-4, 1), (3e-4, 0), (3e-4, 1)]
  assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in records)


def test_each_member_gets_its_own_sample_grid(finished):
  config, workdir, state, _ = finished
  members = sweep_members(config)
  # What a single run of member m's config writes at step 4 from member m's state: G's
  # samples of the fixed noise of its seed (stream rng.SAMPLE_GRID), as a grid. The
  # members' configs differ only in lr_d and the seed, neither of which enters sampling,
  # so one compiled sampler serves all four.
  gan = make_gan(members[0].config, (8, 8, 1))
  sample = jax.jit(make_steps(members[0].config, gan, 120).sample)
  noise = jax.jit(lambda key: gan.sample_noise(key, config.sample_grid ** 2))
  expected = []
  for m in members:
    z = noise(rng.seed_stream(m.config.seed, rng.SAMPLE_GRID))
    pixels = np.asarray(sample(toolkit.member(state, m.index), z))
    expected.append(writers.image_grid(data.from_pixels(pixels, gan.pixel_range),
                                       rows=config.sample_grid)[..., 0].astype(int))
  for m in members:
    folder = os.path.join(workdir, "samples", f"member_{m.index}")
    assert os.listdir(folder) == ["step_4.png"]
    with Image.open(os.path.join(folder, "step_4.png")) as img:
      grid = np.asarray(img).astype(int)
    # Its own samples (allowing a level of rounding on a few pixels: the population
    # computed them in a vmapped program), and no other member's: those of another seed
    # differ everywhere, those of the same seed by a few levels on a third of the pixels.
    for other, want in zip(members, expected):
      differ = np.mean(grid != want)
      if other.index == m.index:
        assert np.abs(grid - want).max() <= 1 and differ < 0.01, (m.index, differ)
      else:
        assert differ > 0.1, (m.index, other.index, differ)


def test_image_sweep_without_evaluation_is_not_ranked(finished):
  _, workdir, _, printed = finished
  rows = toolkit.read_results(workdir)
  assert [r["rank"] for r in rows] == ["", "", "", ""]
  assert [int(r["member"]) for r in rows] == [0, 1, 2, 3]  # Member order.
  assert [r["status"] for r in rows] == ["ok"] * 4
  assert "Sweep of 4 members, not ranked: no quality metric was logged" in printed


def test_results_table_ranks_members_by_the_named_metric(finished, tmp_path,
                                                         monkeypatch):
  # Resuming the finished sweep with --sweep_metric trains nothing and ranks what was
  # logged.
  config, workdir, _, _ = finished
  ranked_dir = str(tmp_path / "ranked")
  shutil.copytree(workdir, ranked_dir)
  # The finished sweep drew no plot (tiny_config: sweep_plot=False); this one does.
  assert not os.path.exists(os.path.join(ranked_dir, results.PLOT_PNG))
  drawn = figures_drawn(monkeypatch)
  _, printed = run_printing(dataclasses.replace(config, sweep_metric="g_loss",
                                                sweep_plot=True), ranked_dir)
  assert "ranked by g_loss (lower is better)" in printed
  rows = toolkit.read_results(ranked_dir)
  assert [int(r["rank"]) for r in rows] == [1, 2, 3, 4]
  assert sorted(int(r["member"]) for r in rows) == [0, 1, 2, 3]
  g = [float(r["g_loss"]) for r in rows]
  assert g == sorted(g)
  # The table's values are the members' last logged values.
  last = {r["member"]: r for r in toolkit.read_metrics(workdir) if r["step"] == 4}
  for r in rows:
    assert float(r["g_loss"]) == pytest.approx(last[int(r["member"])]["g_loss"])
    assert float(r["lr_d"]) == last[int(r["member"])]["lr_d"]
  # The plot: each training metric (the ranked one first) against each swept value, at
  # each member's last logged values.
  [fig] = drawn
  assert_png(os.path.join(ranked_dir, results.PLOT_PNG), fig)
  assert list(fig["panels"]) == [f"{metric} vs {name}"
                                 for metric in ("g_loss", "d_loss", "d_real", "d_fake")
                                 for name in ("lr_d", "seed")]
  for metric in ("g_loss", "d_loss"):
    [(_, points)] = fig["panels"][f"{metric} vs lr_d"]["points"]
    assert sorted(map(tuple, points)) == sorted((r["lr_d"], r[metric])
                                                for r in last.values())
    by_lr = dict(fig["panels"][f"{metric} vs seed"]["points"])
    for lr in (1e-4, 3e-4):
      assert by_lr[f"lr_d={lr:g}"] == [[r["seed"], r[metric]] for r in last.values()
                                       if r["lr_d"] == lr]


def test_population_checkpoint_resumes_exactly(finished, tmp_path):
  config, workdir, final_state, _ = finished
  resumed_dir = str(tmp_path / "resumed")
  shutil.copytree(workdir, resumed_dir)
  shutil.rmtree(os.path.join(resumed_dir, "checkpoints", "4"))  # Back to step 2.
  resumed, _ = run_printing(config, resumed_dir)
  toolkit.assert_trees_equal(resumed, final_state)
  assert toolkit.read_metrics(resumed_dir) == toolkit.read_metrics(workdir)


def test_a_workdir_of_another_sweep_is_refused(finished):
  config, workdir, _, _ = finished
  before = toolkit.tree_snapshot(workdir)
  other = dataclasses.replace(config, sweep=("lr_d=1e-4,5e-4", "seed=0,1"))
  with pytest.raises(WorkdirError, match=r"--sweep=\['lr_d=1e-4,3e-4', 'seed=0,1'\] "
                     r"\(saved\) vs \['lr_d=1e-4,5e-4', 'seed=0,1'\] \(now\)"):
    loop.run(other, workdir)
  assert toolkit.tree_snapshot(workdir) == before


def test_a_conditional_sweep_trains_and_samples_each_member(data_dir, tmp_path):
  config = toolkit.tiny_config(data_dir, model="toy_mlp", conditional=True, num_steps=2,
                               sample_every=2, sweep=("seed=0,1",))
  workdir = str(tmp_path / "run")
  state, _ = run_printing(config, workdir)
  np.testing.assert_array_equal(state.gan.step, [2, 2])
  assert [(r["step"], r["member"]) for r in toolkit.read_metrics(workdir)] == [
      (1, 0), (1, 1), (2, 0), (2, 1)]
  grids = []
  for m in range(2):
    folder = os.path.join(workdir, "samples", f"member_{m}")
    assert os.listdir(folder) == ["step_2.png"]
    with Image.open(os.path.join(folder, "step_2.png")) as img:
      grids.append(np.asarray(img).astype(int))
  # Each member's own: seeds 0 and 1 draw other noise and other weights.
  assert grids[0].shape == grids[1].shape and np.mean(grids[0] != grids[1]) > 0.1


def test_entry_point_refuses_a_shape_flag_sweep_with_exit_2(tmp_path, capsys):
  workdir = tmp_path / "run"
  code, err = toolkit.run_main_in_process(
      ["--num_steps=1", "--sweep=model=mlp,paper_mlp", f"--workdir={workdir}"],
      capsys)
  assert code == EXIT_USAGE
  assert "jaxgan: error: --sweep='model=mlp,paper_mlp': --model cannot be swept" in err
  assert "Traceback" not in err
  assert not workdir.exists()


# --------------------------------------------------------------------------- ranking
def test_rank_members_puts_diverged_members_last_and_respects_direction():
  members = sweep_members(Config(num_steps=1, sweep=("seed=0,1,2,3",)))
  # Member 1 diverged at step 3 although its values are the best of both metrics;
  # member 3 is healthy but its g_loss is NaN (never a best value).
  final = {"g_loss": np.array([0.2, 0.1, 0.5, np.nan]),
           "d_real": np.array([0.1, 0.9, 0.5, 0.3])}
  diverged_at = [-1, 3, -1, -1]
  by_g = results.rank_members(members, final, "g_loss", diverged_at)
  assert [r["member"] for r in by_g] == [0, 2, 3, 1]  # Lower is better.
  assert [r["rank"] for r in by_g] == [1, 2, 3, 4]
  assert [r["status"] for r in by_g] == ["ok", "ok", "ok", "diverged@3"]
  by_d = results.rank_members(members, final, "d_real", diverged_at)
  assert [r["member"] for r in by_d] == [2, 3, 0, 1]  # Higher is better.


def test_mode_coverage_ties_are_broken_by_high_quality_pct():
  members = sweep_members(Config(num_steps=1, sweep=("seed=0,1,2",)))
  final = {"modes_covered": np.array([3.0, 5.0, 5.0]),
           "high_quality_pct": np.array([90.0, 10.0, 20.0])}
  rows = results.rank_members(members, final, "modes_covered", [-1, -1, -1])
  assert [r["member"] for r in rows] == [2, 1, 0]


# --------------------------------------------------------------------------- toy data
@pytest.fixture(scope="module")
def toy_sweep(tmp_path_factory):
  """3 steps of two seeds on the 25-Gaussian grid, sampled (mode metrics) at step 3."""
  config = Config(dataset="toy_grid25", model="toy_mlp", latent_dim=4, batch_size=16,
                  num_steps=3, log_every=3, sample_every=3, checkpoint_every=0,
                  sweep=("seed=0,1",))
  workdir = str(tmp_path_factory.mktemp("toy_sweep") / "run")
  state, printed = run_printing(config, workdir)
  return config, workdir, state, printed


def test_toy_sweep_logs_each_members_mode_metrics_from_its_own_samples(toy_sweep):
  config, workdir, state, _ = toy_sweep
  logged = [r for r in toolkit.read_metrics(workdir) if "modes_covered" in r]
  assert [(r["step"], r["member"], r["seed"]) for r in logged] == [(3, 0, 0), (3, 1, 1)]
  # What the loop computes for a single run with member i's seed and parameters.
  problem = toy.PROBLEMS["toy_grid25"]
  gan = make_gan(config, (1, 1, 2))
  sample = jax.jit(make_steps(config, gan, toy.TRAIN_SIZE).sample)
  for i, record in enumerate(logged):
    z = gan.sample_noise(rng.seed_stream(i, rng.SAMPLE_GRID), modes.EVAL_SAMPLES)
    points = np.asarray(sample(toolkit.member(state, i), z))
    want = modes.evaluate(problem, points.reshape(modes.EVAL_SAMPLES, 2))
    assert record["modes_covered"] == want["modes_covered"]
    assert record["high_quality_pct"] == pytest.approx(want["high_quality_pct"], abs=0.05)
  # The two seeds' values differ here, so a member swap would show.
  assert logged[0]["high_quality_pct"] != logged[1]["high_quality_pct"]
  for m in range(2):
    assert os.path.isfile(os.path.join(workdir, "samples", f"member_{m}", "step_3.png"))


def test_toy_sweep_ranks_by_modes_covered_by_default(toy_sweep):
  _, workdir, _, printed = toy_sweep
  assert "ranked by modes_covered (higher is better)" in printed
  rows = toolkit.read_results(workdir)
  keys = [(-float(r["modes_covered"]), -float(r["high_quality_pct"])) for r in rows]
  assert keys == sorted(keys) and [int(r["rank"]) for r in rows] == [1, 2]


def test_toy_table_summarises_each_sweeps_members_with_standard_errors(tmp_path):
  def mode_record(step, member, covered, high_quality, kl):
    return {"step": step, "member": member, "seed": member, "modes_covered": covered,
            "high_quality_pct": high_quality, "reverse_kl": kl}

  for name, last in (("ring_vanilla", (4.0, 2.0)), ("ring_pack2", (8.0, 6.0))):
    run = tmp_path / name
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"sweep": ["seed=0,1,2"]}))
    lines = [mode_record(5, 0, 1.0, 10.0, 1.0), mode_record(5, 1, 2.0, 50.0, 1.0),
             mode_record(9, 0, last[0], 20.0, 0.5),
             {"step": 9, "member": 0, "seed": 0, "d_loss": 0.5},  # No mode metrics.
             mode_record(9, 1, last[1], 40.0, 0.25),
             # Member 2 diverged: left out, counted.
             {"step": 9, "member": 2, "seed": 2, "diverged": "D loss", "diverged_at": 3}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
  out = subprocess.run([sys.executable, "-m", "jaxgan.cli.toy_table", str(tmp_path)],
                       cwd=toolkit.REPO, env=toolkit.subprocess_env(),
                       capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr[-2000:]
  # Last records at step 9; s.e. = std (ddof 1) / sqrt(2): modes (4, 2) -> 3.0 ± 1.0,
  # high-quality (20, 40) -> 30 ± 10, reverse KL (0.5, 0.25) -> 0.375 ± 0.125.
  assert ("| ring_vanilla | 2 (+1 diverged) | 9 | 3.0 ± 1.0 (4.0, 2.0) | "
          "30.0 ± 10.0 (20.0, 40.0) | 0.375 ± 0.125 (0.500, 0.250) |") in out.stdout
  assert "| ring_pack2 | 2 (+1 diverged) | 9 | 7.0 ± 1.0 (8.0, 6.0) |" in out.stdout


# --------------------------------------------------------------------------- evaluation
@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
  """A 2-step population of 2 seeds on the tiny 3-class dataset, evaluated at step 2."""
  root = tmp_path_factory.mktemp("sweep_eval")
  classes_dir, _, cache = toolkit.cached_tiny_classifier(root)
  config = toolkit.tiny_config(classes_dir, num_steps=2, eval_every=2,
                               eval_num_samples=20, classifier_dir=cache,
                               sweep=("seed=0,1",))
  workdir = str(root / "run")
  state, printed = run_printing(config, workdir)
  return config, workdir, state, printed


def test_eval_scalars_are_logged_per_member_with_hyperparameters(evaluated):
  _, workdir, _, _ = evaluated
  evals = [r for r in toolkit.read_metrics(workdir) if "eval/fid" in r]
  assert [(r["step"], r["member"], r["seed"]) for r in evals] == [(2, 0, 0), (2, 1, 1)]
  for r in evals:
    assert np.isfinite(r["eval/fid"]) and r["eval/num_samples"] == 20
    assert {"eval/kid", "eval/inception_score", "eval/modes_covered",
            "eval/parzen_ll"} <= set(r)


def test_each_member_equals_the_single_run_evaluation_of_its_parameters(evaluated):
  config, workdir, state, _ = evaluated
  evaluator = evaluation.make_evaluator(config)
  fids = []
  for m in sweep_members(config):
    with open(eval_members.member_results_path(workdir, m.index, 2)) as f:
      logged = json.load(f)
    assert logged["member"] == m.index and logged["hparams"] == {"seed": m.index}
    gan = make_gan(m.config, (8, 8, 1))
    sample = make_steps(m.config, gan, 120).sample
    single = evaluation.GeneratorEval(m.config, gan, sample, evaluator)(
        toolkit.member(state, m.index))
    for key in ("fid", "kid", "inception_score", "mode_kl", "parzen_ll"):
      assert logged[key] == pytest.approx(single[key], rel=1e-4, abs=1e-6), key
    assert logged["mode_histogram"] == single["mode_histogram"]
    fids.append(logged["fid"])
  assert fids[0] != fids[1]  # The members' samples differ, so a swap would show.


def test_results_are_ranked_by_fid_by_default(evaluated):
  _, workdir, _, printed = evaluated
  assert "ranked by eval/fid (lower is better)" in printed
  rows = toolkit.read_results(workdir)
  fid = [float(r["eval/fid"]) for r in rows]
  assert fid == sorted(fid)
  assert list(rows[0])[:5] == ["rank", "member", "seed", "status", "eval/fid"]
  last = {r["member"]: r["eval/fid"] for r in toolkit.read_metrics(workdir)
          if "eval/fid" in r}
  assert {int(r["member"]): float(r["eval/fid"]) for r in rows} == pytest.approx(last)


def test_an_evaluated_seed_sweep_reports_mean_and_std_over_its_members(evaluated):
  _, workdir, _, printed = evaluated
  last = {r["member"]: r for r in toolkit.read_metrics(workdir) if "eval/fid" in r}
  fids = [last[m]["eval/fid"] for m in (0, 1)]
  mean, std = np.mean(fids), np.std(fids, ddof=1)
  with open(os.path.join(workdir, results.SUMMARY_CSV)) as f:
    summary = {r["metric"]: r for r in csv.DictReader(f)}
  assert float(summary["eval/fid"]["mean"]) == pytest.approx(mean)
  assert float(summary["eval/fid"]["std"]) == pytest.approx(std)
  assert summary["eval/precision"]["n"] == "2"
  assert "mean ± std (ddof 1) over seeds" in printed
  [line] = [l for l in printed.splitlines() if l.strip().startswith("eval/fid ")]
  assert f"{mean:.4g} ± {std:.3g}" in line and "(n=2)" in line
  for name in ("eval/precision", "eval/recall", "eval/density", "eval/coverage"):
    assert name in printed and name in summary


@pytest.mark.parametrize("requested, available, expected", [
    ("", ["g_loss", "eval/fid"], "eval/fid"),
    ("", ["g_loss", "modes_covered", "high_quality_pct"], "modes_covered"),
    ("", ["g_loss", "d_loss"], None),  # No quality metric: not ranked.
    ("fid", ["g_loss", "eval/fid"], "eval/fid"),
    ("inception_score", ["eval/inception_score"], "eval/inception_score"),
    ("d_loss", ["g_loss", "d_loss"], "d_loss"),
])
def test_resolve_metric_defaults_to_fid_and_accepts_names_without_prefix(
    requested, available, expected):
  assert results.resolve_metric(requested, available) == expected


def test_ranking_direction_of_evaluation_and_toy_metrics():
  for name in ("eval/fid", "eval/kid", "g_loss"):
    assert not results.higher_is_better(name), name
  for name in ("eval/inception_score", "eval/parzen_ll", "modes_covered",
               "high_quality_pct"):
    assert results.higher_is_better(name), name


def test_read_final_metrics_keeps_each_metrics_latest_value(tmp_path):
  path = tmp_path / "metrics.jsonl"
  lines = [{"step": 2, "member": 0, "seed": 0, "g_loss": 1.0},
           {"step": 2, "member": 1, "seed": 1, "g_loss": 2.0},
           {"step": 2, "member": 0, "seed": 0, "eval/fid": 30.0},
           {"step": 2, "member": 1, "seed": 1, "eval/fid": 20.0},
           {"step": 3, "member": 0, "seed": 0, "g_loss": 1.5},
           {"step": 3, "member": 1, "seed": 1, "g_loss": 2.5}]
  path.write_text("".join(json.dumps(r) + "\n" for r in lines))
  # Three members: member 2 never logged, so its values are NaN.
  final = results.read_final_metrics(str(path), 3, exclude=["seed"])
  assert set(final) == {"g_loss", "eval/fid"}  # Tags and the step are not metrics.
  np.testing.assert_array_equal(final["g_loss"], [1.5, 2.5, np.nan])
  np.testing.assert_array_equal(final["eval/fid"], [30.0, 20.0, np.nan])
