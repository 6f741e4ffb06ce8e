"""Per-member evaluation in sweeps: records, result files, equality with the single-run
evaluation of each member, ranking by FID."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest

from jaxgan import population, sweep
from jaxgan.config import Config
from jaxgan.eval import members as eval_members
from jaxgan.eval import runs
from jaxgan.state import make_gan
from jaxgan.steps import make_steps

import eval_fixtures
from sweep_fixtures import read_results


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
  """A 2-step population of 2 seeds on the tiny 3-class dataset, evaluated at step 2."""
  root = tmp_path_factory.mktemp("sweep_eval")
  data_dir, _, cache = eval_fixtures.cached_tiny_classifier(root)
  config = Config(dataset="tiny", data_dir=data_dir, latent_dim=4, batch_size=8,
                  num_steps=2, log_every=1, sample_every=0, checkpoint_every=0,
                  eval_every=2, eval_num_samples=20, classifier_dir=cache,
                  sweep=("seed=0,1",))
  workdir = str(root / "run")
  state = sweep.run(config, workdir)
  return config, workdir, state


def _records(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


def test_eval_scalars_are_logged_per_member_with_hyperparameters(evaluated):
  _, workdir, _ = evaluated
  evals = [r for r in _records(workdir) if "eval/fid" in r]
  assert [(r["step"], r["member"], r["seed"]) for r in evals] == [(2, 0, 0), (2, 1, 1)]
  for r in evals:
    assert np.isfinite(r["eval/fid"]) and r["eval/num_samples"] == 20
    assert {"eval/kid", "eval/inception_score", "eval/modes_covered",
            "eval/parzen_ll"} <= set(r)


def test_each_member_equals_the_single_run_evaluation_of_its_parameters(evaluated):
  config, workdir, state = evaluated
  members = population.make_members(config, config.sweep)
  gan = make_gan(members[0].config, (8, 8, 1))
  sample = make_steps(members[0].config, gan, 120).sample
  evaluator = runs.make_evaluator(config)
  fids = []
  for m in members:
    with open(eval_members.member_results_path(workdir, m.index, 2)) as f:
      logged = json.load(f)
    assert logged["member"] == m.index and logged["hparams"] == {"seed": m.index}
    single = runs.GeneratorEval(m.config, gan, sample, evaluator)(
        population.member_state(state, m.index))
    for key in ("fid", "kid", "inception_score", "mode_kl", "parzen_ll"):
      assert logged[key] == pytest.approx(single[key], rel=1e-4, abs=1e-6), key
    assert logged["mode_histogram"] == single["mode_histogram"]
    fids.append(logged["fid"])
  assert fids[0] != fids[1]  # The members' samples differ, so a swap would show.


def test_results_are_ranked_by_fid_by_default(evaluated):
  _, workdir, _ = evaluated
  rows = read_results(workdir)
  fid = [float(r["eval/fid"]) for r in rows]
  assert fid == sorted(fid) and list(rows[0])[:4] == ["rank", "member", "seed", "eval/fid"]
  last = {r["member"]: r["eval/fid"] for r in _records(workdir) if "eval/fid" in r}
  assert {int(r["member"]): float(r["eval/fid"]) for r in rows} == pytest.approx(last)


@pytest.mark.parametrize("requested, available, expected", [
    ("", ["g_loss", "eval/fid"], "eval/fid"),
    ("", ["g_loss", "d_loss"], "g_loss"),
    ("fid", ["g_loss", "eval/fid"], "eval/fid"),
    ("inception_score", ["eval/inception_score"], "eval/inception_score"),
    ("d_loss", ["g_loss", "d_loss"], "d_loss"),
])
def test_resolve_metric_defaults_to_fid_and_accepts_names_without_prefix(
    requested, available, expected):
  assert sweep.resolve_metric(requested, available) == expected


def test_ranking_direction_of_evaluation_and_toy_metrics():
  assert not sweep.higher_is_better("eval/fid") and not sweep.higher_is_better("eval/kid")
  for name in ("eval/inception_score", "eval/parzen_ll", "modes_covered",
               "high_quality_pct"):
    assert sweep.higher_is_better(name), name


def test_last_records_keeps_each_metrics_latest_value_across_records(tmp_path):
  path = tmp_path / "metrics.jsonl"
  lines = [{"step": 2, "member": 0, "seed": 0, "g_loss": 1.0},
           {"step": 2, "member": 1, "seed": 1, "g_loss": 2.0},
           {"step": 2, "member": 0, "seed": 0, "eval/fid": 30.0},
           {"step": 2, "member": 1, "seed": 1, "eval/fid": 20.0},
           {"step": 3, "member": 0, "seed": 0, "g_loss": 1.5},
           {"step": 3, "member": 1, "seed": 1, "g_loss": 2.5}]
  path.write_text("".join(json.dumps(r) + "\n" for r in lines))
  final = sweep.last_records(str(path), 2, exclude=["seed"])
  np.testing.assert_array_equal(final["g_loss"], [1.5, 2.5])
  np.testing.assert_array_equal(final["eval/fid"], [30.0, 20.0])
  assert set(final) == {"g_loss", "eval/fid"}  # Tags are not metrics.
