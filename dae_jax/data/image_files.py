"""Bring-your-own images: a folder of image files (searched recursively) or a .npy/.npz array.

Decoding and resizing use Pillow and NumPy only, so no source but TFDS's ``celeba`` needs TensorFlow. Every
image ends in ``to_model_size``: a centred crop, an antialiased resize, then the model's channel count.
"""

from collections.abc import Callable, Iterable, Sequence
import concurrent.futures
import io
import itertools
import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from dae_jax.errors import InputError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
ARRAY_EXTENSIONS = (".npy", ".npz")
# tf.image.rgb_to_grayscale's weights, kept so grey images match what the TensorFlow pipeline produced.
_GREY_WEIGHTS = np.array([0.2989, 0.5870, 0.1140], np.float32)
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")
_CHUNK = 1024  # Images in flight at once.


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


def center_crop(image: np.ndarray, crop: int, name: str = "") -> np.ndarray:
  """The centred ``crop`` x ``crop`` window; ``crop = 0`` takes the largest centred square."""
  height, width = image.shape[:2]
  size = min(height, width) if crop == 0 else crop
  if size > min(height, width):
    where = f" {name}" if name else ""
    raise InputError(
      f"data.crop={crop} is larger than the image{where} ({height}x{width}); "
      f"use at most {min(height, width)}, or 0 for the largest centred square"
    )
  top, left = (height - size) // 2, (width - size) // 2
  return image[top : top + size, left : left + size]


def resize(image: np.ndarray, size: int) -> np.ndarray:
  """Antialiased bilinear resize of a uint8 [H, W, C] image to ``size`` x ``size``, returned as uint8.

  Each channel is resized as a float32 image (Pillow mode "F"): Pillow's bilinear filter widens with the
  downscale factor, which is the antialiasing tf.image.resize(antialias=True) did, and float keeps it from
  rounding between the horizontal and vertical passes.
  """
  channels = [
    np.asarray(Image.fromarray(image[..., c].astype(np.float32), mode="F").resize((size, size), Image.BILINEAR))
    for c in range(image.shape[-1])
  ]
  return np.round(np.clip(np.stack(channels, axis=-1), 0.0, 255.0)).astype(np.uint8)


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
  """Grey <-> RGB so every image has the model's channel count."""
  if image.shape[-1] == channels:
    return image
  if channels == 1:
    return np.round(image.astype(np.float32) @ _GREY_WEIGHTS)[..., None].astype(np.uint8)
  return np.repeat(image, 3, axis=-1)


def to_model_size(image: np.ndarray, crop: int, size: int, channels: int, name: str = "") -> np.ndarray:
  """uint8 [H, W, C] -> uint8 [size, size, channels]; ``name`` only says which image a bad crop came from."""
  return to_channels(resize(center_crop(image, crop, name), size), channels)


def decode(data: bytes, name: str) -> np.ndarray:
  """uint8 [H, W, 3] from an encoded image (the first frame of a GIF), or an InputError naming the file."""
  try:
    with Image.open(io.BytesIO(data)) as image:
      if image.mode in _SIXTEEN_BIT_MODES:
        # The high byte, as TensorFlow's uint16 -> uint8 conversion did; convert("RGB") would clip instead.
        grey = (np.asarray(image).astype(np.uint32) >> 8).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
      return np.asarray(image.convert("RGB"))
  except (UnidentifiedImageError, OSError, ValueError) as error:
    message = (str(error).strip().splitlines() or [type(error).__name__])[0]
    raise InputError(f"cannot decode image {name}: {message}") from None


def preprocess_all(images: Iterable, crop: int, size: int, channels: int) -> np.ndarray:
  """uint8 [N, size, size, channels] from ``(name, load)`` pairs, ``load()`` giving one uint8 [H, W, C] image.

  Pillow releases the GIL while it decodes and resizes, so a thread pool uses every core. ``pool.map`` takes
  its whole input at once, so it is fed in chunks: a streamed source then holds one chunk in memory, not all.
  """

  def prepare(item):
    name, load_one = item
    return to_model_size(load_one(), crop, size, channels, name)

  items, chunks = iter(images), []
  with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
    while chunk := list(itertools.islice(items, _CHUNK)):
      chunks.append(np.stack(list(pool.map(prepare, chunk))))
  return np.concatenate(chunks) if chunks else np.zeros((0, size, size, channels), np.uint8)


def decode_and_resize(
  names: Sequence[str], read: Callable[[str], bytes], crop: int, size: int, channels: int
) -> np.ndarray:
  """uint8 [N, size, size, channels] from encoded images, decoded in parallel.

  ``read(name)`` returns one file's bytes; a file that cannot be decoded is reported by name.
  """
  items = ((name, lambda name=name: decode(read(name), name)) for name in names)
  return preprocess_all(items, crop, size, channels)


def _read_file(path: str) -> bytes:
  with open(path, "rb") as f:
    return f.read()


def load_folder(folder: str, crop: int, size: int, channels: int) -> np.ndarray:
  return decode_and_resize(list_images(folder), _read_file, crop, size, channels)


def _as_uint8_rgb(array: np.ndarray, path: str) -> np.ndarray:
  """uint8 [N, H, W, 3] from an array of images: uint8 or float in [0, 1], NHW or NHWC."""
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
  return np.repeat(array, 3, axis=-1) if array.shape[-1] == 1 else array


def load_array(path: str, crop: int, size: int, channels: int) -> np.ndarray:
  """uint8 [N, size, size, channels] from an array of images: uint8 or float in [0, 1], NHW or NHWC."""
  array = _as_uint8_rgb(np.load(path), path)
  items = ((f"{path}[{i}]", lambda image=image: image) for i, image in enumerate(array))
  return preprocess_all(items, crop, size, channels)


def load(path: str, crop: int, size: int, channels: int) -> np.ndarray:
  if not os.path.exists(path):
    raise InputError(f"data.path={path!r} does not exist; give a folder of images or a .npy/.npz file")
  if os.path.isdir(path):
    return load_folder(path, crop, size, channels)
  if path.lower().endswith(ARRAY_EXTENSIONS):
    return load_array(path, crop, size, channels)
  raise InputError(f"data.path={path!r} is neither a folder nor a {'/'.join(ARRAY_EXTENSIONS)} file")
