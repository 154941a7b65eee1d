"""Sliced Wasserstein distance between image sets on Laplacian-pyramid patches (Karras et al. 2018, Sec. 5).

Each image is split into a Laplacian pyramid (levels down to 16x16); from each level, 7x7 patches are cut at
random places, normalised per channel over the whole set, and the two sets of patch descriptors are compared by
the sliced Wasserstein distance: project on random unit directions, sort, average the absolute difference.
Small is good; fine levels measure texture and detail, the coarsest one overall colour and layout. Needs no
pretrained network, so it runs offline.
"""

import jax
import jax.numpy as jnp

_BINOMIAL = jnp.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
PATCH = 7


def _blur(images: jax.Array) -> jax.Array:
  """5x5 binomial blur of [N, H, W, C], reflecting at the borders, channel by channel."""
  kernel = jnp.outer(_BINOMIAL, _BINOMIAL)[:, :, None, None]
  n, h, w, c = images.shape
  flat = jnp.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
  flat = flat.transpose(0, 3, 1, 2).reshape(n * c, h + 4, w + 4, 1)
  out = jax.lax.conv_general_dilated(flat, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return out.reshape(n, c, h, w).transpose(0, 2, 3, 1)


def _down(images: jax.Array) -> jax.Array:
  return _blur(images)[:, ::2, ::2]


def _up(images: jax.Array) -> jax.Array:
  n, h, w, c = images.shape
  upsampled = jnp.zeros((n, 2 * h, 2 * w, c), images.dtype).at[:, ::2, ::2].set(images)
  return _blur(upsampled) * 4.0


def laplacian_pyramid(images: jax.Array, min_size: int = 16) -> list:
  """Band-pass levels from the full resolution down to ``min_size``, the last one the low-pass remainder."""
  levels, current = [], images
  while current.shape[1] > min_size:
    smaller = _down(current)
    levels.append(current - _up(smaller))
    current = smaller
  return levels + [current]


def patch_descriptors(key: jax.Array, level: jax.Array, per_image: int) -> jax.Array:
  """[N * per_image, 7 * 7 * C] patches cut at random places, normalised per channel over the set."""
  n, h, w, c = level.shape
  row_key, col_key = jax.random.split(key)
  rows = jax.random.randint(row_key, (n, per_image), 0, h - PATCH + 1)
  cols = jax.random.randint(col_key, (n, per_image), 0, w - PATCH + 1)

  def cut(image, r, col):
    return jax.lax.dynamic_slice(image, (r, col, 0), (PATCH, PATCH, c))

  patches = jax.vmap(lambda image, rs, cs: jax.vmap(lambda r, col: cut(image, r, col))(rs, cs))(level, rows, cols)
  patches = patches.reshape(-1, PATCH, PATCH, c)
  patches = (patches - patches.mean(axis=(0, 1, 2))) / (patches.std(axis=(0, 1, 2)) + 1e-8)
  return patches.reshape(patches.shape[0], -1)


def _directions(key: jax.Array, dim: int, num_directions: int) -> jax.Array:
  directions = jax.random.normal(key, (dim, num_directions))
  return directions / jnp.linalg.norm(directions, axis=0, keepdims=True)


def sliced_wasserstein(key: jax.Array, a: jax.Array, b: jax.Array, num_directions: int = 128) -> jax.Array:
  """Mean over random unit directions of the 1-D Wasserstein-1 distance between projections (equal sizes)."""
  directions = _directions(key, a.shape[1], num_directions)
  return jnp.mean(jnp.abs(jnp.sort(a @ directions, axis=0) - jnp.sort(b @ directions, axis=0)))


def prepare_reference(
  key: jax.Array, images: jax.Array, patches_per_image: int = 128, num_directions: int = 128
) -> list:
  """Per pyramid level, the sorted projections of the reference set: computed once, compared with many sets.

  (Sorting dominates the cost on CPU, so a chain's curve sorts only its own samples at each step.)
  """
  reference = []
  for index, level in enumerate(laplacian_pyramid(images)):
    # The same patch places in every set (common random numbers): identical sets are exactly 0 apart, and
    # comparisons of several sets against one reference vary less.
    descriptors = patch_descriptors(jax.random.fold_in(key, index), level, patches_per_image)
    directions = _directions(jax.random.fold_in(key, 100 + index), descriptors.shape[1], num_directions)
    reference.append((directions, jnp.sort(descriptors @ directions, axis=0)))
  return reference


def swd_to_reference(key: jax.Array, reference: list, images: jax.Array, patches_per_image: int = 128) -> dict:
  """{"levels": SWD per pyramid level (finest first), "mean": their average}, x 1e3 as Karras et al. report."""
  levels = []
  for index, (level, (directions, sorted_reference)) in enumerate(zip(laplacian_pyramid(images), reference)):
    descriptors = patch_descriptors(jax.random.fold_in(key, index), level, patches_per_image)
    projected = jnp.sort(descriptors @ directions, axis=0)
    levels.append(1e3 * jnp.mean(jnp.abs(projected - sorted_reference)))
  levels = jnp.stack(levels)
  return {"levels": levels, "mean": levels.mean()}


def swd(key: jax.Array, images_a: jax.Array, images_b: jax.Array, patches_per_image: int = 128) -> dict:
  """SWD between two image sets of one shape, pixels in [0, 1]."""
  if images_a.shape != images_b.shape:
    raise ValueError(f"SWD needs two image sets of one shape, got {images_a.shape} and {images_b.shape}")
  return swd_to_reference(key, prepare_reference(key, images_b, patches_per_image), images_a, patches_per_image)
