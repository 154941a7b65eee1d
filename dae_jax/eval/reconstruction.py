"""How well R rebuilds held-out images, clean and corrupted as in training, per pixel."""

import jax
import jax.numpy as jnp

from dae_jax import corruption, losses, sampling


def _errors(r: jax.Array, reference: jax.Array) -> dict:
  clipped = jnp.clip(r, 1e-6, 1 - 1e-6)
  logits = jnp.log(clipped) - jnp.log1p(-clipped)
  return {
    "bce_per_pixel": float(losses.bce(logits, reference).mean()),
    "mse_per_pixel": float(jnp.mean((r - reference) ** 2)),
  }


def reconstruction_errors(
  autoencoder, params, key: jax.Array, reference: jax.Array, sigma: float, latent_dim: int
) -> dict:
  """{"clean": ..., "corrupted": ...}, each with BCE and MSE per pixel of R(x) against x."""
  spec = sampling.ChainSpec()

  def reconstruct(inputs):
    return sampling.reconstruct(autoencoder, params, inputs, key, spec, latent_dim)

  return {
    "clean": _errors(reconstruct(reference), reference),
    "corrupted": _errors(reconstruct(corruption.gaussian(key, reference, sigma)), reference),
  }
