"""Pictures of chains a reader understands without the code: titled, labelled grids, eval's final samples with a
chain strip, reconstructions, a GIF with a step counter; atomic PNG and ``.npz`` writes.

Pure array and drawing code plus file writes; no model code here (``chains`` runs the chains). Figures are
matplotlib ``Figure`` objects (no pyplot: no global figure state, no display) laid out in whole pixels, so that
every image pixel is one or more whole screen pixels (``imshow`` with nearest neighbour, never resampled).
"""

from collections.abc import Mapping, Sequence
import dataclasses
import math

from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dae_jax import storage

_BORDER = 2
_MIN_TILE_PIXELS = 64  # Small images are enlarged (nearest neighbour) so a 32x32 face is visible.

_DPI = 100
_PAD = 10  # Pixels around and between the parts of a figure.
_TITLE_POINTS, _PANEL_TITLE_POINTS, _LABEL_POINTS = 10, 9, 8
_TITLE_LINE, _PANEL_TITLE_LINE, _LABEL_LINE = 18, 18, 14  # Pixels a line of each takes, spacing included.

# The paper figure each chain name draws, by the name's first part.
_PAPER_FIGURES = {"fig1": "Fig. 1", "fig2": "Fig. 2", "fig3": "Fig. 3"}
# What a chain starts from (``chains.STARTS``): its column label, and its words in a title.
_STARTS = {"noise": ("U(0,1)", "from U(0,1) noise"), "prior": ("d(z)", "from decoded prior samples d(z), z ~ N(0, I)")}
# --mode=eval: the grid of final samples is at most this many tiles square, the strip shows this many chains and
# at most this many columns.
EVAL_GRID_SIDE, EVAL_STRIP_ROWS, EVAL_STRIP_COLUMNS = 8, 8, 11
RECONSTRUCTION_IMAGES = 8
GIF_CHAINS = 8
_GIF_BAND = 22  # Pixels above a GIF frame's tiles for its step counter.


@dataclasses.dataclass(frozen=True)
class FigureInfo:
  """What a figure's title says about the run behind it; the arrays do not know, the caller does."""

  model: str  # e.g. "DAAE (conv, 32-d code, trained at sigma 0.5)"
  step: int  # The training step of the parameters drawn.
  data: str  # e.g. "lfw_faces 32x32x1"

  @classmethod
  def of_run(cls, config, step: int) -> "FigureInfo":
    model, data = config.model, config.data
    return cls(
      model=f"{model.objective.upper()} ({model.architecture}, {model.latent_dim}-d code, "
      f"trained at sigma {config.noise.sigma:g})",
      step=int(step),
      data=f"{data.source} {data.image_size}x{data.image_size}x{data.channels}",
    )

  def line(self) -> str:
    return f"{self.model}, step {self.step}, data: {self.data}"


@dataclasses.dataclass(frozen=True)
class Panel:
  """One image of a figure with its labels: a title over it, a label over each column and beside each row."""

  image: np.ndarray  # uint8 [h, w, 3], a ``grid``.
  rows: int
  columns: int
  title: str = ""
  column_labels: Sequence[str] = ()
  row_labels: Sequence[str] = ()


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
  return spread(num_steps, count)


def spread(num_steps: int, count: int) -> list:
  """At most ``count`` steps from 0 to ``num_steps``, evenly spaced, both ends included."""
  return sorted({int(round(s)) for s in np.linspace(0, num_steps, min(count, num_steps + 1))})


def column_labels(steps: Sequence[int], start: str) -> list:
  """ "U(0,1)" or "d(z)" over the starting point, "step k" over the others."""
  return [_STARTS[start][0] if k == 0 else f"step {k}" for k in steps]


def transition(spec) -> str:
  """A ``sampling.ChainSpec`` as the formula it iterates."""
  inner = f"x + N(0, {spec.noise_std:g}²)" if spec.noise_std else "x"
  if spec.step_size == 1 and not spec.step_noise_std:
    return f"x ← R({inner})"
  moved = f"x + {spec.step_size:g} (R({inner}) - x)"
  return f"x ← {moved} + N(0, {spec.step_noise_std:g}²)" if spec.step_noise_std else f"x ← {moved}"


