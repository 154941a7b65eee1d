"""What ``--mode=eval`` leaves for a reader: ``eval/summary.{json,md}``, a plot of SWD along the chains, a GIF
of the chain from noise, the chain grids and TensorBoard scalars."""

import io
import json

from absl import logging
from matplotlib.figure import Figure
import numpy as np
from PIL import Image

from dae_jax import figures, metrics_io, storage

# --mode=eval's chain names, and the paper figure each one draws.
FIGURE_NAMES = {
  "from_noise": "fig1_from_noise",
  "noise_injection": "fig2_noise_injection",
  "from_prior": "fig3_from_prior",
  "from_prior_eq11": "fig3_from_prior_eq11",
}


def markdown(summary: dict) -> str:
  lines = [
    f"# Evaluation at step {summary['step']}",
    "",
    f"Reference: {summary['reference']}.",
    "",
    "| chain | SWD at step 0 | best SWD (step) | final SWD | first step improves | chosen step | SWD there | "
    "precision | recall | diversity |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ]
  for name, c in summary["chains"].items():
    lines.append(
      f"| {name} | {c['swd'][0]:.1f} | {c['best_swd']:.1f} ({c['best_step']}) | {c['final_swd']:.1f} | "
      f"{c['first_step_improves']} | {_chosen_cells(c)} |"
    )
  lines += ["", *recommended_markdown(summary)]
  rec = summary["reconstruction"]
  lines += [
    "",
    "| reconstruction | BCE per pixel | MSE per pixel |",
    "|---|---|---|",
    f"| clean | {rec['clean']['bce_per_pixel']:.4f} | {rec['clean']['mse_per_pixel']:.4f} |",
    f"| corrupted | {rec['corrupted']['bce_per_pixel']:.4f} | {rec['corrupted']['mse_per_pixel']:.4f} |",
    "",
    f"Nearest training image (RMS pixel distance): final samples of from_noise "
    f"{summary['nearest_training']['from_noise_final']:.4f}, held-out images "
    f"{summary['nearest_training']['reference']:.4f}.",
  ]
  if "prior_match" in summary:
    lines += ["", *prior_match_markdown(summary["prior_match"])]
  if "linear_probe" in summary:
    p = summary["linear_probe"]
    lines += [
      "",
      f"Linear probe over 40 attributes: mean accuracy {p['mean_accuracy']:.3f} vs majority class "
      f"{p['mean_majority_baseline']:.3f}.",
    ]
  return "\n".join(lines) + "\n"


def _number(values, step: int, digits: int) -> str:
  return f"{values[step]:.{digits}f}" if values is not None else "n/a"


def _chosen_cells(curve: dict) -> str:
  """Chosen step (marked when no step of the chain keeps the recall floor), its SWD, precision, recall and the
  samples' mean pairwise distance there."""
  choice = curve["chosen"]
  step = choice["step"]
  mark = "" if choice["eligible"] else " (below the recall floor)"
  cells = [f"{step}{mark}", f"{choice['swd']:.1f}"]
  cells += [_number(curve.get(name), step, 3) for name in ("precision", "recall", "diversity")]
  return " | ".join(cells)


def recommended_markdown(summary: dict) -> list:
  """The recommended chain and, when measured, what precision and recall were computed on."""
  best = summary["recommended"]
  spec = ", ".join(f"{k}={v}" for k, v in best["spec"].items())
  lines = [
    f"Recommended (chain.num_steps=-1 samples with it): {best['chain']}, {best['num_steps']} steps from "
    f"{best['start']} (SWD {best['swd']:.1f}; {best['rule']}); ChainSpec({spec})."
  ]
  if "precision_recall" in summary:
    settings = summary["precision_recall"]
    lines += [
      "",
      f"Precision and recall: k = {settings['k']} nearest neighbours on {settings['features']}; diversity is the "
      f"samples' mean pairwise distance there, {settings['reference_diversity']:.3f} for the reference images.",
    ]
  return lines


def prior_match_markdown(match: dict) -> list:
  """The prior-match block as Markdown lines: each number beside the value it would take if the codes were
  N(0, I) samples themselves."""
  rows = [
    (
      "Frechet distance to N(0, I)",
      f"{match['frechet_distance']:.3f}",
      f"{match['frechet_null']:.3f} (sampling alone)",
    ),
    ("quadratic probe accuracy", f"{match['probe_accuracy']:.3f}", "0.5"),
  ]
  if "discriminator_accuracy" in match:
    rows.append(("discriminator accuracy", f"{match['discriminator_accuracy']:.3f}", "0.5"))
  low, high = match["code_std_range"]
  return [
    f"How far the codes are from the prior N(0, I), against as many samples of it. Codes of {match['images']}:",
    "",
    "| prior match | codes | if they matched |",
    "|---|---|---|",
    *(f"| {name} | {value} | {matched} |" for name, value, matched in rows),
    "",
    f"Largest per-dimension mean of the codes: {match['code_mean_abs_max']:.3f} in size; per-dimension std "
    f"{low:.3f} to {high:.3f}.",
  ]


def plot_curves(curves: dict, title: str = "Sample quality along each chain") -> bytes:
  """The SWD curves, and the recall curves when measured, as PNG bytes."""
  with_recall = all("recall" in c for c in curves.values())
  figure = Figure(figsize=(11 if with_recall else 6, 4))  # Not pyplot: no global figure state, no display backend.
  axes = figure.subplots(1, 2 if with_recall else 1, squeeze=False)[0]
  for name, curve in curves.items():
    axes[0].plot(curve["swd"], label=name)
    if with_recall:
      axes[1].plot(curve["recall"], label=name)
  axes[0].set(xlabel="chain step", ylabel="SWD to the reference images (x 1e3)", yscale="log", title=title)
  axes[0].legend(fontsize=7)
  if with_recall:
    axes[1].set(xlabel="chain step", ylabel="recall (k-NN manifolds)", ylim=(-0.02, 1.02), title="Coverage")
  return storage.encoded(figure.savefig, format="png", dpi=100, bbox_inches="tight")


def _prior_match_scalars(match: dict) -> dict:
  names = ("frechet_distance", "probe_accuracy", "discriminator_accuracy")
  return {f"eval/prior_match/{name}": match[name] for name in names if name in match}


def _to_tensorboard(workdir, summary: dict, plot_png: bytes) -> None:
  step = summary["step"]
  # A second evaluation at the same step replaces the first one's lines instead of adding copies.
  writer = metrics_io.MetricsWriter(workdir, drop=lambda r: r["step"] == step and metrics_io.is_eval_record(r))
  scalars = {f"eval/{name}_{key}": c[key] for name, c in summary["chains"].items() for key in ("best_swd", "final_swd")}
  scalars.update(
    {
      f"eval/{name}_chosen_{key}": c["chosen"][key]
      for name, c in summary["chains"].items()
      for key in ("precision", "recall")
      if key in c["chosen"]
    }
  )
  scalars.update(_prior_match_scalars(summary.get("prior_match", {})))
  writer.scalars(summary["step"], scalars)
  plot = np.asarray(Image.open(io.BytesIO(plot_png)).convert("RGB"))
  writer.images(summary["step"], {"eval/swd_along_chains": plot})
  writer.close()


def write(workdir, summary: dict, trajectories: dict, evaluated: dict, info: figures.FigureInfo) -> None:
  """``evaluated``: the ``chains.Chain`` of each trajectory, which the chain figures' titles describe."""
  eval_dir, figure_dir = storage.path(workdir) / "eval", storage.path(workdir) / "figures"
  storage.write_text(eval_dir / "summary.json", json.dumps(summary, indent=2))
  storage.write_text(eval_dir / "summary.md", markdown(summary))
  plot_png = plot_curves(summary["chains"], f"Sample quality along each chain\nreference: {summary['reference']}")
  storage.write_bytes(figure_dir / "eval_swd_along_chains.png", plot_png)
  storage.write_bytes(figure_dir / "chain_from_noise.gif", figures.chain_gif(trajectories["from_noise"]))
  _to_tensorboard(workdir, summary, plot_png)
  figures.write_eval_pngs(
    {FIGURE_NAMES[name]: np.asarray(trajectories[name]) for name in FIGURE_NAMES},
    {FIGURE_NAMES[name]: evaluated[name] for name in FIGURE_NAMES},
    figure_dir,
    info,
  )
  logging.info("Wrote %s and %s.", eval_dir / "summary.md", figure_dir)
