import jax
import jax.numpy as jnp
import numpy as np

from dae_jax import corruption


def test_gaussian_noise_has_the_requested_mean_and_std():
  x = jnp.full((200, 32, 32, 1), 0.3)
  noisy = corruption.gaussian(jax.random.PRNGKey(0), x, 0.5)
  noise = np.asarray(noisy - x)
  assert abs(noise.mean()) < 0.005
  assert abs(noise.std() - 0.5) < 0.005
  assert noisy.min() < 0.0 and noisy.max() > 1.0  # Not clipped unless asked.


def test_clipping_keeps_pixels_in_the_unit_interval():
  noisy = corruption.gaussian(jax.random.PRNGKey(1), jnp.full((1000,), 0.5), 0.5, clip=True)
  assert float(noisy.min()) == 0.0 and float(noisy.max()) == 1.0


def test_same_key_same_noise_other_key_other_noise():
  x = jnp.zeros((16,))
  a = corruption.gaussian(jax.random.PRNGKey(0), x, 1.0)
  b = corruption.gaussian(jax.random.PRNGKey(0), x, 1.0)
  c = corruption.gaussian(jax.random.PRNGKey(2), x, 1.0)
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, c)


def test_copies_are_independent_corruptions_of_the_same_input():
  x = jnp.linspace(0, 1, 5000)
  copies = corruption.gaussian_copies(jax.random.PRNGKey(3), x, 0.5, 3)
  assert copies.shape == (3, 5000)
  noise = np.asarray(copies - x)
  correlation = np.corrcoef(noise)
  np.testing.assert_allclose(correlation[np.triu_indices(3, 1)], 0.0, atol=0.05)
  np.testing.assert_allclose(noise.std(axis=1), 0.5, rtol=0.05)
