import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dae_jax import experiment, sampling
from dae_jax.data import faces
from dae_jax.errors import InputError


def _affine(x, key):
  """A stub R with a known fixed point: R(x) = 0.5 x + 0.25 pulls everything to 0.5 geometrically."""
  del key
  return 0.5 * x + 0.25


def test_chain_with_a_stub_follows_the_closed_form():
  x0 = jnp.array([[0.0, 1.0, 0.2]])
  trajectory = sampling.chain(_affine, jax.random.PRNGKey(0), x0, 6, sampling.ChainSpec())
  assert trajectory.shape == (7, 1, 3)
  expected = np.stack([0.5 + (np.asarray(x0) - 0.5) * 0.5**t for t in range(7)])
  np.testing.assert_allclose(trajectory, expected, rtol=1e-6)


def test_nguyen_step_without_noise_moves_a_fraction_of_the_way():
  x0 = jnp.array([[1.0]])
  spec = sampling.ChainSpec(step_size=0.25)
  trajectory = sampling.chain(_affine, jax.random.PRNGKey(0), x0, 3, spec)
  # x + 0.25 (R(x) - x) = x - 0.125 (x - 0.5): the distance to 0.5 shrinks by 7/8 per step.
  np.testing.assert_allclose(trajectory[:, 0, 0], 0.5 + 0.5 * (7 / 8) ** np.arange(4), rtol=1e-6)


def test_noise_injection_and_step_noise_equal_a_python_loop_with_the_same_keys():
  key = jax.random.PRNGKey(3)
  x0 = jax.random.uniform(jax.random.PRNGKey(4), (2, 5))
  spec = sampling.ChainSpec(noise_std=0.3, step_size=0.5, step_noise_std=0.1)
  trajectory = sampling.chain(_affine, key, x0, 4, spec)
  x, expected = x0, [x0]
  for t in range(4):
    inject, _, step = jax.random.split(jax.random.fold_in(key, t), 3)
    r = 0.5 * (x + 0.3 * jax.random.normal(inject, x.shape)) + 0.25
    x = x + 0.5 * (r - x) + 0.1 * jax.random.normal(step, x.shape)
    expected.append(x)
  np.testing.assert_allclose(trajectory, np.stack(expected), rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def trained_dae():
  from configs import dae

  config = dae.get_config("tiny")
  config.train.num_devices = 1
  run = experiment.build(config)
  state = experiment.initial_state(run, faces.load(32, 1)[:8])
  return run, state.autoencoder_variables()


@pytest.mark.parametrize("batchnorm", ["batch", "running"])
def test_sample_chain_equals_a_python_loop_of_reconstruct(trained_dae, batchnorm):
  run, params = trained_dae
  spec = sampling.ChainSpec(batchnorm=batchnorm)
  sample_chain = sampling.make_sample_chain(run.spec.autoencoder, run.data_shape, run.spec.latent_dim, spec)
  key = jax.random.PRNGKey(0)
  x0 = sampling.uniform_noise(jax.random.PRNGKey(1), (4, 32, 32, 1))
  trajectory = jax.jit(sample_chain, static_argnums=3)(params, key, x0, 3)
  assert trajectory.shape == (4, 4, 32, 32, 1)
  x, expected = x0, [x0]
  for t in range(3):
    _, posterior_key, _ = jax.random.split(jax.random.fold_in(key, t), 3)
    x = sampling.reconstruct(run.spec.autoencoder, params, x, posterior_key, spec, run.spec.latent_dim)
    expected.append(x)
  # The scan is compiled as one program and the loop op by op: float32 rounding differs, nothing else.
  np.testing.assert_allclose(trajectory, np.stack(expected), rtol=1e-4, atol=1e-4)
  assert float(trajectory[1:].min()) >= 0.0 and float(trajectory[1:].max()) <= 1.0


def test_minibatch_statistics_make_r_depend_on_the_rest_of_the_batch(trained_dae):
  run, params = trained_dae
  x = sampling.uniform_noise(jax.random.PRNGKey(1), (4, 32, 32, 1))
  key = jax.random.PRNGKey(0)

  def first(batch, mode):
    spec = sampling.ChainSpec(batchnorm=mode)
    return sampling.reconstruct(run.spec.autoencoder, params, batch, key, spec, run.spec.latent_dim)[0]

  other = x.at[1:].set(0.0)
  assert not np.allclose(first(x, "batch"), first(other, "batch"))
  np.testing.assert_allclose(first(x, "running"), first(other, "running"), rtol=1e-6)


def test_sample_chain_is_deterministic_per_key(trained_dae):
  run, params = trained_dae
  spec = sampling.ChainSpec(noise_std=0.2)
  sample_chain = jax.jit(
    sampling.make_sample_chain(run.spec.autoencoder, run.data_shape, run.spec.latent_dim, spec), static_argnums=3
  )
  x0 = jnp.full((2, 32, 32, 1), 0.5)
  a = sample_chain(params, jax.random.PRNGKey(0), x0, 2)
  b = sample_chain(params, jax.random.PRNGKey(0), x0, 2)
  c = sample_chain(params, jax.random.PRNGKey(1), x0, 2)
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, c)
  zero = sample_chain(params, jax.random.PRNGKey(0), x0, 0)
  assert zero.shape == (1, 2, 32, 32, 1)


