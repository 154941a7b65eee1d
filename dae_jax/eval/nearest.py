"""Distances to the nearest training image: far below the training images' own spacing means memorisation."""

import jax
import jax.numpy as jnp
import numpy as np

from dae_jax.data import loader

_CHUNK = 4096


def nearest_distances(samples: jax.Array, training: np.ndarray, exclude_self: bool = False) -> np.ndarray:
  """Per-sample RMS pixel distance to the closest training image (in chunks, so any training set fits).

  ``exclude_self`` ignores exact matches, for measuring the training images against themselves.
  """
  flat = samples.reshape(samples.shape[0], -1)
  best = jnp.full((flat.shape[0],), jnp.inf)
  for start in range(0, training.shape[0], _CHUNK):
    chunk = jnp.asarray(loader.to_pixels(np.asarray(training[start : start + _CHUNK]))).reshape(-1, flat.shape[1])
    squared = jnp.sum(flat**2, 1)[:, None] - 2 * flat @ chunk.T + jnp.sum(chunk**2, 1)[None]
    if exclude_self:
      squared = jnp.where(squared < 1e-10, jnp.inf, squared)
    best = jnp.minimum(best, squared.min(1))
  return np.sqrt(np.maximum(np.asarray(best), 0) / flat.shape[1])
