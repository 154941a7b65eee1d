"""Prepared images, stored once as a uint8 array with a manifest, and reused while the manifest still matches.

``<cache_dir>/<source>-<split>-<size>px-<channels>ch/`` holds ``images.npy`` (uint8 [N, S, S, C]), optionally
``attributes.npy`` (bool [N, 40]) and ``manifest.json`` (source, path, split, crop, size, channels, the source
files' count, total size, newest modification time and a digest of every file's name, size and time, then the
images' count and sha256). A manifest that differs from what the config asks for, or from the source files as
they are now (a file added, removed or replaced), means a rebuild, never silent reuse.

Writes go to a temporary directory renamed into place, so a killed prepare leaves nothing that looks complete.
The temporary directory is named after the host and pid that write it (``<entry>.tmp-<host>-<pid>-<random>``),
so one left by a killed prepare is removed by the next one on that host once its pid is gone.
"""

from collections.abc import Callable, Iterable, Sequence
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile

from absl import logging
import numpy as np

from dae_jax import storage

MANIFEST = "manifest.json"
IMAGES = "images.npy"
ATTRIBUTES = "attributes.npy"
_TEMPORARY = re.compile(r"^.+\.(?:tmp|stale)-(?P<host>.+)-(?P<pid>\d+)-[^-]+$")


def entry_dir(cache_dir: str, wanted: dict) -> str:
  name = f"{wanted['source']}-{wanted['split']}-{wanted['size']}px-{wanted['channels']}ch"
  return os.path.join(os.path.expanduser(cache_dir), name)


def checksum(images: np.ndarray) -> str:
  digest = hashlib.sha256()
  for start in range(0, images.shape[0], 4096):
    digest.update(np.ascontiguousarray(images[start : start + 4096]).data)
  return digest.hexdigest()


def _files_under(paths: Iterable[str], suffixes: Sequence[str]) -> Iterable[str]:
  """The files themselves, and for a folder every file under it whose name ends in one of ``suffixes``."""
  for path in paths:
    if os.path.isdir(path):
      for root, _, names in os.walk(path):
        yield from (os.path.join(root, n) for n in names if n.lower().endswith(tuple(suffixes)))
    elif os.path.isfile(path):
      yield path


def source_fingerprint(paths: Iterable[str], suffixes: Sequence[str]) -> dict:
  """What changes when a source file is added, removed or replaced: the files' count, total size, newest
  modification time, and a digest of each file's name, size and modification time (a replacement of the same
  size, copied with its older time kept, still changes the digest). Reads metadata only, never the pixels."""
  digest, total, newest, count = hashlib.sha256(), 0, 0, 0
  for name in sorted(_files_under(paths, suffixes)):
    stat = os.stat(name)
    digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    total, newest, count = total + stat.st_size, max(newest, stat.st_mtime_ns), count + 1
  return {"count": count, "bytes": total, "newest_mtime_ns": newest, "sha256": digest.hexdigest()}


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


def remove_orphans(parent: str) -> list:
  """Removes the temporary directories in ``parent`` that a process on this host left when it was killed, and
  returns them. Another host's are kept: from here a live writer there cannot be told from a dead one."""
  removed = []
  host = socket.gethostname()
  for name in os.listdir(parent) if os.path.isdir(parent) else ():
    match = _TEMPORARY.match(name)
    if match and match["host"] == host and not storage.alive(int(match["pid"])):
      shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
      removed.append(name)
  if removed:
    logging.warning("Removed %d temporary folder(s) of killed prepares from %s: %s.", len(removed), parent, removed)
  return removed


def _temporary_dir(directory: str, kind: str) -> str:
  prefix = f"{os.path.basename(directory)}.{kind}-{socket.gethostname()}-{os.getpid()}-"
  return tempfile.mkdtemp(prefix=prefix, dir=os.path.dirname(directory))


def _reserve(directory: str) -> str:
  """The temporary directory to build into, made before the (possibly hours long) build, so that a cache
  directory that cannot be written fails at once."""
  os.makedirs(os.path.dirname(directory), exist_ok=True)
  return _temporary_dir(directory, "tmp")


def _commit(tmp: str, directory: str, wanted: dict, images: np.ndarray, attributes: np.ndarray | None) -> None:
  np.save(os.path.join(tmp, IMAGES), images)
  if attributes is not None:
    np.save(os.path.join(tmp, ATTRIBUTES), attributes)
  manifest = {**wanted, "count": int(images.shape[0]), "sha256": checksum(images)}
  with open(os.path.join(tmp, MANIFEST), "w") as f:
    json.dump(manifest, f, indent=2, sort_keys=True)
  stale = None
  if os.path.exists(directory):
    stale = _temporary_dir(directory, "stale")
    os.replace(directory, os.path.join(stale, "old"))
  os.replace(tmp, directory)
  if stale:
    shutil.rmtree(stale, ignore_errors=True)


def _commit_or_explain(cache_dir: str, tmp: str, directory: str, wanted: dict, images, attributes) -> None:
  try:
    _commit(tmp, directory, wanted, images, attributes)
  except OSError as error:  # A full disk, most often: it is the cache directory's, not the source's.
    raise storage.unwritable("data.cache_dir", cache_dir, error) from None


def _log_why(directory: str, manifest: dict | None, wanted: dict) -> None:
  if manifest is None:
    logging.info("Preparing %s once; later runs reuse it.", directory)
    return
  differing = {k: (manifest.get(k), v) for k, v in wanted.items() if manifest.get(k) != v}
  logging.info("Rebuilding %s: the manifest differs in %s.", directory, differing)


def load_or_build(cache_dir: str, wanted: dict, build: Callable[[], tuple]) -> tuple:
  """(images, attributes) from the cache entry for ``wanted``, building it with ``build()`` when it is missing
  or its manifest differs. A cache directory that cannot be created or written is an InputError naming it."""
  directory = entry_dir(cache_dir, wanted)
  remove_orphans(os.path.dirname(directory))
  manifest = read_manifest(directory)
  if _matches(manifest, wanted):
    return _open(directory)
  _log_why(directory, manifest, wanted)
  try:
    tmp = _reserve(directory)
  except OSError as error:
    raise storage.unwritable("data.cache_dir", cache_dir, error) from None
  try:
    images, attributes = build()
    _commit_or_explain(cache_dir, tmp, directory, wanted, images, attributes)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)  # Gone already when the commit renamed it into place.
  return _open(directory)