def test_sample_chain_rejects_bad_shapes_and_lengths(trained_dae):
  run, params = trained_dae
  sample_chain = sampling.make_sample_chain(run.spec.autoencoder, run.data_shape, run.spec.latent_dim)
  key = jax.random.PRNGKey(0)
  with pytest.raises(InputError, match=r"x0 has shape \(2, 64, 64, 3\); expected \(batch, 32, 32, 1\)"):
    sample_chain(params, key, jnp.zeros((2, 64, 64, 3)), 3)
  with pytest.raises(InputError, match=r"x0 has shape \(32, 32, 1\)"):
    sample_chain(params, key, jnp.zeros((32, 32, 1)), 3)
  with pytest.raises(InputError, match=r"n=-1 is not allowed"):
    sample_chain(params, key, jnp.zeros((2, 32, 32, 1)), -1)


def test_decode_prior_gives_images_in_the_unit_interval(trained_dae):
  run, params = trained_dae
  images = sampling.decode_prior(run.spec.autoencoder, params, jax.random.PRNGKey(0), 3, run.spec.latent_dim)
  assert images.shape == (3, 32, 32, 1)
  assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0


def test_compiled_chain_matches_sample_chain_and_compiles_once_per_model_and_spec(trained_dae):
  run, params = trained_dae
  spec = sampling.ChainSpec(noise_std=0.1)
  x0 = sampling.uniform_noise(jax.random.PRNGKey(1), (4, 32, 32, 1))
  key = jax.random.PRNGKey(2)
  expected = sampling.make_sample_chain(run.spec.autoencoder, run.data_shape, run.spec.latent_dim, spec)(
    params, key, x0, 3
  )
  before = sampling._compiled_chain._cache_size()
  for _ in range(3):  # As figures are written every N training steps: one compilation, not three.
    got = sampling.compiled_chain(run.spec.autoencoder, run.data_shape, run.spec.latent_dim, spec, params, key, x0, 3)
  assert sampling._compiled_chain._cache_size() == before + 1
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
  with pytest.raises(InputError, match="n=-2 is not allowed"):
    sampling.compiled_chain(run.spec.autoencoder, run.data_shape, run.spec.latent_dim, spec, params, key, x0, -2)


