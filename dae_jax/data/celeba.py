"""CelebA through TFDS, from a ``celeb_a`` dataset already prepared on this machine.

Training never downloads: when the data is missing this fails within a second (before TensorFlow is even
imported) and says how to get it, and how to run the offline demo instead.
"""

import glob
import os

import numpy as np

from dae_jax.errors import InputError

# score_sde's CelebA 64x64 crop: a centred 140x140 window of the 218x178 aligned images.
CROP_TOP, CROP_LEFT, CROP_SIZE = 39, 19, 140


def _data_dir(data_dir: str) -> str:
  return os.path.expanduser(data_dir or os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets"))


def locate(data_dir: str) -> str:
  """The prepared ``celeb_a`` version directory under ``data_dir``, or an InputError saying how to get one."""
  root = _data_dir(data_dir)
  prepared = sorted(glob.glob(os.path.join(root, "celeb_a", "*", "dataset_info.json")))
  if prepared:
    return os.path.dirname(prepared[-1])
  raise InputError(
      f"CelebA is not prepared in data.data_dir={root!r} (looked for {root}/celeb_a/<version>/dataset_info.json). "
      f"Put the 5 original CelebA files in {root}/downloads/manual/ and run "
      f"`python -c \"import tensorflow_datasets as tfds; tfds.builder('celeb_a', data_dir='{root}')"
      f".download_and_prepare()\"`, or set --config.data.data_dir; "
      f"to try dae_jax offline now, run the demo: --config=configs/daae.py:demo")


def load(data_config) -> np.ndarray:
  """The configured split, centre-cropped and resized with antialiasing, as float32 [N, S, S, 3] in [0, 1]."""
  version_dir = locate(data_config.data_dir)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (slow; only when CelebA is really there)
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  size = data_config.image_size

  def preprocess(example):
    image = example["image"][CROP_TOP:CROP_TOP + CROP_SIZE, CROP_LEFT:CROP_LEFT + CROP_SIZE]
    image = tf.image.resize(tf.cast(image, tf.float32) / 255.0, (size, size), antialias=True)
    return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 1.0) * 255.0), tf.uint8)

  builder = tfds.builder_from_directory(version_dir)
  dataset = builder.as_dataset(split=data_config.split).map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
  images = np.concatenate(list(dataset.batch(1024).as_numpy_iterator()), axis=0)
  return images.astype(np.float32) / 255.0
