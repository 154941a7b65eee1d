"""Image grids and PNG files. Pure array code plus one atomic file write; no model code here."""

import os
import tempfile
from typing import Sequence

import numpy as np
from PIL import Image

_BORDER = 2
_MIN_TILE_PIXELS = 64  # Small images are enlarged (nearest neighbour) so a 32x32 face is visible.


def grid(tiles: np.ndarray) -> np.ndarray:
  """uint8 [rows * (h + b) + b, cols * (w + b) + b, 3] from tiles [rows, cols, h, w, c] in [0, 1]."""
  tiles = np.clip(np.asarray(tiles, np.float32), 0.0, 1.0)
  rows, cols, height, width, channels = tiles.shape
  scale = max(1, -(-_MIN_TILE_PIXELS // height))
  tiles = tiles.repeat(scale, axis=2).repeat(scale, axis=3)
  if channels == 1:
    tiles = np.repeat(tiles, 3, axis=-1)
  height, width = height * scale, width * scale
  canvas = np.ones((rows * (height + _BORDER) + _BORDER, cols * (width + _BORDER) + _BORDER, 3), np.float32)
  for r in range(rows):
    for c in range(cols):
      top, left = _BORDER + r * (height + _BORDER), _BORDER + c * (width + _BORDER)
      canvas[top:top + height, left:left + width] = tiles[r, c]
  return np.round(canvas * 255).astype(np.uint8)


def chain_grid(trajectory: np.ndarray, steps: Sequence[int]) -> np.ndarray:
  """One row per chain, one column per chosen step, from a trajectory [T, chains, h, w, c]."""
  return grid(np.swapaxes(np.asarray(trajectory)[list(steps)], 0, 1))


def save_png(path: str, image: np.ndarray) -> None:
  """Writes atomically: a reader never sees half a PNG."""
  directory = os.path.dirname(path) or "."
  os.makedirs(directory, exist_ok=True)
  with tempfile.NamedTemporaryFile(dir=directory, suffix=".png.tmp", delete=False) as f:
    Image.fromarray(image).save(f, format="PNG")
  os.replace(f.name, path)