def chain_title(name: str, chain) -> str:
  """e.g. "Fig. 1: from U(0,1) noise, x ← R(x)", from the figure's name and its ``chains.Chain``."""
  figure = _PAPER_FIGURES.get(name.split("_")[0], name)
  return f"{figure}: {_STARTS[chain.start][1]}, {transition(chain.spec)}"


def _text_width(text: str, points: float) -> float:
  renderer = RendererAgg(1, 1, _DPI)
  return max(
    renderer.get_text_width_height_descent(line, FontProperties(size=points), False)[0] for line in text.split("\n")
  )


def _tile_centres(size: int, count: int) -> list:
  """Data coordinates (pixel centres at integers) of the middle of each of ``count`` tiles along ``size`` pixels."""
  tile = (size - _BORDER) / count - _BORDER
  return [_BORDER + i * (tile + _BORDER) + tile / 2 - 0.5 for i in range(count)]


def labelled(title: str, panels: Sequence[Panel]) -> Figure:
  """The panels stacked under a title, each image drawn pixel for pixel (its size in the PNG is its own)."""
  label_width = max((_text_width(label, _LABEL_POINTS) for p in panels for label in p.row_labels), default=0)
  label_width = math.ceil(label_width) + 6 if label_width else 0
  image_width = max(p.image.shape[1] for p in panels)
  width = max(label_width + image_width, math.ceil(_text_width(title, _TITLE_POINTS))) + 2 * _PAD
  heights = [
    (_PANEL_TITLE_LINE if p.title else 0) + (_LABEL_LINE if p.column_labels else 0) + p.image.shape[0] + _PAD
    for p in panels
  ]
  title_height = _PAD + _TITLE_LINE * len(title.split("\n")) + _PAD // 2
  height = title_height + sum(heights)
  figure = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI, facecolor="white")
  FigureCanvasAgg(figure)
  figure.suptitle(title, y=1 - _PAD / height, va="top", fontsize=_TITLE_POINTS)
  top = title_height
  for panel, panel_height in zip(panels, heights):
    left = (width - label_width - panel.image.shape[1]) // 2 + label_width
    image_top = top + panel_height - _PAD - panel.image.shape[0]
    _draw_panel(figure, panel, (left, image_top), (width, height))
    top += panel_height
  return figure


def _draw_panel(figure: Figure, panel: Panel, corner: tuple, size: tuple) -> None:
  (left, top), (width, height) = corner, size
  h, w = panel.image.shape[:2]
  ax = figure.add_axes((left / width, (height - top - h) / height, w / width, h / height))
  ax.imshow(panel.image, interpolation="nearest", aspect="auto")
  ax.xaxis.tick_top()
  ax.set_xticks(_tile_centres(w, panel.columns) if panel.column_labels else [], panel.column_labels)
  ax.set_yticks(_tile_centres(h, panel.rows) if panel.row_labels else [], panel.row_labels)
  ax.tick_params(length=0, pad=2, labelsize=_LABEL_POINTS)
  for spine in ax.spines.values():
    spine.set_visible(False)
  if panel.title:
    ax.set_title(panel.title, fontsize=_PANEL_TITLE_POINTS, pad=_LABEL_LINE if panel.column_labels else 2)


def _strip(trajectory: np.ndarray, steps: Sequence[int], start: str, title: str = "") -> Panel:
  return Panel(chain_grid(trajectory, steps), trajectory.shape[1], len(steps), title, column_labels(steps, start))


def chain_figure(trajectory: np.ndarray, name: str, chain, info: FigureInfo) -> Figure:
  """One row per chain, the columns ``columns(name, ...)`` picks, each labelled; titled with the chain and run."""
  steps = columns(name, trajectory.shape[0] - 1)
  return labelled(f"{chain_title(name, chain)}\n{info.line()}", [_strip(np.asarray(trajectory), steps, chain.start)])


