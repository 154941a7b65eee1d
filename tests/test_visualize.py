import io

import jax
import numpy as np
from PIL import Image, ImageSequence

from dae_jax import chains, experiment, figures, sampling


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


INFO = figures.FigureInfo(model="DAAE (conv, 8-d code, trained at sigma 0.5)", step=4000, data="lfw_faces 32x32x1")
FROM_NOISE = chains.Chain("noise", sampling.ChainSpec(), 20)
FROM_PRIOR = chains.Chain("prior", sampling.ChainSpec(noise_std=0.5), 20)


def _constant_chains(num_steps: int, num_chains: int, size: int = 32) -> np.ndarray:
  """Trajectory [num_steps + 1, num_chains, size, size, 1] where chain i at step t is the grey (t + i) / 255."""
  values = (np.arange(num_steps + 1)[:, None] + np.arange(num_chains)[None, :]) / 255.0
  return np.broadcast_to(values[..., None, None, None], (num_steps + 1, num_chains, size, size, 1)).astype(np.float32)


def _contains(image: np.ndarray, part: np.ndarray) -> bool:
  """Whether ``part`` appears unchanged somewhere in ``image`` (candidates: where the first tile's first pixel is)."""
  height, width = part.shape[:2]
  inner = np.nonzero(np.all(image == part[2, 2], axis=-1))
  return any(np.array_equal(image[y - 2 : y - 2 + height, x - 2 : x - 2 + width], part) for y, x in zip(*inner))


def _labels(axis) -> list:
  return [label.get_text() for label in axis.get_ticklabels()]


def test_chain_figure_says_what_it_shows_and_draws_every_pixel_as_is():
  trajectory = np.random.default_rng(0).uniform(size=(21, 3, 32, 32, 1)).astype(np.float32)
  figure = figures.chain_figure(trajectory, "fig1_from_noise", FROM_NOISE, INFO)
  [title] = [text.get_text() for text in figure.texts]
  assert title == (
    "Fig. 1: from U(0,1) noise, x ← R(x)\n"
    "DAAE (conv, 8-d code, trained at sigma 0.5), step 4000, data: lfw_faces 32x32x1"
  )
  [ax] = figure.axes
  assert _labels(ax.xaxis) == ["U(0,1)", "step 10", "step 20"]
  # Pixel for pixel: the 3 x 3 grid of enlarged tiles is in the rendered picture unchanged, nothing resampled.
  assert _contains(figures.pixels(figure), figures.grid(np.swapaxes(trajectory[[0, 10, 20]], 0, 1)))


def test_fig3_starts_from_d_of_z_and_names_its_injected_noise():
  figure = figures.chain_figure(_constant_chains(20, 2), "fig3_from_prior", FROM_PRIOR, INFO)
  assert (
    figure.texts[0].get_text().startswith("Fig. 3: from decoded prior samples d(z), z ~ N(0, I), x ← R(x + N(0, 0.5²))")
  )
  assert _labels(figure.axes[0].xaxis) == ["d(z)", "step 4", "step 8", "step 12", "step 16", "step 20"]
  nguyen = sampling.ChainSpec(step_size=0.5, step_noise_std=0.05)
  assert figures.transition(nguyen) == "x ← x + 0.5 (R(x) - x) + N(0, 0.05²)"


def test_write_pngs_writes_what_it_returns_for_tensorboard(tmp_path):
  trajectories = {"fig1_from_noise": _constant_chains(4, 2)}
  shown = figures.write_pngs(trajectories, {"fig1_from_noise": FROM_NOISE}, str(tmp_path), INFO, ("", "_step0000004"))
  for name in ("fig1_from_noise.png", "fig1_from_noise_step0000004.png"):
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / name).convert("RGB")), shown["fig1_from_noise"])


