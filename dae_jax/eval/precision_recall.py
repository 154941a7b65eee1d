"""Improved precision and recall (Kynkaanniemi et al. 2019) and the mean pairwise distance of a sample set.

Each set's manifold is the union of balls around its points, each ball reaching the point's k-th nearest
neighbour in its own set (k = 3 as in the paper). Precision is the fraction of samples inside the reference
manifold (are the samples plausible?); recall the fraction of reference images inside the samples' manifold (do
the samples cover the data?). A collapsed set, every sample one real image, has precision 1 and recall near 0;
SWD alone can miss that. The mean pairwise distance of the samples (diversity) beside the reference's own says
the same in one number.

Feature space: each image average-pooled to at most 16x16 pixels per channel, flattened and divided by the square
root of its length, so a distance is the RMS pixel difference of the pooled images (the unit ``nearest`` uses).
It needs no download and gives one vector per image, which k-NN manifolds need. The Laplacian-pyramid patches of
``swd`` do not fit: they describe patches, not images (a set of patches from different faces can be close to one
face's), and are normalised per set, so the same image moves when the set around it changes (a collapsed set has
no spread to normalise by). What the pooled pixels see: layout, pose, shading, overall brightness at low
resolution. What they miss: fine detail and texture (a blurry face is as close as a sharp one), and anything a
few-pixel shift changes; an image counts as near only when it is near pixel for pixel, not as the same kind of
face. Distances are exact up to float32 rounding, and ties within it count as inside (identical images are 0
apart).
"""

import functools

import jax
import jax.numpy as jnp

K = 3
MAX_SIDE = 16
# float32 rounding of |a|^2 - 2ab + |b|^2 relative to the features' squared norms: a distance within it is a tie.
_TIE = 1e-6


def features(images: jax.Array) -> jax.Array:
  """[N, D] pooled pixels of images [N, H, W, C] in [0, 1], scaled so Euclidean distance is RMS difference."""
  n, h, w, c = images.shape
  factor = max(1, h // MAX_SIDE, w // MAX_SIDE)
  rows, cols = h // factor, w // factor
  cropped = images[:, : rows * factor, : cols * factor]
  pooled = cropped.reshape(n, rows, factor, cols, factor, c).mean(axis=(2, 4))
  flat = pooled.reshape(n, -1)
  return flat / jnp.sqrt(flat.shape[1])


def _squared_distances(a: jax.Array, b: jax.Array) -> jax.Array:
  squared = jnp.sum(a**2, 1)[:, None] - 2 * a @ b.T + jnp.sum(b**2, 1)[None]
  return jnp.maximum(squared, 0.0)


def _tie(reference: jax.Array, samples: jax.Array) -> jax.Array:
  return _TIE * jnp.maximum(jnp.max(jnp.sum(reference**2, 1)), jnp.max(jnp.sum(samples**2, 1)))


def knn_radii(points: jax.Array, k: int = K) -> jax.Array:
  """Squared distance of each point to its k-th nearest neighbour in the set, itself excluded (by index, so a
  duplicate of a point is at distance 0 from it)."""
  squared = _squared_distances(points, points)
  squared = jnp.where(jnp.eye(points.shape[0], dtype=bool), jnp.inf, squared)
  return -jax.lax.top_k(-squared, k)[0][:, k - 1]


def _coverage(points: jax.Array, manifold: jax.Array, radii: jax.Array, tie: jax.Array) -> jax.Array:
  """Fraction of ``points`` inside at least one ball (centre in ``manifold``, squared radius ``radii``)."""
  inside = _squared_distances(points, manifold) <= radii[None] + tie
  return jnp.mean(jnp.any(inside, axis=1))


def mean_pairwise_distance(points: jax.Array) -> jax.Array:
  """Mean Euclidean distance over distinct pairs (each unordered pair once, so a set of copies gives 0)."""
  n = points.shape[0]
  distances = jnp.where(jnp.eye(n, dtype=bool), 0.0, jnp.sqrt(_squared_distances(points, points)))
  return jnp.sum(distances) / (n * (n - 1))


def effective_k(num_reference: int, num_samples: int, k: int = K) -> int:
  """k, lowered to what the smaller set allows (each point needs k others); 0 when a set has under 2 points."""
  return max(0, min(k, num_reference - 1, num_samples - 1))


def _measures(reference: jax.Array, reference_radii: jax.Array, samples: jax.Array, k: int) -> dict:
  tie = _tie(reference, samples)
  return {
    "precision": _coverage(samples, reference, reference_radii, tie),
    "recall": _coverage(reference, samples, knn_radii(samples, k), tie),
    "diversity": mean_pairwise_distance(samples),
  }


@functools.partial(jax.jit, static_argnames="k")
def precision_recall(reference: jax.Array, samples: jax.Array, k: int = K) -> dict:
  """{"precision", "recall", "diversity"} of feature sets [N, D] and [M, D]; needs k < N and k < M."""
  return _measures(reference, knn_radii(reference, k), samples, k)


@functools.partial(jax.jit, static_argnames="k")
def along_trajectory(reference: jax.Array, trajectory: jax.Array, k: int = K) -> dict:
  """``precision_recall`` of the pooled images at every step of a trajectory [T, M, H, W, C] against reference
  features [N, D]: {"precision": [T], "recall": [T], "diversity": [T]}, in one compiled call (the reference's
  radii computed once)."""
  radii = knn_radii(reference, k)
  return jax.lax.map(lambda images: _measures(reference, radii, features(jnp.clip(images, 0, 1)), k), trajectory)
