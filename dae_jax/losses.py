"""Loss terms, each a per-example value reduced by one explicit rule.

Reconstruction losses take decoder *logits* so BCE is computed stably (no log of a saturated sigmoid).
"""

import jax
import jax.numpy as jnp
import optax


def _reduce(per_pixel: jax.Array, reduction: str) -> jax.Array:
  """Per-example loss from per-pixel values: sum or mean over every non-batch axis."""
  axes = tuple(range(1, per_pixel.ndim))
  return per_pixel.sum(axes) if reduction == "sum" else per_pixel.mean(axes)


def reconstruction(logits: jax.Array, target: jax.Array, kind: str, reduction: str) -> jax.Array:
  """Per-example reconstruction loss, shape [batch]. ``kind`` is "bce" or "mse" (on sigmoid(logits))."""
  if kind == "bce":
    per_pixel = optax.sigmoid_binary_cross_entropy(logits, target)
  else:
    per_pixel = jnp.square(jax.nn.sigmoid(logits) - target)
  return _reduce(per_pixel, reduction)


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
