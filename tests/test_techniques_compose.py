"""Today's techniques together in one population: DiffAugment, spectral norm on every D
layer, R1 and LeCam with their weights swept, through the training loop. A resume from a
checkpoint is bit-identical to the uninterrupted run (LeCam's anchors, spectral norm's u
and v, the hyperparameters, a diverged member's health), and a member whose D update
turns non-finite keeps its last finite state while the others train exactly as in a run
where none diverges."""

from __future__ import annotations

import logging
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.runtime import compile as compile_lib
from jaxgan.runtime import loop, trainees
from jaxgan.state import make_gan

import toolkit

THRESHOLD = 2.5e-4  # Members whose lr_d exceeds it get NaN D gradients from update 3.


def poison_d_from_update_3(monkeypatch):
  """From its 3rd update (step 3) on, the guarded D update of members whose lr_d exceeds
  THRESHOLD gets NaN gradients: what a blown-up D produces."""
  from jaxgan import steps as steps_lib
  from jaxgan.steps import gate as gate_lib
  real_propose = gate_lib.propose_update

  def propose_update(net, grads, tx, batch_stats, gate, name, loss):
    if name == "D" and isinstance(gate, steps_lib.Gate):
      lr = net.opt_state.hyperparams["learning_rate"]
      poison = jnp.where((net.opt_state.count >= 2) & (lr > THRESHOLD), jnp.nan, 0.0)
      grads = jax.tree_util.tree_map(lambda g: g + poison, grads)
    return real_propose(net, grads, tx, batch_stats, gate, name, loss)

  monkeypatch.setattr(gate_lib, "propose_update", propose_update)


def test_diffaugment_spectral_norm_r1_and_lecam_swept_resume_exactly_and_mask_divergence(
    tmp_path, monkeypatch, caplog):
  # The shrunk mlp (its code paths: SN on every D layer, G's BatchNorm), compiled as a
  # one-shot program: the four runs below share one program.
  monkeypatch.setattr(trainees, "make_gan",
                      lambda *a, **k: toolkit.shrink(make_gan(*a, **k)))
  monkeypatch.setattr(compile_lib, "step_compiler_options",
                      compile_lib.one_shot_compiler_options)
  poison_d_from_update_3(monkeypatch)
  data_dir = toolkit.write_classes_folder(str(tmp_path / "classes"))

  def config(lr_d_of_odd_members, num_steps=4):
    return toolkit.tiny_config(
        data_dir, num_steps=num_steps, checkpoint_every=2, log_every=2,
        diffaugment="color,translation,cutout", d_norm="spectral", lecam_start=1,
        sweep=("r1_gamma=0,1", "lecam_weight=0,0.5", f"lr_d=2e-4,{lr_d_of_odd_members}"))

  clean = toolkit.host_tree(loop.run(config("2.4e-4"), str(tmp_path / "clean")))
  full_dir, killed = str(tmp_path / "full"), str(tmp_path / "killed")
  full = toolkit.host_tree(loop.run(config("3e-4"), full_dir))
  at_2 = toolkit.host_tree(loop.run(config("3e-4", num_steps=2), str(tmp_path / "at_2")))

  # Each member trains with its own weights (read from the state), SN's u moved, and
  # LeCam's anchors are the EMA of D's outputs from step 1 on.
  np.testing.assert_array_equal(full.gan.hparams["r1_gamma"], [0] * 4 + [1] * 4)
  np.testing.assert_array_equal(full.gan.hparams["lecam_weight"], [0, 0, .5, .5] * 2)
  stats = jax.tree_util.tree_leaves_with_path(full.gan.d.batch_stats)
  assert any(path[-1].key == "u" for path, _ in stats)
  assert np.all(full.gan.aux["lecam"]["d_updates"] == [4, 2] * 4)

  # Odd members (lr_d 3e-4) diverged at step 3 and kept their state of step 2; the even
  # ones trained exactly as in the run where nobody diverged.
  assert full.health.diverged_at.tolist() == [-1, 3] * 4
  for i in range(8):
    member = toolkit.member(full, i)
    if i % 2:
      toolkit.assert_trees_equal((member.g, member.d, member.aux),
                                 (toolkit.member(at_2, i).g, toolkit.member(at_2, i).d,
                                  toolkit.member(at_2, i).aux))
    else:
      toolkit.assert_trees_equal(member, toolkit.member(clean, i))

  # Killed after the save of step 2: the resume trains steps 3-4 to the same bits.
  shutil.copytree(full_dir, killed)
  shutil.rmtree(os.path.join(killed, "checkpoints", "4"))
  caplog.set_level(logging.INFO, logger="absl")
  caplog.clear()
  resumed = loop.run(config("3e-4"), killed)
  toolkit.assert_resumed(caplog.text, 2, killed)
  toolkit.assert_trees_equal(resumed, full)
