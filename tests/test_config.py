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
    ("data.source", "cifar10", r"data.source=.cifar10. is not allowed"),
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


def _float_keys(tree: dict, prefix: str = "") -> list:
  keys = []
  for name, value in tree.items():
    if isinstance(value, dict):
      keys += _float_keys(value, f"{prefix}{name}.")
    elif isinstance(value, float):
      keys.append(prefix + name)
  return keys


FLOAT_KEYS = _float_keys(config_lib.default_config().to_dict())


def test_the_defaults_have_the_float_keys_this_file_checks():
  # A new float key joins the non-finite check below by itself; this pins that the walk finds them.
  assert {"noise.sigma", "optim.learning_rate", "optim.b1", "chain.step_size", "model.disc_dropout"} <= set(FLOAT_KEYS)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("field", FLOAT_KEYS)
def test_every_non_finite_float_is_named_as_itself(field, value):
  config = importlib.import_module("configs.daae").get_config("tiny")
  group, name = field.split(".")
  config[group][name] = value
  with pytest.raises(InputError) as error:
    config_lib.validate(config)
  assert str(error.value).startswith(f"{field}={value!r} is not allowed; it must be a finite number"), error.value
  assert "\n" not in str(error.value)


def test_a_nan_sigma_says_what_is_allowed_and_does_not_blame_the_learning_rate():
  config = importlib.import_module("configs.dae").get_config("tiny")
  config.noise.sigma = float("nan")
  with pytest.raises(InputError) as error:
    config_lib.validate(config)
  assert str(error.value) == "noise.sigma=nan is not allowed; it must be a finite number > 0"


@pytest.mark.parametrize(
  "field,value,message",
  [
    ("optim.b1", 1.0, r"optim.b1=1.0 is not allowed; it must be a finite number >= 0 and < 1"),
    ("optim.b2", -0.1, r"optim.b2=-0.1 is not allowed"),
    ("model.disc_dropout", 1.5, r"model.disc_dropout=1.5 is not allowed"),
    ("eval.nguyen_step_size", 0.0, r"eval.nguyen_step_size=0.0 is not allowed; it must be > 0"),
    ("model.leaky_relu_slope", -0.2, r"model.leaky_relu_slope=-0.2 is not allowed; it must be >= 0"),
  ],
)
def test_floats_out_of_their_range_are_one_clear_line(field, value, message):
  config = importlib.import_module("configs.dvae").get_config("tiny")
  group, name = field.split(".")
  config[group][name] = value
  with pytest.raises(InputError, match=message):
    config_lib.validate(config)


def _default_with(**extra):
  config = config_lib.default_config()  # Unlocked, as inside a config file's get_config.
  for dotted, value in extra.items():
    group, _, name = dotted.rpartition("__")
    (config[group] if group else config)[name] = value
  return config


@pytest.mark.parametrize(
  "extra,message",
  [
    (
      {"model__foo": 1},
      r"config key 'model.foo' is not one dae_jax knows .*; model has architecture, code_batchnorm, disc_dropout",
    ),
    ({"model__widht": (8,)}, r"config key 'model.widht' .*; did you mean 'model.widths'\?"),
    ({"trian": 3}, r"config key 'trian' .*; did you mean 'train'\?"),
  ],
)
def test_a_key_the_defaults_do_not_know_is_an_error_naming_it(extra, message):
  with pytest.raises(InputError, match=message) as error:
    config_lib.validate(_default_with(**extra))
  assert "\n" not in str(error.value)


def test_the_known_key_check_compares_with_any_reference_tree():
  theory = importlib.import_module("configs.theory").get_config("tiny")
  config_lib.check_known_keys(theory, importlib.import_module("configs.theory").get_config())
  theory.unlock()
  theory.hiden = (4,)
  with pytest.raises(InputError, match=r"config key 'hiden' .*; did you mean 'hidden'\?"):
    config_lib.check_known_keys(theory, importlib.import_module("configs.theory").get_config())


@pytest.mark.parametrize("objective, architecture", [("dvae", "conv"), ("daae", "mlp")])
def test_a_code_batchnorm_needs_a_conv_encoder_of_one_code(objective, architecture):
  config = importlib.import_module("configs.daae").get_config("tiny")
  config.model.objective, config.model.architecture = objective, architecture
  config.model.code_batchnorm = True
  with pytest.raises(InputError, match=f"^model.code_batchnorm=True is not allowed with model.objective='{objective}'"):
    config_lib.validate(config)
  config.model.code_batchnorm = False
  config_lib.validate(config)
