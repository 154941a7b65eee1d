"""train.compute_dtype="bfloat16": the networks compute in bfloat16, and everything kept or returned is float32."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dae_jax import config_lib, data, experiment, models, objectives, train
from dae_jax.data import loader
from dae_jax.errors import InputError

# bfloat16 keeps 8 significant bits: each rounding is off by up to 2^-9 ~ 0.2% relative. Measured over 6 steps
# of the tiny DAAE ("joint" scheme): the adversarial and discriminator losses (means over 8 codes) differ from
# float32's by at most 0.3%, the reconstruction loss (a float32 sum of 1,024 pixels' BCE, in which the roundings
# average out) by at most 2e-5. 2% is several times the larger, with room for other CPUs' and XLA versions'
# roundings; that bfloat16 is in effect at all is checked separately (the losses differ from float32's, the jaxpr).
LOSS_RTOL = 2e-2


def _float_dtypes(tree) -> set:
  return {str(x.dtype) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)}


def _model_config(architecture: str):
  config = config_lib.default_config()
  config.model.architecture = architecture
  config.model.widths = (8, 16)
  config.model.mlp_hidden = (32, 16)
  config.model.latent_dim = 4
  config.model.disc_hidden = (16,)
  return config.model


@pytest.mark.parametrize("architecture", ["conv", "mlp"])
@pytest.mark.parametrize("objective", ["dae", "dvae", "daae"])
def test_bfloat16_networks_keep_float32_parameters_and_return_float32(architecture, objective):
  model_config = _model_config(architecture)
  spec = objectives.OBJECTIVES[objective]
  x = jax.random.uniform(jax.random.PRNGKey(0), (4, 16, 16, 1))
  networks = {dtype: models.build(model_config, (16, 16, 1), spec, dtype) for dtype in (jnp.float32, jnp.bfloat16)}
  autoencoder, discriminator = networks[jnp.bfloat16]
  variables = autoencoder.init(jax.random.PRNGKey(1), x)
  assert _float_dtypes(variables) == {"float32"}  # Parameters and BatchNorm statistics.

  (mean, log_var), _ = autoencoder.apply(variables, x, method="encode", mutable=["batch_stats"])
  logits, mutated = autoencoder.apply(variables, x, mutable=["batch_stats"])
  assert mean.dtype == jnp.float32 and logits.dtype == jnp.float32
  assert log_var is None if objective != "dvae" else log_var.dtype == jnp.float32
  assert _float_dtypes(mutated) <= {"float32"}  # Updated statistics too (an MLP has none).
  # The insides do compute in bfloat16: the same parameters in float32 give other, close, logits.
  float32_logits, _ = networks[jnp.float32][0].apply(variables, x, mutable=["batch_stats"])
  assert not np.array_equal(logits, float32_logits)
  np.testing.assert_allclose(logits, float32_logits, rtol=0.1, atol=0.05)
  assert "bf16" in str(jax.make_jaxpr(lambda v: autoencoder.apply(v, x, mutable=["batch_stats"]))(variables))

  if discriminator is not None:
    params = discriminator.init(jax.random.PRNGKey(2), mean, deterministic=True)
    assert _float_dtypes(params) == {"float32"}
    assert discriminator.apply(params, mean, deterministic=True).dtype == jnp.float32


def _train(config, num_steps: int):
  """(metrics of each step, final state) of ``num_steps`` single training steps."""
  run = experiment.build(config)
  images = data.load_train_images(config.data)
  feeder = loader.make_feeder(images, config.seed, config.train.batch_size, run.mesh, False)
  step = train._step_functions(run, feeder)[1]
  state = experiment.initial_state(run, loader.batch_at(images, config.seed, 0, config.train.batch_size))
  history = []
  for n in range(num_steps):
    state, metrics = step(state, feeder(n), run.step_key)
    history.append(jax.device_get(metrics))
  return history, jax.device_get(state)


def test_bfloat16_training_keeps_a_float32_state_and_float32_losses_close_to_float32s(tiny_config):
  float32, _ = _train(tiny_config("daae"), 3)
  bfloat16, state = _train(tiny_config("daae", train__compute_dtype="bfloat16"), 3)
  assert _float_dtypes(state) == {"float32"}  # Parameters, Adam moments, BatchNorm statistics.
  assert int(state.step) == 3
  for step, (single, half) in enumerate(zip(float32, bfloat16, strict=True)):
    assert set(half) == {"loss", "reconstruction", "adversarial", "discriminator"}
    for name, value in half.items():
      assert value.dtype == np.float32 and np.isfinite(value), (step, name)
      np.testing.assert_allclose(value, single[name], rtol=LOSS_RTOL, err_msg=f"{name} at step {step}")
  assert any(half[name] != single[name] for single, half in zip(float32, bfloat16) for name in half)


@pytest.mark.parametrize("value", ["float16", "bf16", "int8"])
def test_an_unknown_compute_dtype_is_refused_naming_it(tiny_config, value):
  with pytest.raises(InputError) as error:
    config_lib.validate(tiny_config("daae", train__compute_dtype=value))
  assert str(error.value) == f"train.compute_dtype={value!r} is not allowed; choose one of float32, bfloat16"


@pytest.mark.parametrize("value", ["float32", "bfloat16"])
def test_the_two_compute_dtypes_pass(tiny_config, value):
  config_lib.validate(tiny_config("daae", train__compute_dtype=value))
