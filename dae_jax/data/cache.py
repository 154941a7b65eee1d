"""Prepared images, stored once as a uint8 array with a manifest, and reused while the manifest still matches.

``<cache_dir>/<source>-<split>-<size>px-<channels>ch/`` holds ``images.npy`` (uint8 [N, S, S, C]), optionally
``attributes.npy`` (bool [N, 40]) and ``manifest.json`` (source, path, split, crop, size, channels, count and
the images' sha256). A manifest that differs from what the config asks for means a rebuild, never silent reuse.
Writes go to a temporary directory renamed into place, so a killed prepare leaves nothing that looks complete.
"""

from collections.abc import Callable
import hashlib
import json
import os
import shutil
import tempfile

from absl import logging
import numpy as np

MANIFEST = "manifest.json"
IMAGES = "images.npy"
ATTRIBUTES = "attributes.npy"


def entry_dir(cache_dir: str, wanted: dict) -> str:
  name = f"{wanted['source']}-{wanted['split']}-{wanted['size']}px-{wanted['channels']}ch"
  return os.path.join(os.path.expanduser(cache_dir), name)


def checksum(images: np.ndarray) -> str:
  digest = hashlib.sha256()
  for start in range(0, images.shape[0], 4096):
    digest.update(np.ascontiguousarray(images[start : start + 4096]).data)
  return digest.hexdigest()


def read_manifest(directory: str) -> dict | None:
  try:
    with open(os.path.join(directory, MANIFEST)) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def _matches(manifest: dict | None, wanted: dict) -> bool:
  return manifest is not None and all(manifest.get(k) == v for k, v in wanted.items())


def _open(directory: str) -> tuple:
  images = np.load(os.path.join(directory, IMAGES), mmap_mode="r")
  attributes_path = os.path.join(directory, ATTRIBUTES)
  attributes = np.load(attributes_path) if os.path.exists(attributes_path) else None
  return images, attributes


def _write(directory: str, wanted: dict, images: np.ndarray, attributes: np.ndarray | None) -> None:
  parent = os.path.dirname(directory)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=os.path.basename(directory) + ".tmp-", dir=parent)
  try:
    np.save(os.path.join(tmp, IMAGES), images)
    if attributes is not None:
      np.save(os.path.join(tmp, ATTRIBUTES), attributes)
    manifest = {**wanted, "count": int(images.shape[0]), "sha256": checksum(images)}
    with open(os.path.join(tmp, MANIFEST), "w") as f:
      json.dump(manifest, f, indent=2, sort_keys=True)
    stale = None
    if os.path.exists(directory):
      stale = tempfile.mkdtemp(prefix=os.path.basename(directory) + ".stale-", dir=parent)
      os.replace(directory, os.path.join(stale, "old"))
    os.replace(tmp, directory)
    if stale:
      shutil.rmtree(stale, ignore_errors=True)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise


def load_or_build(cache_dir: str, wanted: dict, build: Callable[[], tuple]) -> tuple:
  """(images, attributes) from the cache entry for ``wanted``, building it with ``build()`` when it is missing
  or its manifest differs."""
  directory = entry_dir(cache_dir, wanted)
  manifest = read_manifest(directory)
  if _matches(manifest, wanted):
    return _open(directory)
  if manifest is not None:
    differing = {k: (manifest.get(k), v) for k, v in wanted.items() if manifest.get(k) != v}
    logging.info("Rebuilding %s: the manifest differs in %s.", directory, differing)
  else:
    logging.info("Preparing %s once; later runs reuse it.", directory)
  images, attributes = build()
  _write(directory, wanted, images, attributes)
  return _open(directory)
