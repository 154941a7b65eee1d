"""The corruption process c(x~ | x): additive Gaussian noise, kept outside the models on purpose.

The authors' code added the noise inside ``forward()``, so evaluation was silently noisy; here the step calls
corruption explicitly and sampling never does unless a chain asks for noise injection.
"""

import jax
import jax.numpy as jnp


def gaussian(key: jax.Array, x: jax.Array, sigma: float, *, clip: bool = False) -> jax.Array:
  """x + N(0, sigma^2 I); optionally clipped back to [0, 1]. ``sigma`` is the standard deviation."""
  noisy = x + sigma * jax.random.normal(key, x.shape, x.dtype)
  return jnp.clip(noisy, 0.0, 1.0) if clip else noisy


def gaussian_copies(key: jax.Array, x: jax.Array, sigma: float, num_copies: int, *, clip: bool = False) -> jax.Array:
  """``num_copies`` independent corruptions of x, stacked on a new leading axis: [M, *x.shape]."""
  keys = jax.random.split(key, num_copies)
  return jax.vmap(lambda k: gaussian(k, x, sigma, clip=clip))(keys)