def test_eval_figure_is_an_8x8_grid_of_final_samples_over_an_8_row_strip():
  trajectory = _constant_chains(20, 64)
  finals, strip = figures.eval_figure(trajectory, "fig1_from_noise", FROM_NOISE, INFO).axes
  tile = 64 + 2  # 32x32 images are enlarged to 64 pixels, with a 2-pixel border.
  final_grid = finals.images[0].get_array()
  assert final_grid.shape == (8 * tile + 2, 8 * tile + 2, 3)
  # Tile (r, c) is chain 8 r + c at its last step, grey (20 + 8 r + c) / 255.
  assert [final_grid[2 + r * tile + 32, 2 + c * tile + 32, 0] for r, c in ((0, 0), (0, 7), (7, 7))] == [20, 27, 83]
  assert strip.images[0].get_array().shape == (8 * tile + 2, 11 * tile + 2, 3)  # 21 steps subsampled to 11.
  assert _labels(strip.xaxis) == ["U(0,1)"] + [f"step {k}" for k in range(2, 21, 2)]
  assert finals.get_title() == "final samples (step 20) of 64 chains"


def test_eval_figure_of_few_short_chains_shows_them_all():
  finals, strip = figures.eval_figure(_constant_chains(3, 3), "fig3_from_prior", FROM_PRIOR, INFO).axes
  assert finals.images[0].get_array().shape == (66 + 2, 3 * 66 + 2, 3)
  assert strip.images[0].get_array().shape == (3 * 66 + 2, 4 * 66 + 2, 3)
  assert _labels(strip.xaxis) == ["d(z)", "step 1", "step 2", "step 3"]


def test_gif_frames_differ_only_in_their_step_counter():
  gif = Image.open(io.BytesIO(figures.chain_gif(np.full((4, 8, 16, 16, 1), 0.5, np.float32))))
  frames = [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(gif)]
  assert len(frames) == 4
  band = 22  # The counter's height above the tiles.
  for earlier, later in zip(frames, frames[1:]):
    assert not np.array_equal(earlier[:band], later[:band])
    np.testing.assert_array_equal(earlier[band:], later[band:])


def test_reconstruction_figure_labels_its_three_rows():
  rows = np.stack([np.full((5, 32, 32, 1), v, np.float32) for v in (0.2, 0.5, 0.8)])
  figure = figures.reconstruction_figure(rows, 0.5, INFO)
  [ax] = figure.axes
  assert _labels(ax.yaxis) == ["x", "x + N(0, 0.5²)", "R(x + noise)"]
  assert ax.images[0].get_array().shape == (3 * 66 + 2, 5 * 66 + 2, 3)
  assert figure.texts[0].get_text().startswith("Reconstructions of 5 fixed training images\n")


def test_figure_info_of_a_run(tiny_config):
  info = figures.FigureInfo.of_run(tiny_config("dvae"), 6)
  assert info.line() == "DVAE (conv, 8-d code, trained at sigma 0.5), step 6, data: lfw_faces 32x32x1"


def test_reconstructions_corrupt_as_training_does_with_the_same_noise_each_time(tiny_config):
  config = tiny_config("dae", model__architecture="mlp")
  run = experiment.build(config)
  clean = np.random.default_rng(1).uniform(size=(4, *run.data_shape)).astype(np.float32)
  state = experiment.initial_state(run, clean)
  key = jax.random.PRNGKey(3)

  def rows():
    return chains.reconstructions(
      run.spec.autoencoder,
      state.autoencoder_variables(),
      key,
      clean,
      0.5,
      clip=False,
      spec=sampling.ChainSpec(),
      latent_dim=run.spec.latent_dim,
      mesh=run.mesh,
    )

  first = rows()
  assert first.shape == (3, 4, *run.data_shape)
  np.testing.assert_array_equal(first[0], clean)
  noise = (first[1] - clean) / 0.5  # N(0, 1) draws: 4,096 of them.
  assert abs(noise.mean()) < 0.1 and abs(noise.std() - 1) < 0.05
  assert first[2].min() >= 0 and first[2].max() <= 1  # R(x) is a sigmoid.
  np.testing.assert_array_equal(rows(), first)
