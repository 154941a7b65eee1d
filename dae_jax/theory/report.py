"""``--mode=theory``: every case of configs/theory.py, as a table (JSON + Markdown) and plots in the workdir."""

import json

from absl import logging
import jax.numpy as jnp
from matplotlib.figure import Figure
import numpy as np

from dae_jax import storage
from dae_jax.theory import score_check

COLUMNS = ("dim", "loss", "sigma", "score_cosine", "score_relative_error", "denoiser_rmse", "final_train_loss")


def markdown_table(rows: list) -> str:
  lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
  for row in rows:
    cells = [f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in COLUMNS]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def _quiver(ax, mixture, denoiser, sigma: float, title: str) -> None:
  grid = np.linspace(0.0, 1.0, 17)
  points = jnp.asarray(np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2), jnp.float32)
  true = np.asarray(score_check.noisy_score(mixture, points, sigma))
  ax.quiver(points[:, 0], points[:, 1], true[:, 0], true[:, 1], color="grey", alpha=0.6, label="analytic")
  if denoiser is not None:
    learned = np.asarray((denoiser(points) - points) / sigma**2)
    ax.quiver(points[:, 0], points[:, 1], learned[:, 0], learned[:, 1], color="tab:red", alpha=0.8, label="learned")
  ax.scatter(*np.asarray(mixture.means).T, marker="x", color="black")
  ax.set_title(title, fontsize=9)
  ax.set_aspect("equal")


def _score_fields(directory: str, fields: dict, sigma: float) -> str:
  figure = Figure(figsize=(4.5 * len(fields), 4.5))  # Not pyplot: no global state, no display.
  axes = figure.subplots(1, len(fields))
  for ax, (loss, (mixture, denoiser)) in zip(np.atleast_1d(axes), sorted(fields.items())):
    _quiver(ax, mixture, denoiser, sigma, f"{loss.upper()}, d = 2, sigma = {sigma}")
  np.atleast_1d(axes)[0].legend(loc="lower left", fontsize=8)
  path = directory / "score_fields.png"
  storage.write_bytes(path, storage.encoded(figure.savefig, format="png", dpi=100, bbox_inches="tight"))
  return str(path)


def _error_vs_sigma(directory: str, rows: list) -> str:
  figure = Figure(figsize=(10, 4))
  axes = figure.subplots(1, 2)
  for dim in sorted({r["dim"] for r in rows}):
    for loss, style in (("bce", "-o"), ("mse", "--s")):
      chosen = sorted((r for r in rows if r["dim"] == dim and r["loss"] == loss), key=lambda r: r["sigma"])
      sigmas = [r["sigma"] for r in chosen]
      axes[0].plot(sigmas, [r["score_relative_error"] for r in chosen], style, label=f"{loss.upper()}, d = {dim}")
      axes[1].plot(sigmas, [r["score_cosine"] for r in chosen], style, label=f"{loss.upper()}, d = {dim}")
  axes[0].set(xlabel="sigma", ylabel="relative score error", title="error vs sigma")
  axes[1].set(xlabel="sigma", ylabel="cosine similarity", title="direction vs sigma")
  axes[0].legend(fontsize=8)
  path = directory / "error_vs_sigma.png"
  storage.write_bytes(path, storage.encoded(figure.savefig, format="png", dpi=100, bbox_inches="tight"))
  return str(path)


def _bce_vs_mse(directory: str, rows: list) -> str:
  by_case = {(r["dim"], r["sigma"], r["loss"]): r["score_relative_error"] for r in rows}
  cases = sorted({(d, s) for d, s, _ in by_case if (d, s, "bce") in by_case and (d, s, "mse") in by_case})
  figure = Figure(figsize=(4.5, 4.5))
  ax = figure.subplots()
  xs = [by_case[(d, s, "mse")] for d, s in cases]
  ys = [by_case[(d, s, "bce")] for d, s in cases]
  ax.scatter(xs, ys)
  for (d, s), x, y in zip(cases, xs, ys):
    ax.annotate(f"d={d}, s={s}", (x, y), fontsize=7)
  top = max(xs + ys + [1e-3]) * 1.1
  ax.plot([0, top], [0, top], color="grey", linewidth=0.8)
  ax.set(xlabel="MSE: relative score error", ylabel="BCE: relative score error", title="BCE vs MSE")
  path = directory / "bce_vs_mse.png"
  storage.write_bytes(path, storage.encoded(figure.savefig, format="png", dpi=100, bbox_inches="tight"))
  return str(path)


def run(config, workdir: str) -> list:
  directory = storage.path(workdir) / "theory"
  rows, fields = [], {}
  paper_sigma = max(config.sigmas)
  for dim in config.dims:
    for sigma in config.sigmas:
      for loss in config.losses:
        metrics, mixture, denoiser = score_check.run_case(config, dim, loss, sigma)
        logging.info("theory: %s", metrics)
        rows.append(metrics)
        if dim == 2 and sigma == paper_sigma:
          fields[loss] = (mixture, denoiser)
  storage.write_text(directory / "results.json", json.dumps(rows, indent=2))
  storage.write_text(directory / "results.md", markdown_table(rows))
  if fields:
    _score_fields(directory, fields, paper_sigma)
  _error_vs_sigma(directory, rows)
  _bce_vs_mse(directory, rows)
  return rows
