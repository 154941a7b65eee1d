"""CelebA as its original files: ``img_align_celeba.zip`` or the extracted ``img_align_celeba/`` folder.

The official split comes from ``list_eval_partition.txt`` (0 train, 1 validation, 2 test) and the 40 attributes
from ``list_attr_celeba.txt``, each looked for beside the zip/folder. Without a partition file the split is
deterministic: images sorted by name, the first 80% train, the next 10% validation, the last 10% test. Either
file missing is one warning line, since a run on the wrong split or without attributes otherwise looks normal.
"""

import os
import zipfile

from absl import logging
import numpy as np

from dae_jax.data import image_files
from dae_jax.errors import InputError

SPLITS = {"train": 0, "validation": 1, "test": 2}
PARTITION_FILE = "list_eval_partition.txt"
ATTRIBUTE_FILE = "list_attr_celeba.txt"
PARTITION_FALLBACK = "splitting by file name instead: first 80% train, next 10% validation, last 10% test"
ATTRIBUTE_FALLBACK = "loading no attributes, so eval skips the linear probe"


def _names_and_reader(path: str):
  """(sorted image names, a function reading one name's bytes) for a zip or a folder."""
  if os.path.isdir(path):
    paths = image_files.list_images(path)
    by_name = {os.path.basename(p): p for p in paths}

    def read(name):
      with open(by_name[name], "rb") as f:
        return f.read()

    return sorted(by_name), read
  if zipfile.is_zipfile(path):
    archive = zipfile.ZipFile(path)
    by_name = {os.path.basename(n): n for n in archive.namelist() if n.lower().endswith(image_files.IMAGE_EXTENSIONS)}
    if not by_name:
      raise InputError(f"data.path={path!r} is a zip with no images in it")
    return sorted(by_name), lambda name: archive.read(by_name[name])
  raise InputError(f"data.path={path!r} is neither a folder of JPEGs nor a zip (img_align_celeba.zip)")


def source_files(path: str) -> list:
  """What a prepared split is made of: the zip or folder, and the list files beside it that choose the split
  and give the attributes (named even when absent, so that one added later changes the fingerprint)."""
  directory = os.path.dirname(os.path.abspath(path))
  return [path, os.path.join(directory, PARTITION_FILE), os.path.join(directory, ATTRIBUTE_FILE)]


def read_partition(directory: str) -> dict | None:
  path = os.path.join(directory, PARTITION_FILE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return {name: int(part) for name, part in (line.split() for line in f if line.strip())}


def read_attributes(directory: str) -> tuple | None:
  """(attribute names, {image name: bool[40]}) or None when the file is absent."""
  path = os.path.join(directory, ATTRIBUTE_FILE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    lines = [line.split() for line in f if line.strip()]
  names = lines[1]
  return names, {row[0]: np.array([v == "1" for v in row[1:]], bool) for row in lines[2:]}


def select_split(names: list, partition: dict | None, split: str) -> list:
  if split not in SPLITS:
    raise InputError(f"data.split={split!r} is not allowed; choose one of {', '.join(SPLITS)}")
  if partition is not None:
    return [n for n in names if partition.get(n) == SPLITS[split]]
  train_end, validation_end = int(0.8 * len(names)), int(0.9 * len(names))
  return {"train": names[:train_end], "validation": names[train_end:validation_end], "test": names[validation_end:]}[
    split
  ]


def _warn_missing(file_name: str, directory: str, fallback: str) -> None:
  logging.warning("CelebA's %s is not in %s; %s.", file_name, directory, fallback)


def load(path: str, split: str, crop: int, size: int, channels: int) -> tuple:
  """(uint8 images [N, size, size, channels], bool attributes [N, 40] or None) for one split."""
  if not os.path.exists(path):
    raise InputError(f"data.path={path!r} does not exist; give img_align_celeba.zip or the img_align_celeba/ folder")
  directory = os.path.dirname(os.path.abspath(path))
  names, read = _names_and_reader(path)
  partition = read_partition(directory)
  if partition is None:
    _warn_missing(PARTITION_FILE, directory, PARTITION_FALLBACK)
  chosen = select_split(names, partition, split)
  if not chosen:
    raise InputError(f"data.split={split!r} of data.path={path!r} holds no images")
  images = image_files.decode_and_resize(chosen, read, crop, size, channels)
  attributes = read_attributes(directory)
  if attributes is None:
    _warn_missing(ATTRIBUTE_FILE, directory, ATTRIBUTE_FALLBACK)
    return images, None
  return images, np.stack([attributes[1][n] for n in chosen])
