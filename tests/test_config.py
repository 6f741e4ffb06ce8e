"""The run configuration (jaxgan/config.py): validation that names the flag, the flags
declared from the fields and the run-length rule, the experiments' flagfiles, sweep
and mesh specs. No jax compilation: the whole module runs in seconds."""

from __future__ import annotations

import dataclasses
import glob
import os

import pytest
from absl import flags
from hypothesis import HealthCheck, given, settings, strategies as st

from jaxgan import config as config_lib
from jaxgan.config import Config
from jaxgan.errors import ConfigError
from jaxgan.sweep import population

import toolkit

FLAGFILES = sorted(glob.glob(os.path.join(toolkit.REPO, "experiments", "*.flags")))
FLAG_TYPES = {str: "string", int: "int", float: "float", bool: "bool",
              tuple: "multi string"}


def parsed_flags(argv: list[str]) -> flags.FlagValues:
  """A fresh FlagValues holding one flag per Config field, parsed from argv."""
  fv = flags.FlagValues()
  config_lib.define_flags(fv)
  fv(argv)
  return fv


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize("overrides, message", [
    (dict(num_steps=0, num_epochs=0.0), "--num_steps=0 is invalid"),
    (dict(lr_g=-1e-3), "--lr_g=-0.001 is invalid: expected a finite learning rate > 0"),
    (dict(lr_d=float("nan")), "--lr_d=nan is invalid"),
    (dict(num_d_steps=0), "--num_d_steps=0 is invalid: expected an integer >= 1"),
    (dict(latent_dim=0), "--latent_dim=0 is invalid"),
    (dict(b1=1.0), "--b1=1.0 is invalid: expected a number in [0, 1)"),
    (dict(seed=-1), "--seed=-1 is invalid"),
    (dict(num_steps=2**31), "--num_steps=2147483648 is invalid: expected at most"),
    (dict(num_steps=10, num_epochs=2.0), "contradict each other"),
    (dict(lr_decay=1.0001), "--lr_decay=1.0001 only applies to --optimizer=sgd"),
    (dict(optimizer="sgd", min_lr=1.0), "--min_lr=1.0 is invalid: expected a floor"),
    (dict(update_order="simultaneous", num_d_steps=2), "cannot be combined"),
    (dict(model="resnet9000"), "--model='resnet9000' is invalid: expected one of"),
    (dict(latent_dim="100"), "--latent_dim='100' is invalid: expected an int"),
    (dict(batch_size=True), "--batch_size=True is invalid: expected an int"),
    (dict(sample_grid=1000), "--sample_grid=1000 is invalid: expected a grid of at "
     "most 32 x 32 images"),
])
def test_invalid_config_names_the_flag(overrides, message):
  with pytest.raises(ConfigError) as info:
    Config(**{"num_steps": 10, **overrides}).validate()
  assert message in str(info.value)


@pytest.mark.parametrize("name", sorted(config_lib.MAXIMA))
def test_every_maximum_is_accepted_at_its_limit_and_refused_above(name):
  largest, _ = config_lib.MAXIMA[name]
  assert getattr(Config(num_steps=10, **{name: largest}).validate(), name) == largest
  with pytest.raises(ConfigError, match=f"--{name}={largest + 1} is invalid"):
    Config(num_steps=10, **{name: largest + 1}).validate()


def test_data_dir_with_a_toy_dataset_is_refused_naming_both_flags():
  with pytest.raises(ConfigError) as info:
    Config(dataset="toy_ring8", data_dir="/tmp/idx", num_steps=1).validate()
  message = str(info.value)
  assert "--dataset=toy_ring8 is a generated toy dataset" in message
  assert "--data_dir='/tmp/idx'" in message


def test_data_name_is_the_folders_name_with_data_dir_and_the_dataset_otherwise():
  with_dir = Config(dataset="mnist", data_dir=toolkit.FASHION_MNIST_DIR)
  assert with_dir.data_name == "fashion_mnist"
  assert Config(dataset="mnist").data_name == "mnist"
  assert Config(dataset="toy_ring8").data_name == "toy_ring8"


# --------------------------------------------------------------------------- flags
def test_define_flags_declares_each_field_with_its_type_default_and_help():
  fv = flags.FlagValues()
  config_lib.define_flags(fv)
  fields = dataclasses.fields(Config)
  assert sorted(fv) == sorted(f.name for f in fields)
  for field in fields:
    flag = fv[field.name]
    assert flag.flag_type() == FLAG_TYPES[type(field.default)], field.name
    default = list(field.default) if isinstance(field.default, tuple) else field.default
    assert flag.default == default and type(flag.default) is type(default), field.name
    # (absl appends "repeat this option ..." to a multi-string flag's help.)
    assert flag.help.startswith(field.metadata["help"]), field.name


