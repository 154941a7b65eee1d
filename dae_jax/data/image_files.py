"""Bring-your-own images: a folder of image files (searched recursively) or a .npy/.npz array.

Decoding and resizing use Pillow and NumPy only, so no source but TFDS's ``celeba`` needs TensorFlow. Every
image ends in ``to_model_size``: a centred crop, an antialiased resize, then the model's channel count.
"""

from collections.abc import Callable, Iterable, Sequence
import concurrent.futures
import io
import itertools
import os
import zipfile
import zlib

import numpy as np
from PIL import Image, UnidentifiedImageError

from dae_jax.errors import InputError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
ARRAY_EXTENSIONS = (".npy", ".npz")
# tf.image.rgb_to_grayscale's weights, kept so grey images match what the TensorFlow pipeline produced.
_GREY_WEIGHTS = np.array([0.2989, 0.5870, 0.1140], np.float32)
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")
_CHUNK = 1024  # Images in flight at once.
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
# What NumPy and zipfile raise on a damaged or truncated file.
_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


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


def _first_line(error: BaseException) -> str:
  return (str(error).strip().splitlines() or [type(error).__name__])[0]


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
    raise InputError(f"cannot decode image {name}: {_first_line(error)}") from None


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


def _check_plain_dtype(path: str, header) -> None:
  """Reads an .npy header (no data): object arrays would need unpickling, which is never done."""
  version = np.lib.format.read_magic(header)
  read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
  dtype = read(header)[2]
  if dtype.hasobject:
    raise InputError(
      f"data.path={path!r} holds an array of Python objects (dtype {dtype}), which is never unpickled; "
      "save the images as uint8, or floats in [0, 1]"
    )


def _read_npy(path: str) -> np.ndarray:
  with open(path, "rb") as header:
    _check_plain_dtype(path, header)
  return np.load(path)


def _read_npz(path: str) -> np.ndarray:
  with zipfile.ZipFile(path) as archive:
    members = archive.namelist()
    if len(members) != 1:
      names = [m.removesuffix(".npy") for m in members]
      raise InputError(f"data.path={path!r} holds arrays {names}; give a .npz with exactly one array")
    with archive.open(members[0]) as header:
      _check_plain_dtype(path, header)
  with np.load(path) as arrays:
    return arrays[arrays.files[0]]


def read_array(path: str) -> np.ndarray:
  """The array in a .npy file, or the one array in a .npz, told apart by their first bytes; an InputError
  naming the file when it is neither, is damaged or holds Python objects."""
  try:
    with open(path, "rb") as f:
      head = f.read(len(_NPY_MAGIC))
    if head == _NPY_MAGIC:
      return _read_npy(path)
    if head.startswith(_ZIP_MAGIC):
      return _read_npz(path)
  except InputError:
    raise
  except _READ_ERRORS as error:
    raise InputError(
      f"data.path={path!r} cannot be read as an array (damaged, truncated or unreadable): {_first_line(error)}"
    ) from None
  raise InputError(
    f"data.path={path!r} is neither a .npy nor a .npz file: it starts with neither NumPy's nor zip's header"
  )


def _check_unit_floats(array: np.ndarray, path: str) -> None:
  if not np.issubdtype(array.dtype, np.floating):
    raise InputError(f"data.path={path!r} has dtype {array.dtype}; expected uint8, or floats in [0, 1]")
  bad = ~np.isfinite(array)
  count = int(np.count_nonzero(bad))
  if count:
    first = tuple(int(i) for i in np.unravel_index(np.argmax(bad), array.shape))
    raise InputError(
      f"data.path={path!r} holds {count} non-finite values (NaN or inf), the first at index {first}; "
      "expected uint8, or floats in [0, 1]"
    )
  low, high = float(array.min()), float(array.max())
  if low < 0 or high > 1:
    raise InputError(f"data.path={path!r} holds floats from {low} to {high}; expected uint8, or floats in [0, 1]")


def _as_uint8_rgb(array: np.ndarray, path: str) -> np.ndarray:
  """uint8 [N, H, W, 3] from an array of images: uint8 or float in [0, 1], NHW or NHWC."""
  images = array[..., None] if array.ndim == 3 else array
  if images.ndim != 4 or images.shape[-1] not in (1, 3) or images.shape[0] == 0:
    raise InputError(f"data.path={path!r} has shape {array.shape}; expected images as [N, H, W] or [N, H, W, 1|3]")
  if images.dtype != np.uint8:
    _check_unit_floats(array, path)  # On the array as given, so an index names a place in the user's file.
    images = np.round(images * 255).astype(np.uint8)
  return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


def load_array(path: str, crop: int, size: int, channels: int) -> np.ndarray:
  """uint8 [N, size, size, channels] from an array of images: uint8 or float in [0, 1], NHW or NHWC."""
  array = _as_uint8_rgb(read_array(path), path)
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
