import importlib

import pytest

from dae_jax import config_lib
from dae_jax.errors import InputError

from conftest import REPO


@pytest.mark.parametrize("name", ["dae", "dvae", "daae"])
@pytest.mark.parametrize("variant", ["", "demo", "tiny"])
def test_every_config_file_loads_and_validates(name, variant):
  config = importlib.import_module(f"configs.{name}").get_config(variant)
  config_lib.validate(config)
  assert config.model.objective == name


def test_paper_configs_are_the_papers_setup():
  config = importlib.import_module("configs.daae").get_config()
  assert (config.data.source, config.data.image_size, config.data.channels) == ("celeba", 64, 3)
  assert config.noise.sigma**2 == pytest.approx(0.25)
  assert (config.optim.learning_rate, config.optim.b1, config.optim.b2) == (2e-4, 0.5, 0.999)
  assert config.train.batch_size == 64
  assert config.train.num_steps * 64 == pytest.approx(20 * 162_770, rel=1e-3)
  assert tuple(config.model.widths) == (64, 128, 256, 512) and config.model.latent_dim == 100


@pytest.mark.parametrize(
  "field,value,message",
  [
    ("model.objective", "gan", r"model.objective='gan' is not allowed; choose one of dae, dvae, daae"),
    ("loss.reconstruction", "l1", r"loss.reconstruction='l1' is not allowed; choose one of bce, mse"),
    ("loss.reduction", "max", r"loss.reduction='max' is not allowed"),
    ("noise.sigma", 0.0, r"noise.sigma=0.0 is not allowed; it must be > 0"),
    ("noise.sigma", -0.5, r"noise.sigma=-0.5 is not allowed"),
    ("data.image_size", 48, r"data.image_size=48 is not allowed; choose one of 32, 64"),
    ("data.source", "mnist", r"data.source='mnist' is not allowed"),
    ("model.widths", (8, 16, 32, 64, 128, 256), r"do not divide data.image_size=32"),
    ("chain.batchnorm", "frozen", r"chain.batchnorm='frozen' is not allowed; choose one of batch, running"),
  ],
)
def test_bad_values_are_one_clear_line(field, value, message):
  config = importlib.import_module("configs.dae").get_config("tiny")
  group, name = field.split(".")
  config[group][name] = value
  with pytest.raises(InputError, match=message) as error:
    config_lib.validate(config)
  assert "\n" not in str(error.value)


def test_unknown_variant_is_rejected():
  with pytest.raises(InputError, match=r"config variant 'huge' is not allowed"):
    importlib.import_module("configs.dvae").get_config("huge")


def test_a_variant_that_sets_a_missing_key_is_an_error():
  config = config_lib.default_config()
  with pytest.raises(InputError, match=r"config variant 'demo' sets 'train.num_stpes', which is not a config key"):
    config_lib.with_variant(config, {"demo": {"train.num_stpes": 5}}, "demo")
  with pytest.raises(InputError, match=r"sets 'trian.num_steps'"):
    config_lib.with_variant(config, {"demo": {"trian.num_steps": 5}}, "demo")


def test_variants_override_only_what_they_name():
  config = config_lib.with_variant(config_lib.default_config(), {"x": {"train.batch_size": 8}}, "x")
  assert config.train.batch_size == 8
  assert config.train.num_steps == config_lib.default_config().train.num_steps


def test_from_file_gives_what_the_command_line_gives():
  config = config_lib.from_file(str(REPO / "configs" / "dvae.py"), "tiny")
  assert config.to_dict() == importlib.import_module("configs.dvae").get_config("tiny").to_dict()
  with pytest.raises(AttributeError):
    config.train.num_stpes = 3  # Locked, like --config.
  with pytest.raises(InputError, match=r"config file 'configs/nope.py' does not exist"):
    config_lib.from_file("configs/nope.py")
