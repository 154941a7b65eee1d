import numpy as np
from PIL import Image

from dae_jax import figures


def test_grid_places_each_tile_and_enlarges_small_images():
  tiles = np.zeros((2, 3, 32, 32, 1), np.float32)
  tiles[1, 2] = 1.0
  image = figures.grid(tiles)
  assert image.dtype == np.uint8 and image.shape == (2 * 66 + 2, 3 * 66 + 2, 3)
  assert image[70:130, 140:190].min() == 255  # Tile (1, 2) is white ...
  assert image[10:60, 10:60].max() == 0  # ... and tile (0, 0) black.


def test_chain_grid_rows_are_chains_and_columns_are_steps(tmp_path):
  trajectory = np.linspace(0, 1, 5)[:, None, None, None, None] * np.ones((5, 3, 4, 4, 3))
  image = figures.chain_grid(trajectory, [0, 4])
  assert image.shape == (3 * 66 + 2, 2 * 66 + 2, 3)  # three chains (rows), two steps (columns) of 64px tiles
  assert image[2:66, 2:66].max() == 0 and image[2:66, 68:132].min() == 255  # step 0 is black, step 4 white
  path = tmp_path / "sub" / "grid.png"
  figures.save_png(str(path), image)
  np.testing.assert_array_equal(np.asarray(Image.open(path)), image)
  assert [p.name for p in path.parent.iterdir()] == ["grid.png"]


def test_figure_columns():
  assert figures.columns("fig1_from_noise", 20) == [0, 10, 20]
  assert figures.columns("fig2_noise_injection", 100) == list(range(0, 101, 10))
  assert figures.columns("fig3_from_prior", 20) == [0, 4, 8, 12, 16, 20]