def test_define_flags_names_declares_only_those_and_overrides_default_to_none():
  fv = flags.FlagValues()
  config_lib.define_flags(fv, names=["seed", "lr_d"], as_overrides=True)
  assert sorted(fv) == ["lr_d", "seed"]
  assert fv["seed"].default is None and fv["seed"].help.startswith(
      Config.__dataclass_fields__["seed"].metadata["help"])
  fv(["prog", "--lr_d=0.5"])
  # Unset overrides keep the Config's own value; set ones replace it.
  assert config_lib.from_flags(fv) == Config(lr_d=0.5)


def test_from_flags_round_trips_a_config():
  config = Config(dataset="fashion_mnist", model="dcgan", loss="hinge", latent_dim=7,
                  num_steps=12, lr_d=3e-4, feature_matching=True, d_norm="layer",
                  noise="uniform", seed=5, sweep=("seed=0,1", "lr_g=1e-4,2e-4"),
                  eval_parzen=False, mesh_shape="2,1")
  argv = ["prog", *toolkit.config_flags(config)]
  assert config_lib.from_flags(parsed_flags(argv), argv) == config
  assert config_lib.from_flags(parsed_flags(argv)) == config
  assert config_lib.from_flags(parsed_flags(["prog"])) == Config()


def test_later_num_steps_overrides_a_flagfiles_num_epochs(monkeypatch):
  monkeypatch.chdir(toolkit.REPO)  # The flagfile path is relative to the repository.
  argv = ["prog", "--flagfile=experiments/mnist.flags", "--num_steps=30"]
  config = config_lib.from_flags(parsed_flags(argv), argv)
  assert (config.num_steps, config.num_epochs) == (30, 0.0)
  assert config.validate().steps_for(60000) == 30


def test_later_num_epochs_overrides_an_earlier_num_steps():
  argv = ["prog", "--num_steps=5", "--num_epochs=2"]
  config = config_lib.from_flags(parsed_flags(argv), argv)
  assert (config.num_epochs, config.num_steps) == (2.0, 0)
  assert type(config.num_steps) is int


def test_a_deciding_length_of_zero_is_refused_an_overridden_one_is_not():
  # 0 is a value when it decides the length, and harmless when a later length overrides.
  argv = ["prog", "--num_epochs=2", "--num_steps=0"]
  with pytest.raises(ConfigError, match=r"^--num_steps=0 is invalid: expected a "
                     "positive number of steps"):
    config_lib.from_flags(parsed_flags(argv), argv)
  argv = ["prog", "--num_steps=0", "--num_epochs=2"]
  assert config_lib.from_flags(parsed_flags(argv), argv).num_epochs == 2.0


def test_without_the_command_line_both_run_lengths_are_a_config_error():
  argv = ["prog", "--num_steps=5", "--num_epochs=2"]
  config = config_lib.from_flags(parsed_flags(argv))
  assert (config.num_steps, config.num_epochs) == (5, 2.0)
  with pytest.raises(ConfigError) as info:
    config.validate()
  assert "--num_steps=5" in str(info.value) and "--num_epochs=2.0" in str(info.value)


# --------------------------------------------------------------------------- flagfiles
@pytest.mark.parametrize("path", FLAGFILES, ids=os.path.basename)
def test_flagfile_validates(path, monkeypatch):
  monkeypatch.chdir(toolkit.REPO)  # Nested --flagfile paths are relative to the repo.
  argv = ["prog", f"--flagfile={path}"]
  config = config_lib.from_flags(parsed_flags(argv), argv).validate()
  assert config.num_steps > 0 or config.num_epochs > 0
  with open(path) as f:
    assert f.readline().startswith("#"), "a flagfile starts with a comment: its source"


def test_there_are_flagfiles():
  assert len(FLAGFILES) >= 10


# --------------------------------------------------------------------------- fuzzing
FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def field_values(field: dataclasses.Field):
  """Values of the field's type, edge cases included, plus values of other types."""
  kind = type(field.default)
  wrong = st.one_of(st.none(), st.booleans(), st.text(max_size=5),
                    st.lists(st.integers(), max_size=2))
  if kind is bool:
    right = st.booleans()
  elif kind is int:
    right = st.one_of(st.integers(-3, 5), st.integers(-2**40, 2**40),
                      st.just(field.default))
  elif kind is float:
    right = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                      st.floats(-2.0, 2.0), st.just(field.default))
  elif kind is tuple:
    right = st.one_of(st.just(()), st.tuples(st.sampled_from(
        ["seed=0,1", "lr_d=1e-4,2e-4", "model=mlp", "seed=0,0", "b1", "lr_q=1"])))
  else:
    right = st.one_of(st.text(max_size=12), st.just(field.default),
                      st.sampled_from(["mnist", "mlp", "paper_mlp", "minimax", "sgd",
                                       "adam", "simultaneous", "g_then_d", "toy_ring8",
                                       "layer", "uniform", "4,2", ""]))
  return st.one_of(right, right, right, wrong)  # Mostly the right type.


