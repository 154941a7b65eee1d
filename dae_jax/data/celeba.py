"""CelebA through TFDS: a ``celeb_a`` dataset already prepared under ``data.data_dir``.

Training never downloads: when the data is missing this fails within a second (before TensorFlow is even
imported), naming where it looked and how to get it, and how to run the offline demo instead.
"""

import glob
import os

from dae_jax.errors import InputError

SPLITS = ("train", "validation", "test")


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


def load(configured: str, split: str, crop: int, size: int, channels: int) -> tuple:
  """(uint8 images [N, size, size, channels], bool attributes [N, 40] in TFDS's order) of one split."""
  import numpy as np
  import tensorflow as tf  # Slow; only when CelebA is really there.
  import tensorflow_datasets as tfds

  from dae_jax.data import preprocess

  if split not in SPLITS:
    raise InputError(f"data.split={split!r} is not allowed; choose one of {', '.join(SPLITS)}")
  version_dir = locate(configured)
  builder = tfds.builder(f"celeb_a:{os.path.basename(version_dir)}", data_dir=data_dir(configured))

  def convert(example):
    image = preprocess.to_model_size(example["image"], crop, size, channels)
    attributes = tf.stack([tf.cast(example["attributes"][k], tf.bool) for k in sorted(example["attributes"])])
    return image, attributes

  dataset = builder.as_dataset(split=split, shuffle_files=False).map(convert, num_parallel_calls=tf.data.AUTOTUNE)
  images, attributes = zip(*dataset.batch(1024).prefetch(2).as_numpy_iterator())
  return np.concatenate(images), np.concatenate(attributes)