@pytest.mark.parametrize(
  "fields,message",
  [
    ({"batchnorm": "bogus"}, r"ChainSpec batchnorm='bogus' is not allowed; choose one of batch, running"),
    ({"noise_std": float("nan")}, r"ChainSpec noise_std=nan is not allowed; it must be a finite number >= 0"),
    ({"noise_std": -0.1}, r"ChainSpec noise_std=-0.1 is not allowed"),
    ({"step_noise_std": float("inf")}, r"ChainSpec step_noise_std=inf is not allowed"),
    ({"step_size": 0.0}, r"ChainSpec step_size=0.0 is not allowed; it must be a finite number > 0"),
    ({"step_size": float("nan")}, r"ChainSpec step_size=nan is not allowed"),
    ({"step_size": "1"}, r"ChainSpec step_size='1' is not allowed"),
    ({"posterior_sample": "yes"}, r"ChainSpec posterior_sample='yes' is not allowed; it must be True or False"),
  ],
)
def test_chain_spec_rejects_bad_fields_in_one_line(fields, message):
  with pytest.raises(InputError, match=message) as error:
    sampling.ChainSpec(**fields)
  assert "\n" not in str(error.value)


def test_chain_spec_accepts_ints_and_numpy_numbers_and_stays_a_hashable_value():
  spec = sampling.ChainSpec(noise_std=0, step_size=np.float32(0.5), step_noise_std=1, batchnorm="running")
  assert spec == sampling.ChainSpec(noise_std=0, step_size=np.float32(0.5), step_noise_std=1, batchnorm="running")
  assert hash(spec) == hash(sampling.ChainSpec(noise_std=0, step_size=0.5, step_noise_std=1, batchnorm="running"))


@pytest.mark.parametrize(
  "x0,message",
  [
    (np.full((2, 32, 32, 1), 128, np.uint8), r"x0 has dtype uint8; expected floats in \[0, 1\] \(for uint8 images"),
    (np.zeros((2, 32, 32, 1), np.int32), r"x0 has dtype int32"),
    (np.full((2, 32, 32, 1), 1.5, np.float32), r"x0 holds values from 1.5 to 1.5; expected floats in \[0, 1\]"),
    (np.full((2, 32, 32, 1), -0.25, np.float32), r"x0 holds values from -0.25 to -0.25"),
    (np.where(np.arange(2048).reshape(2, 32, 32, 1) == 7, np.nan, 0.5).astype(np.float32), r"x0 holds values"),
  ],
)
def test_sample_chain_rejects_x0_that_is_not_floats_in_the_unit_interval(trained_dae, x0, message):
  run, params = trained_dae
  sample_chain = sampling.make_sample_chain(run.spec.autoencoder, run.data_shape, run.spec.latent_dim)
  for given in (x0, jnp.asarray(x0)):
    with pytest.raises(InputError, match=message) as error:
      sample_chain(params, jax.random.PRNGKey(0), given, 1)
    assert "\n" not in str(error.value)
  with pytest.raises(InputError, match=message):
    sampling.compiled_chain(
      run.spec.autoencoder,
      run.data_shape,
      run.spec.latent_dim,
      sampling.ChainSpec(),
      params,
      jax.random.PRNGKey(0),
      x0,
      1,
    )


def test_under_jit_only_the_dtype_and_shape_of_x0_are_checked(trained_dae):
  run, params = trained_dae
  sample_chain = jax.jit(
    sampling.make_sample_chain(run.spec.autoencoder, run.data_shape, run.spec.latent_dim), static_argnums=3
  )
  # Values are unknown while tracing, so an out-of-range start runs (as the docstring says)...
  trajectory = sample_chain(params, jax.random.PRNGKey(0), jnp.full((2, 32, 32, 1), 1.5), 1)
  assert float(trajectory[0].max()) == 1.5
  # ...while a wrong dtype is still caught at trace time.
  with pytest.raises(InputError, match=r"x0 has dtype uint8"):
    sample_chain(params, jax.random.PRNGKey(0), jnp.zeros((2, 32, 32, 1), jnp.uint8), 1)


def test_the_unit_interval_bounds_themselves_are_allowed(trained_dae):
  run, params = trained_dae
  sample_chain = sampling.make_sample_chain(run.spec.autoencoder, run.data_shape, run.spec.latent_dim)
  x0 = jnp.concatenate([jnp.zeros((1, 32, 32, 1)), jnp.ones((1, 32, 32, 1))])
  assert sample_chain(params, jax.random.PRNGKey(0), x0, 1).shape == (2, 2, 32, 32, 1)