@st.composite
def configs(draw):
  fields = dataclasses.fields(Config)
  chosen = draw(st.lists(st.sampled_from(fields), max_size=6,
                         unique_by=lambda f: f.name))
  return {f.name: draw(field_values(f)) for f in chosen}


@FUZZ
@given(configs())
def test_any_config_validates_or_raises_config_error(overrides):
  config = Config(**{"num_steps": 10, **overrides})
  try:
    config.validate()
  except ConfigError as e:
    assert str(e)  # A message, never empty.
    return
  # Valid: the loop's arithmetic works on it.
  for num_examples in (config.batch_size, 60000):
    steps = config.steps_for(num_examples)
    assert isinstance(steps, int) and steps >= 1


# --------------------------------------------------------------------------- sweeps
def members_of(base: Config, specs: list[str]) -> list[config_lib.Member]:
  return config_lib.sweep_members(dataclasses.replace(base, sweep=tuple(specs)))


def test_sweep_is_the_cartesian_product_last_spec_fastest():
  members = members_of(Config(num_steps=1), ["lr_d=1e-4,2e-4", "seed=0,1,2"])
  assert [m.hparams for m in members] == [
      {"lr_d": 1e-4, "seed": 0}, {"lr_d": 1e-4, "seed": 1}, {"lr_d": 1e-4, "seed": 2},
      {"lr_d": 2e-4, "seed": 0}, {"lr_d": 2e-4, "seed": 1}, {"lr_d": 2e-4, "seed": 2}]
  assert [m.index for m in members] == list(range(6))
  assert members[4].config.lr_d == 2e-4 and members[4].config.seed == 1
  assert members[4].config.lr_g == Config().lr_g  # Unswept fields keep the base value.


def test_no_sweep_is_a_population_of_the_base_config():
  base = Config(num_steps=1, seed=7)
  [member] = config_lib.sweep_members(base)
  assert member.index == 0 and member.hparams == {} and member.config == base


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
    config_lib.parse_sweep([spec])


def test_parse_sweep_gives_typed_values_in_order():
  assert config_lib.parse_sweep(["lr_d=1e-4, 2e-4", "seed=3,+1"]) == {
      "lr_d": [1e-4, 2e-4], "seed": [3, 1]}


def test_sweeping_a_flag_twice_is_refused():
  with pytest.raises(ConfigError, match="--seed is swept twice"):
    config_lib.parse_sweep(["seed=0,1", "seed=2"])


def test_config_validate_checks_sweep_specs():
  with pytest.raises(ConfigError, match="--model cannot be swept"):
    Config(num_steps=1, sweep=("model=mlp",)).validate()


def test_sgd_learning_rate_is_refused_as_a_compiled_schedule():
  with pytest.raises(ConfigError, match="only a run-time hyperparameter with "
                     "--optimizer=adam"):
    members_of(Config(num_steps=1, optimizer="sgd"), ["lr_d=0.1,0.2"])


def test_an_invalid_member_value_names_the_member_and_the_flag():
  with pytest.raises(ConfigError, match=r"sweep member 1 \{'b1': 1.5\}: --b1=1.5"):
    members_of(Config(num_steps=1), ["b1=0.5,1.5"])


# --------------------------------------------------------------------------- mesh
def test_mesh_shape_parsing():
  assert config_lib.parse_mesh_shape("") is None
  assert config_lib.parse_mesh_shape("4,2") == (4, 2)
  assert config_lib.parse_mesh_shape("4x2") == (4, 2)
  with pytest.raises(ConfigError, match="--mesh_shape='4' is invalid"):
    config_lib.parse_mesh_shape("4")
  with pytest.raises(ConfigError, match="--mesh_shape='0,8' is invalid"):
    config_lib.parse_mesh_shape("0,8")
  with pytest.raises(ConfigError, match="--mesh_shape='a,b' is invalid"):
    Config(num_steps=1, mesh_shape="a,b").validate()


@pytest.mark.parametrize("shape, members, batch, fragment", [
    ((4, 4), 4, 8, "uses 16 devices but there are 8"),
    ((4, 2), 6, 8, r"population axis \(4\) must divide the number of sweep members "
     r"\(6\)"),
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
  assert population.choose_mesh_shape((2, 4), 8, 4, 8) == (2, 4)
  with pytest.raises(ConfigError, match="no mesh fits 8 devices, 3 sweep members"):
    population.choose_mesh_shape(None, 8, 3, 6)
