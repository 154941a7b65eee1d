"""Bring-your-own images: a folder of image files (searched recursively) or a .npy/.npz array."""

from collections.abc import Callable, Sequence
import os

import numpy as np
import tensorflow as tf

from dae_jax.data import preprocess
from dae_jax.errors import InputError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
ARRAY_EXTENSIONS = (".npy", ".npz")


def list_images(folder: str) -> list:
  """Every image file under ``folder``, sorted, or an InputError when there is none."""
  paths = sorted(
    os.path.join(root, name)
    for root, _, names in os.walk(folder)
    for name in names
    if name.lower().endswith(IMAGE_EXTENSIONS)
  )
  if not paths:
    raise InputError(f"data.path={folder!r} holds no images ({', '.join(IMAGE_EXTENSIONS)}, searched recursively)")
  return paths


def _read_file(path: str) -> bytes:
  with open(path, "rb") as f:
    return f.read()


def _first_unreadable(names: Sequence[str], read: Callable[[str], bytes]) -> str:
  for name in names:
    try:
      tf.io.decode_image(read(name), expand_animations=False)
    except tf.errors.OpError:
      return name
  return ""


def decode_and_resize(
  names: Sequence[str], read: Callable[[str], bytes], crop: int, size: int, channels: int
) -> np.ndarray:
  """uint8 [N, size, size, channels] from encoded images, streamed and decoded in parallel by tf.data.

  ``read(name)`` returns one file's bytes; a file that cannot be decoded is reported by name.
  """
  encoded = tf.data.Dataset.from_generator(
    lambda: (read(n) for n in names), output_signature=tf.TensorSpec((), tf.string)
  )
  decoded = encoded.map(
    lambda data: preprocess.to_model_size(
      tf.io.decode_image(data, channels=3, expand_animations=False), crop, size, channels
    ),
    num_parallel_calls=tf.data.AUTOTUNE,
  )
  try:
    batches = list(decoded.batch(256).prefetch(2).as_numpy_iterator())
  except tf.errors.OpError as e:
    raise _input_error(e, _first_unreadable(names, read)) from None
  return np.concatenate(batches, axis=0)


def _input_error(error: tf.errors.OpError, unreadable: str = "") -> InputError:
  """The file that failed, or (e.g. data.crop larger than the images) what the pipeline said, in one line."""
  message = error.message.strip().splitlines()[0]
  return InputError(f"cannot decode image {unreadable}: {message}" if unreadable else message)


def load_folder(folder: str, crop: int, size: int, channels: int) -> np.ndarray:
  return decode_and_resize(list_images(folder), _read_file, crop, size, channels)


def load_array(path: str, crop: int, size: int, channels: int) -> np.ndarray:
  """uint8 [N, size, size, channels] from an array of images: uint8 or float in [0, 1], NHW or NHWC."""
  array = np.load(path)
  if isinstance(array, np.lib.npyio.NpzFile):
    if len(array.files) != 1:
      raise InputError(f"data.path={path!r} holds arrays {array.files}; give a .npz with exactly one array")
    array = array[array.files[0]]
  if array.ndim == 3:
    array = array[..., None]
  if array.ndim != 4 or array.shape[-1] not in (1, 3) or array.shape[0] == 0:
    raise InputError(f"data.path={path!r} has shape {array.shape}; expected images as [N, H, W] or [N, H, W, 1|3]")
  if array.dtype != np.uint8:
    if not np.issubdtype(array.dtype, np.floating) or array.min() < 0 or array.max() > 1:
      raise InputError(f"data.path={path!r} has dtype {array.dtype}; expected uint8, or floats in [0, 1]")
    array = np.round(array * 255).astype(np.uint8)
  if array.shape[-1] == 1:
    array = np.repeat(array, 3, axis=-1)
  dataset = tf.data.Dataset.from_tensor_slices(array).map(
    lambda image: preprocess.to_model_size(image, crop, size, channels), num_parallel_calls=tf.data.AUTOTUNE
  )
  try:
    return np.concatenate(list(dataset.batch(256).as_numpy_iterator()), axis=0)
  except tf.errors.OpError as e:
    raise _input_error(e) from None


def load(path: str, crop: int, size: int, channels: int) -> np.ndarray:
  if not os.path.exists(path):
    raise InputError(f"data.path={path!r} does not exist; give a folder of images or a .npy/.npz file")
  if os.path.isdir(path):
    return load_folder(path, crop, size, channels)
  if path.lower().endswith(ARRAY_EXTENSIONS):
    return load_array(path, crop, size, channels)
  raise InputError(f"data.path={path!r} is neither a folder nor a {'/'.join(ARRAY_EXTENSIONS)} file")
