"""Pictures of chains: image grids, the columns each paper figure shows, and atomic PNG and ``.npz`` writes.

Pure array code plus file writes; no model code here (``chains`` runs the chains).
"""

from collections.abc import Sequence

import numpy as np
from PIL import Image

from dae_jax import storage

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
      canvas[top : top + height, left : left + width] = tiles[r, c]
  return np.round(canvas * 255).astype(np.uint8)


def chain_grid(trajectory: np.ndarray, steps: Sequence[int]) -> np.ndarray:
  """One row per chain, one column per chosen step, from a trajectory [T, chains, h, w, c]."""
  return grid(np.swapaxes(np.asarray(trajectory)[list(steps)], 0, 1))


def columns(name: str, num_steps: int) -> list:
  """Which chain steps a figure shows: Fig. 1 noise -> x10 -> x20, Fig. 2 every tenth, others six."""
  if name == "fig1_from_noise":
    return sorted({0, num_steps // 2, num_steps})
  count = 11 if name == "fig2_noise_injection" else 6
  return sorted({int(round(s)) for s in np.linspace(0, num_steps, count)})


def save_png(path: str, image: np.ndarray) -> None:
  """Writes atomically, locally or on gs://: a reader never sees half a PNG."""
  storage.write_bytes(path, storage.encoded(Image.fromarray(image).save, format="PNG"))


def write_pngs(trajectories: dict, directory: str, suffix: str = "") -> dict:
  """Writes ``<name><suffix>.png`` grids; returns ``{name: grid}`` (uint8 [h, w, 3]) for TensorBoard."""
  grids = {}
  for name, trajectory in trajectories.items():
    grids[name] = chain_grid(trajectory, columns(name, trajectory.shape[0] - 1))
    save_png(storage.path(directory) / f"{name}{suffix}.png", grids[name])
  return grids


def write_npz(trajectories: dict, path) -> None:
  """All trajectories in one ``.npz``, written atomically."""
  storage.write_bytes(path, storage.encoded(lambda f: np.savez_compressed(f, **trajectories)))
