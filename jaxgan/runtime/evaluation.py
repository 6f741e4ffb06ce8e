"""Evaluating a workdir's checkpoint (`python -m jaxgan.evaluate --workdir`).

The run is rebuilt the way training built it: its config.json (`load_run_config`), its
training split, and its trainee (jaxgan.runtime.trainees.make_trainee: a single run, or a
population for a sweep), whose initial state gives the structure the checkpoint is
restored into and whose evaluation is the --eval_every hook's (jaxgan.eval.members).
So the results equal what training wrote at that step (tested), in the same files:
WORKDIR/eval/step_<N>.json, or eval/member_<i>/step_<N>.json for each member.

`make_evaluator`, `GeneratorEval` and `results_path` live in jaxgan.eval.members; they
are importable from here too.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from jaxgan import data
from jaxgan.config import FIELDS, Config
from jaxgan.errors import EvalError
from jaxgan.eval.evaluator import Evaluator
from jaxgan.eval.members import GeneratorEval, make_evaluator, results_path
from jaxgan.runtime.trainees import make_trainee

# --------------------------------------------------------------------------- workdirs
def load_run_config(workdir: str, **overrides: Any) -> Config:
  """The Config a workdir was trained with (its config.json), with `overrides`
  (None values ignored). Keys this version does not know are ignored."""
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise EvalError(f"--workdir={workdir!r} has no config.json: expected the workdir "
                    "of a training run (python -m jaxgan.main --workdir=...).")
  with open(path) as f:
    saved = json.load(f)
  # JSON has no tuples: repeated flags (--sweep) come back as lists.
  kwargs = {k: tuple(v) if isinstance(v, list) else v
            for k, v in saved.items() if k in FIELDS}
  kwargs.update({k: v for k, v in overrides.items() if v is not None})
  return Config(**kwargs).validate()


def restore_checkpoint(init: Any, workdir: str, step: int | None) -> tuple[Any, int]:
  """(state, step) of the checkpoint at `step` of workdir (None: the latest), restored
  into `init`'s structure; step 0 without a checkpoint is `init` itself."""
  from jaxgan.runtime.checkpoint import Checkpoints
  directory = os.path.join(workdir, "checkpoints")
  steps = []
  if os.path.isdir(directory):
    ckpts = Checkpoints(directory)
    steps = ckpts.all_steps()
    if (step is None and steps) or step in steps:
      step = ckpts.latest_step() if step is None else step
      state = ckpts.restore(init, step)
      ckpts.close()
      return state, step
    ckpts.close()
  if step == 0:
    return init, 0
  raise EvalError(f"--workdir={workdir!r} has no checkpoint"
                  + (f" at step {step}" if step is not None else "")
                  + f"; its checkpoints are at steps {sorted(steps)} (or --step=0 for "
                  "the untrained generator).")


def evaluate_checkpoint(config: Config, workdir: str, step: int | None,
                        evaluator: Evaluator | None = None) -> list[dict[str, Any]]:
  """Evaluates the checkpoint at `step` of workdir (None: the latest; step 0 without a
  checkpoint: the untrained initial state, as training starts from the seed and the
  training split) with the trainee training made; writes the results and returns them,
  one per member (a single run: one)."""
  train = data.load_training_split(config)
  evaluator = evaluator or make_evaluator(config, train)
  # --mesh_shape says where training ran; evaluation runs on this machine's devices.
  trainee = make_trainee(dataclasses.replace(config, mesh_shape=""), train, evaluator)
  state, step = restore_checkpoint(trainee.initial_state(train.images), workdir, step)
  return trainee.evaluation_results(state, step, workdir)


def evaluate_workdir(config: Config, workdir: str, step: int | None,
                     evaluator: Evaluator | None = None) -> dict[str, Any]:
  """Evaluates the checkpoint at `step` of a single run's workdir; writes
  eval/step_<step>.json."""
  if config.sweep:
    raise EvalError(f"--workdir={workdir!r} holds a sweep: evaluate_population_workdir "
                    "evaluates its members.")
  return evaluate_checkpoint(config, workdir, step, evaluator)[0]


def evaluate_population_workdir(config: Config, workdir: str, step: int | None,
                                evaluator: Evaluator | None = None
                                ) -> list[dict[str, Any]]:
  """Evaluates every member of a sweep's checkpoint at `step`; writes
  eval/member_<i>/step_<step>.json and returns the members' results in member order
  (each member with the noise its single run would use, as during training)."""
  if not config.sweep:
    raise EvalError(f"--workdir={workdir!r} holds a single run, not a sweep: "
                    "evaluate_workdir evaluates it.")
  return evaluate_checkpoint(config, workdir, step, evaluator)


__all__ = ["GeneratorEval", "evaluate_checkpoint", "evaluate_population_workdir",
           "evaluate_workdir", "load_run_config", "make_evaluator", "restore_checkpoint",
           "results_path"]