def eval_figure(trajectory: np.ndarray, name: str, chain, info: FigureInfo) -> Figure:
  """--mode=eval's view of a chain: its final samples as an 8x8 grid (fewer if fewer chains ran), then the
  first 8 chains at up to 11 of their steps."""
  trajectory = np.asarray(trajectory)
  num_steps = trajectory.shape[0] - 1
  final = trajectory[-1, : EVAL_GRID_SIDE**2]
  cols = min(EVAL_GRID_SIDE, len(final))
  rows = -(-len(final) // cols)
  blank = np.ones((rows * cols - len(final), *final.shape[1:]), final.dtype)  # White, as the borders.
  tiles = np.concatenate([final, blank]).reshape(rows, cols, *final.shape[1:])
  finals = Panel(grid(tiles), rows, cols, f"final samples (step {num_steps}) of {len(final)} chains")
  shown = trajectory[:, :EVAL_STRIP_ROWS]
  strip_title = f"the first {shown.shape[1]} chains, step by step"
  strip = _strip(shown, spread(num_steps, EVAL_STRIP_COLUMNS), chain.start, strip_title)
  return labelled(f"{chain_title(name, chain)}\n{info.line()}", [finals, strip])


def reconstruction_figure(rows: np.ndarray, sigma: float, info: FigureInfo) -> Figure:
  """rows [3, n, h, w, c]: clean images x, corrupted x + noise, and R(x + noise), one per column."""
  rows = np.asarray(rows)
  labels = ("x", f"x + N(0, {sigma:g}²)", "R(x + noise)")
  panel = Panel(grid(rows), 3, rows.shape[1], row_labels=labels)
  return labelled(f"Reconstructions of {rows.shape[1]} fixed training images\n{info.line()}", [panel])


def pixels(figure: Figure) -> np.ndarray:
  """uint8 [h, w, 3]: the figure as drawn, for a PNG and TensorBoard alike."""
  canvas = FigureCanvasAgg(figure)
  canvas.draw()
  return np.array(canvas.buffer_rgba())[..., :3]


def chain_gif(trajectory: np.ndarray) -> bytes:
  """The first 8 chains side by side, one frame per step, with "step k / n" above them."""
  trajectory = np.asarray(trajectory)
  num_steps = trajectory.shape[0] - 1
  font = ImageFont.load_default(size=14)
  frames = []
  for step, x in enumerate(trajectory):
    tiles = Image.fromarray(grid(x[None, :GIF_CHAINS]))
    frame = Image.new("RGB", (tiles.width, tiles.height + _GIF_BAND), "white")
    frame.paste(tiles, (0, _GIF_BAND))
    ImageDraw.Draw(frame).text((_BORDER + 2, 3), f"step {step} / {num_steps}", fill="black", font=font)
    frames.append(frame)
  return storage.encoded(frames[0].save, format="GIF", save_all=True, append_images=frames[1:], duration=150, loop=0)


def save_png(path: str, image: np.ndarray) -> None:
  """Writes atomically, locally or on gs://: a reader never sees half a PNG."""
  storage.write_bytes(path, storage.encoded(Image.fromarray(image).save, format="PNG"))


def _write(drawn: Mapping[str, Figure], directory: str, suffixes: Sequence[str]) -> dict:
  images = {name: pixels(figure) for name, figure in drawn.items()}
  for name, image in images.items():
    for suffix in suffixes:
      save_png(storage.path(directory) / f"{name}{suffix}.png", image)
  return images


def write_pngs(
  trajectories: Mapping, chains: Mapping, directory: str, info: FigureInfo, suffixes: Sequence[str] = ("",)
) -> dict:
  """``<name><suffix>.png`` for each trajectory and suffix, drawn by ``chain_figure`` (``chains`` holds each
  one's ``chains.Chain``); returns ``{name: uint8 [h, w, 3]}``, the same pictures, for TensorBoard."""
  drawn = {name: chain_figure(t, name, chains[name], info) for name, t in trajectories.items()}
  return _write(drawn, directory, suffixes)


def write_eval_pngs(trajectories: Mapping, chains: Mapping, directory: str, info: FigureInfo) -> dict:
  """``<name>_eval.png`` for each trajectory, drawn by ``eval_figure``; returns the pictures."""
  drawn = {name: eval_figure(t, name, chains[name], info) for name, t in trajectories.items()}
  return _write(drawn, directory, ("_eval",))


def write_reconstructions(
  rows: np.ndarray, sigma: float, directory: str, info: FigureInfo, suffixes: Sequence[str] = ("",)
) -> np.ndarray:
  """``reconstructions<suffix>.png`` drawn by ``reconstruction_figure``; returns the picture."""
  return _write({"reconstructions": reconstruction_figure(rows, sigma, info)}, directory, suffixes)["reconstructions"]


def write_npz(trajectories: dict, path) -> None:
  """All trajectories in one ``.npz``, written atomically."""
  storage.write_bytes(path, storage.encoded(lambda f: np.savez_compressed(f, **trajectories)))
