"""Populations: sweep parsing and refusals, mesh validation, member == single run."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from jaxgan import data, population
from jaxgan.config import Config
from jaxgan.errors import ConfigError
from jaxgan.state import initial_state, make_gan
from jaxgan.steps import make_steps

from sweep_fixtures import tiny_config, tiny_idx_dir


# --------------------------------------------------------------------------- parsing
def test_sweep_is_the_cartesian_product_last_spec_fastest():
  members = population.make_members(Config(num_steps=1),
                                    ["lr_d=1e-4,2e-4", "seed=0,1,2"])
  assert [m.hparams for m in members] == [
      {"lr_d": 1e-4, "seed": 0}, {"lr_d": 1e-4, "seed": 1}, {"lr_d": 1e-4, "seed": 2},
      {"lr_d": 2e-4, "seed": 0}, {"lr_d": 2e-4, "seed": 1}, {"lr_d": 2e-4, "seed": 2}]
  assert [m.index for m in members] == list(range(6))
  assert members[4].config.lr_d == 2e-4 and members[4].config.seed == 1
  assert members[4].config.lr_g == Config().lr_g  # Unswept fields keep the base value.


def test_no_sweep_is_a_population_of_the_base_config():
  base = Config(num_steps=1, seed=7)
  [member] = population.make_members(base, [])
  assert member.hparams == {} and member.config == base


@pytest.mark.parametrize("spec, fragment", [
    ("model=mlp,paper_mlp", "--model cannot be swept"),
    ("batch_size=32,64", "--batch_size cannot be swept"),
    ("loss=minimax", "--loss cannot be swept"),
    ("latent_dim=10,20", "--latent_dim cannot be swept"),
    ("lr_q=1,2", "there is no flag --lr_q"),
    ("lr_d", "expected NAME=V1,V2"),
    ("lr_d=", "expected NAME=V1,V2"),
    ("lr_d=1e-4,abc", "'abc' is not a number"),
    ("seed=0,1.5", "'1.5' is not an integer"),
    ("seed=0,0", "the value 0 is repeated"),
])
def test_bad_sweep_specs_are_refused_naming_the_flag(spec, fragment):
  with pytest.raises(ConfigError, match=fragment):
    population.parse_sweep([spec])


def test_sweeping_a_flag_twice_is_refused():
  with pytest.raises(ConfigError, match="--seed is swept twice"):
    population.parse_sweep(["seed=0,1", "seed=2"])


def test_config_validate_checks_sweep_specs():
  with pytest.raises(ConfigError, match="--model cannot be swept"):
    Config(num_steps=1, sweep=("model=mlp",)).validate()


def test_sgd_learning_rate_is_refused_as_a_compiled_schedule():
  with pytest.raises(ConfigError, match="only a run-time hyperparameter with "
                     "--optimizer=adam"):
    population.make_members(Config(num_steps=1, optimizer="sgd"), ["lr_d=0.1,0.2"])


def test_an_invalid_member_value_names_the_member_and_the_flag():
  with pytest.raises(ConfigError, match=r"sweep member 1 \{'b1': 1.5\}: --b1=1.5"):
    population.make_members(Config(num_steps=1), ["b1=0.5,1.5"])


# --------------------------------------------------------------------------- mesh
def test_mesh_shape_parsing():
  assert population.parse_mesh_shape("") is None
  assert population.parse_mesh_shape("4,2") == (4, 2)
  with pytest.raises(ConfigError, match="--mesh_shape='4' is invalid"):
    population.parse_mesh_shape("4")
  with pytest.raises(ConfigError, match="--mesh_shape='0,8' is invalid"):
    population.parse_mesh_shape("0,8")


@pytest.mark.parametrize("shape, members, batch, fragment", [
    ((4, 4), 4, 8, "uses 16 devices but there are 8"),
    ((4, 2), 6, 8, r"population axis \(4\) must divide the number of sweep members \(6\)"),
    ((2, 4), 4, 6, r"data axis \(4\) must divide --batch_size=6"),
])
def test_bad_mesh_shapes_are_refused(shape, members, batch, fragment):
  with pytest.raises(ConfigError, match=fragment):
    population.choose_mesh_shape(shape, 8, members, batch)


def test_automatic_mesh_puts_members_first_then_batch():
  assert population.choose_mesh_shape(None, 8, 8, 64) == (8, 1)
  assert population.choose_mesh_shape(None, 8, 4, 64) == (4, 2)
  assert population.choose_mesh_shape(None, 8, 3, 64) == (1, 8)
  assert population.choose_mesh_shape(None, 1, 5, 7) == (1, 1)
  with pytest.raises(ConfigError, match="no mesh fits 8 devices, 3 sweep members"):
    population.choose_mesh_shape(None, 8, 3, 6)


# --------------------------------------------------------------------------- state
@pytest.mark.parametrize("optimizer, specs", [
    # Two values where it matters for member order; one elsewhere (fewer inits).
    ("adam", ["lr_g=1e-4,3e-4", "lr_d=5e-4", "b1=0.9", "b2=0.99", "seed=0,3"]),
    ("sgd", ["momentum=0.1,0.7", "seed=1,2"]),
])
def test_population_init_equals_each_members_single_run_init(tmp_path, optimizer, specs):
  cfg = tiny_config(tiny_idx_dir(str(tmp_path)), optimizer=optimizer)
  members = population.make_members(cfg, specs)
  gan = make_gan(members[0].config, (8, 8, 1))
  pop_state = population.init_population(gan, members)
  for m in (members[1], members[-1]):
    # What a single run starts from (train.run compiles the init the same way).
    single = initial_state(make_gan(m.config, (8, 8, 1)), jax.random.PRNGKey(m.config.seed))
    got = population.member_state(pop_state, m.index)
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(single)
    jax.tree_util.tree_map(np.testing.assert_array_equal, got, single)


def test_population_member_trains_like_the_single_run(tmp_path):
  cfg = tiny_config(tiny_idx_dir(str(tmp_path)))
  members = population.make_members(cfg, ["lr_d=1e-4,3e-4", "b1=0.9", "seed=0,1"])
  ds = data.load_dataset("tiny", cfg.data_dir)
  images = jax.device_put(ds.images)
  gan = make_gan(members[0].config, ds.image_shape)
  steps = make_steps(members[0].config, gan, ds.num_examples)
  mesh = population.make_mesh((1, 1), jax.devices()[:1])
  pop_step = population.make_population_step(steps.train_step, mesh)
  state = population.init_population(gan, members)
  shared_images = population.place_dataset(ds.images, mesh)
  for _ in range(3):
    state, pop_metrics = pop_step(state, shared_images)
  for m in (members[0], members[-1]):  # All-base and all-swept configs.
    single_gan = make_gan(m.config, ds.image_shape)
    single_step = jax.jit(make_steps(m.config, single_gan, ds.num_examples).train_step)
    single = single_gan.init(jax.random.PRNGKey(m.config.seed))
    for _ in range(3):
      single, metrics = single_step(single, images)
    got = population.member_state(state, m.index)
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), got, single)
    np.testing.assert_allclose(pop_metrics["g_loss"][m.index], metrics["g_loss"],
                               rtol=1e-5)
  # Members 0 and 2 differ only in lr_d: the swept value is not silently ignored.
  assert members[2].hparams == {"lr_d": 3e-4, "b1": 0.9, "seed": 0}
  d0, d4 = (jax.tree_util.tree_leaves(population.member_state(state, i).d.params)[0]
            for i in (0, 2))
  assert not np.allclose(d0, d4)
