"""Loss terms as plain functions of arrays; which ones a run uses is decided once, in ``objectives``.

Reconstruction losses take decoder *logits*, so BCE is computed stably (no log of a saturated sigmoid).
"""

import jax
import jax.numpy as jnp
import optax


def bce(logits: jax.Array, target: jax.Array) -> jax.Array:
  """Per-pixel binary cross-entropy of sigmoid(logits) against targets in [0, 1]."""
  return optax.sigmoid_binary_cross_entropy(logits, target)


def mse(logits: jax.Array, target: jax.Array) -> jax.Array:
  """Per-pixel squared error of sigmoid(logits)."""
  return jnp.square(jax.nn.sigmoid(logits) - target)


def sum_over_pixels(per_pixel: jax.Array) -> jax.Array:
  return per_pixel.sum(tuple(range(1, per_pixel.ndim)))


def mean_over_pixels(per_pixel: jax.Array) -> jax.Array:
  return per_pixel.mean(tuple(range(1, per_pixel.ndim)))


def kl_to_standard_normal(mean: jax.Array, log_var: jax.Array) -> jax.Array:
  """KL(N(mean, exp(log_var)) || N(0, I)) per example, shape [batch]."""
  return 0.5 * jnp.sum(jnp.square(mean) + jnp.exp(log_var) - 1.0 - log_var, axis=-1)


def discriminator(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """Mean BCE of a discriminator labelling prior samples 1 and encodings 0."""
  real = optax.sigmoid_binary_cross_entropy(real_logits, jnp.ones_like(real_logits))
  fake = optax.sigmoid_binary_cross_entropy(fake_logits, jnp.zeros_like(fake_logits))
  return real.mean() + fake.mean()


def generator(fake_logits: jax.Array) -> jax.Array:
  """Mean non-saturating loss of an encoder trying to have its encodings labelled 1."""
  return optax.sigmoid_binary_cross_entropy(fake_logits, jnp.ones_like(fake_logits)).mean()
