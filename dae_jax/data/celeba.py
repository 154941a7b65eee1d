"""CelebA through TFDS: a ``celeb_a`` dataset already prepared under ``data.data_dir``.

Training never downloads: when the data is missing this fails within a second (before TensorFlow is even
imported), naming where it looked and how to get it, and how to run the offline demo instead. TensorFlow comes
with the ``tfds`` extra and is imported here only; without it this source is one line naming the extra.
"""

import functools
import glob
import importlib.util
import os

from absl import logging
import numpy as np

from dae_jax.data import image_files
from dae_jax.errors import InputError

SPLITS = ("train", "validation", "test")
NEEDS_TENSORFLOW = (
  "data.source='celeba' needs TensorFlow: pip install 'dae_jax[tfds]' (or use data.source=celeba_files "
  "with data.path=.../img_align_celeba.zip, which needs no TensorFlow)"
)


def data_dir(configured: str) -> str:
  return os.path.abspath(os.path.expanduser(configured or os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")))


def locate(configured: str) -> str:
  """The prepared ``celeb_a`` version directory, or an InputError saying how to get one."""
  root = data_dir(configured)
  prepared = sorted(glob.glob(os.path.join(root, "celeb_a", "*", "dataset_info.json")))
  if prepared:
    return os.path.dirname(prepared[-1])
  raise InputError(
    f"CelebA is not prepared in data.data_dir={root!r} (looked for {root}/celeb_a/<version>/dataset_info.json). "
    f"Put the 5 original CelebA files in {root}/downloads/manual/ and run "
    f"`python -c \"import tensorflow_datasets as tfds; tfds.builder('celeb_a', data_dir='{root}')"
    f'.download_and_prepare()"`, or train from the files themselves with --config.data.source=celeba_files '
    f"--config.data.path=.../img_align_celeba.zip; to try dae_jax offline now, run the demo: "
    f"--config=configs/daae.py:demo"
  )


def tensorflow_installed() -> bool:
  """Whether TensorFlow could be imported, found without importing it (that takes seconds)."""
  try:
    return importlib.util.find_spec("tensorflow") is not None
  except ImportError:
    return False


def _import_tensorflow():
  """TensorFlow, with every accelerator hidden from it so that it never takes memory JAX needs."""
  try:
    import tensorflow as tf
  except ImportError:
    raise InputError(NEEDS_TENSORFLOW) from None
  for kind in ("GPU", "TPU"):
    try:
      tf.config.set_visible_devices([], kind)
    except RuntimeError:  # TensorFlow already ran an op in this process; its devices are fixed by then.
      logging.warning("TensorFlow was already initialised; it may hold %s memory that JAX needs.", kind)
  return tf


def check_available(configured: str) -> None:
  """Fails within a second, before TensorFlow is imported, when TensorFlow or the prepared data is missing."""
  if not tensorflow_installed():
    raise InputError(NEEDS_TENSORFLOW)
  locate(configured)


def load(configured: str, split: str, crop: int, size: int, channels: int) -> tuple:
  """(uint8 images [N, size, size, channels], bool attributes [N, 40] in TFDS's order) of one split.

  TFDS only reads the records: its JPEG bytes are decoded and resized by ``image_files``, as every other source
  is, so ``celeba`` and ``celeba_files`` give the same pixels for the same files.
  """
  if split not in SPLITS:
    raise InputError(f"data.split={split!r} is not allowed; choose one of {', '.join(SPLITS)}")
  version_dir = locate(configured)
  _import_tensorflow()
  import tensorflow_datasets as tfds

  builder = tfds.builder(f"celeb_a:{os.path.basename(version_dir)}", data_dir=data_dir(configured))
  examples = builder.as_dataset(
    split=split, shuffle_files=False, decoders={"image": tfds.decode.SkipDecoding()}
  ).as_numpy_iterator()
  attributes = []
  images = image_files.preprocess_all(_decoders(examples, split, attributes), crop, size, channels)
  return images, np.array(attributes, dtype=bool)


def _decoders(examples, split: str, attributes: list):
  """``(name, decode)`` per example for ``image_files.preprocess_all``; each example's attributes (sorted by
  name) are appended to ``attributes`` as it goes by, so both stay in the same order."""
  for i, example in enumerate(examples):
    attributes.append([example["attributes"][k] for k in sorted(example["attributes"])])
    name = f"celeb_a {split}[{i}]"
    yield name, functools.partial(image_files.decode, example["image"], name)
