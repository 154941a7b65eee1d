import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dae_jax import config_lib, models, objectives


@pytest.mark.parametrize("size,channels,widths", [(32, 1, (8, 16)), (64, 3, (8, 16, 32, 64)), (32, 3, (4,))])
@pytest.mark.parametrize("objective", ["dae", "dvae", "daae"])
def test_conv_autoencoder_shapes(size, channels, widths, objective):
  config = config_lib.default_config()
  config.model.objective = objective
  config.model.widths = widths
  config.model.latent_dim = 7
  autoencoder, discriminator = models.build(
    config.model, (size, size, channels), objectives.OBJECTIVES[config.model.objective]
  )
  x = jnp.zeros((2, size, size, channels))
  variables = autoencoder.init(jax.random.PRNGKey(0), x)
  mean, log_var = autoencoder.apply(variables, x, True, method=autoencoder.encode)
  assert mean.shape == (2, 7)
  assert (log_var is not None) == (objective == "dvae")
  assert log_var is None or log_var.shape == (2, 7)
  assert autoencoder.apply(variables, x, True).shape == (2, size, size, channels)
  assert (discriminator is not None) == (objective == "daae")


def test_decoder_returns_unbounded_logits():
  config = config_lib.default_config()
  config.model.widths = (8,)
  autoencoder, _ = models.build(config.model, (32, 32, 1), objectives.OBJECTIVES[config.model.objective])
  x = jax.random.uniform(jax.random.PRNGKey(0), (4, 32, 32, 1))
  variables = autoencoder.init(jax.random.PRNGKey(1), x)
  variables = jax.tree.map(lambda p: p * 50, variables)
  logits, _ = autoencoder.apply(variables, x, False, mutable=["batch_stats"])
  assert float(logits.min()) < 0.0 or float(logits.max()) > 1.0


def test_discriminator_returns_one_logit_per_code_and_uses_dropout_only_when_training():
  config = config_lib.default_config()
  _, discriminator = models.build(config.model, (64, 64, 3), objectives.OBJECTIVES[config.model.objective])
  z = jax.random.normal(jax.random.PRNGKey(0), (5, config.model.latent_dim))
  params = discriminator.init(jax.random.PRNGKey(1), z, deterministic=True)
  assert discriminator.apply(params, z, deterministic=True).shape == (5,)
  a = discriminator.apply(params, z, deterministic=False, rngs={"dropout": jax.random.PRNGKey(2)})
  b = discriminator.apply(params, z, deterministic=False, rngs={"dropout": jax.random.PRNGKey(3)})
  assert not jnp.allclose(a, b)


@pytest.mark.parametrize("objective", ["dae", "dvae"])
def test_mlp_autoencoder_for_vector_data(objective):
  config = config_lib.default_config()
  config.model.architecture = "mlp"
  config.model.objective = objective
  config.model.mlp_hidden = (32, 16)
  config.model.latent_dim = 3
  autoencoder, _ = models.build(config.model, (16,), objectives.OBJECTIVES[config.model.objective])
  x = jnp.zeros((10, 16))
  variables = autoencoder.init(jax.random.PRNGKey(0), x)
  assert autoencoder.apply(variables, x).shape == (10, 16)
  mean, _ = autoencoder.apply(variables, x, method=autoencoder.encode)
  assert mean.shape == (10, 3)


@pytest.mark.parametrize("widths", [(8, 16), (4, 8, 12)])
def test_decoder_first_batchnorm_normalises_each_channel_of_the_map(widths):
  decoder = models.ConvDecoder(widths, 32, 1)
  z = jax.random.normal(jax.random.PRNGKey(0), (16, 5))
  variables = decoder.init(jax.random.PRNGKey(1), z, False)
  assert variables["batch_stats"]["BatchNorm_0"]["mean"].shape == (widths[-1],)  # DCGAN's, not one per output.
  _, state = decoder.apply(
    variables,
    z,
    False,
    mutable=["batch_stats", "intermediates"],
    capture_intermediates=lambda m, _: m.name == "BatchNorm_0",
  )
  (normalised,) = state["intermediates"]["BatchNorm_0"]["__call__"]
  base = 32 // 2 ** len(widths)
  assert normalised.shape == (16, base, base, widths[-1])
  # Statistics over batch and positions together: each channel is standardised, single positions are not.
  np.testing.assert_allclose(normalised.mean((0, 1, 2)), 0, atol=1e-5)
  np.testing.assert_allclose(normalised.var((0, 1, 2)), 1, atol=1e-3)
  assert float(jnp.abs(normalised.mean(0)).max()) > 0.05


def test_a_code_batchnorm_gives_every_code_dimension_the_priors_mean_and_variance():
  encoder = models.ConvEncoder((8, 16), 6, standardise_code=True)
  # Inputs far from standardised codes: an offset and a scale the dense layer carries into the code.
  x = 3.0 + 2.0 * jax.random.uniform(jax.random.PRNGKey(0), (64, 16, 16, 1))
  variables = encoder.init(jax.random.PRNGKey(1), x, False)
  assert "bias" not in variables["params"]["Dense_0"]  # The BatchNorm would remove it.
  assert set(variables["params"]) == {"DownConv_0", "DownConv_1", "BatchNorm_0", "BatchNorm_1", "Dense_0"}
  (code, log_var), _ = encoder.apply(variables, x, False, mutable=["batch_stats"])
  assert log_var is None and code.shape == (64, 6)
  np.testing.assert_allclose(np.mean(code, 0), 0, atol=1e-5)
  np.testing.assert_allclose(np.var(code, 0), 1, atol=1e-3)
  plain = models.ConvEncoder((8, 16), 6)
  plain_code, _ = plain.apply(plain.init(jax.random.PRNGKey(1), x, False), x, False, mutable=["batch_stats"])[0]
  assert float(np.abs(np.var(plain_code, 0) - 1).max()) > 0.1  # Without it, nothing standardises the code.
