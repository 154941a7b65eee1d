"""``--mode=chain_study``: which chain settings give the best samples for a trained model.

Every chain starts from the same U(0, 1) noise and runs ``chain.long_num_steps`` steps; the grid crosses
- BatchNorm in the chain: the chain's own batch statistics (as the paper samples) or the running averages;
- noise injected before each encoding: std 0, 0.1, 0.25 and 0.5 (the paper's Fig. 2 chain uses sigma = 0.5);
- the step: the paper's x <- R(x), and two Nguyen et al. (2017) steps x <- x + eta (R(x) - x) + N(0, eps^2).
At every step it measures the SWD, precision, recall and diversity of the samples against the held-out images,
as ``--mode=eval`` does (the same patch places for every chain, so the curves compare), and picks each chain's
step by ``recommend``'s rule. Writes ``<workdir>/chain_study/table.md``, ``table.json`` (with the curves) and
``curves.png``.
"""

import dataclasses
import itertools
import json

from absl import logging
import jax
import jax.numpy as jnp
from matplotlib.figure import Figure
import numpy as np

from dae_jax import chains, experiment, rng, sampling, storage
from dae_jax.data import loader
from dae_jax.eval import evaluate

BATCHNORM_MODES = ("batch", "running")
NOISE_STDS = (0.0, 0.1, 0.25, 0.5)
# (step_size eta, step_noise_std eps): the paper's full step, eval's Nguyen step, and a smaller, quieter one.
STEPS = ((1.0, 0.0), (0.5, 0.05), (0.25, 0.02))
COLUMNS = (
  "batchnorm",
  "noise std",
  "step size",
  "step noise",
  "SWD at step 0",
  "best SWD (step)",
  "final SWD",
  "chosen step",
  "SWD there",
  "precision",
  "recall",
  "diversity",
)


def study_chains(num_steps: int, posterior_sample: bool = False) -> dict:
  """{name: chains.Chain} over the grid, all from noise, ``num_steps`` long; names like "batch/n0.25/eta1/eps0"."""
  grid = itertools.product(BATCHNORM_MODES, NOISE_STDS, STEPS)
  return {
    f"{mode}/n{noise:g}/eta{eta:g}/eps{eps:g}": chains.Chain(
      "noise",
      sampling.ChainSpec(
        noise_std=noise, step_size=eta, step_noise_std=eps, batchnorm=mode, posterior_sample=posterior_sample
      ),
      num_steps,
    )
    for mode, noise, (eta, eps) in grid
  }


def row(curve: dict, spec: sampling.ChainSpec) -> dict:
  """One table row: the chain's settings, its SWD at the start, best and end, and its chosen step's measures."""
  choice = curve["chosen"]
  return {
    "batchnorm": spec.batchnorm,
    "noise_std": spec.noise_std,
    "step_size": spec.step_size,
    "step_noise_std": spec.step_noise_std,
    "swd_start": curve["swd"][0],
    "best_swd": curve["best_swd"],
    "best_step": curve["best_step"],
    "final_swd": curve["final_swd"],
    "chosen_step": choice["step"],
    "chosen_eligible": choice["eligible"],
    "chosen_swd": choice["swd"],
    **{name: curve[name][choice["step"]] if name in curve else None for name in ("precision", "recall", "diversity")},
  }


def _cell(value) -> str:
  return "n/a" if value is None else f"{value:.3f}"


def table_markdown(rows: list, header: str) -> str:
  lines = [header, "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
  for r in rows:
    chosen = f"{r['chosen_step']}" + ("" if r["chosen_eligible"] else " (below the recall floor)")
    cells = [
      r["batchnorm"],
      f"{r['noise_std']:g}",
      f"{r['step_size']:g}",
      f"{r['step_noise_std']:g}",
      f"{r['swd_start']:.1f}",
      f"{r['best_swd']:.1f} ({r['best_step']})",
      f"{r['final_swd']:.1f}",
      chosen,
      f"{r['chosen_swd']:.1f}",
      *(_cell(r[name]) for name in ("precision", "recall", "diversity")),
    ]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def plot(curves: dict, study: dict) -> bytes:
  """PNG bytes: one row of panels per BatchNorm mode, SWD (log) on the left, recall on the right."""
  with_recall = all("recall" in c for c in curves.values())
  figure = Figure(figsize=(12 if with_recall else 6, 4 * len(BATCHNORM_MODES)))
  axes = figure.subplots(len(BATCHNORM_MODES), 2 if with_recall else 1, squeeze=False)
  for (swd_ax, *recall_ax), mode in zip(axes, BATCHNORM_MODES):
    for name, curve in curves.items():
      spec = study[name].spec
      if spec.batchnorm != mode:
        continue
      label = f"noise {spec.noise_std:g}, eta {spec.step_size:g}, eps {spec.step_noise_std:g}"
      swd_ax.plot(curve["swd"], label=label)
      if recall_ax:
        recall_ax[0].plot(curve["recall"], label=label)
    swd_ax.set(xlabel="chain step", ylabel="SWD (x 1e3)", yscale="log", title=f"BatchNorm: {mode}")
    swd_ax.legend(fontsize=6)
    if recall_ax:
      recall_ax[0].set(xlabel="chain step", ylabel="recall", ylim=(-0.02, 1.02), title=f"BatchNorm: {mode}")
  return storage.encoded(figure.savefig, format="png", dpi=90, bbox_inches="tight")


def run(config, workdir: str) -> dict:
  exp, state = experiment.restore(config, workdir)
  key = jax.random.fold_in(rng.run_key(config.seed, "chain_study"), int(state.step))
  images, _, description = evaluate.held_out(config)
  n = min(config.eval.num_samples, len(images))
  reference = jnp.asarray(loader.to_pixels(np.asarray(loader.held_out_sample(images, n, config.seed))))
  study = study_chains(config.chain.long_num_steps, config.chain.posterior_sample)
  curves, settings = {}, None
  for name, chain in study.items():  # One chain at a time: a 64x64 study's trajectories would not fit together.
    trajectory = chains.run(
      exp.spec.autoencoder,
      state.autoencoder_variables(),
      rng.named(key, "chains"),
      {name: chain},
      n,
      exp.data_shape,
      exp.spec.latent_dim,
      chain.spec.batchnorm,
    )
    measured, settings = evaluate.measured_curves(
      rng.named(key, "swd"), trajectory, reference, config.eval.swd_patches_per_image
    )
    curves.update(measured)
  curves = evaluate.with_choices(curves)
  rows = [row(curves[name], chain.spec) for name, chain in study.items()]
  result = {
    "step": int(state.step),
    "reference": f"{n} images of {description}",
    "num_steps": config.chain.long_num_steps,
    "precision_recall": settings,
    "rows": rows,
    "curves": curves,
    "specs": {name: dataclasses.asdict(chain.spec) for name, chain in study.items()},
  }
  header = (
    f"# Chain study at step {result['step']}\n\n{len(rows)} chains from U(0, 1) noise, {result['num_steps']} steps "
    f"each, {n} samples, against {result['reference']}. SWD x 1e3; the chosen step is the lowest SWD among steps "
    "whose recall is at least half of the best recall of any chain (eval.recommend)."
  )
  directory = storage.path(workdir) / "chain_study"
  storage.write_text(directory / "table.json", json.dumps(result, indent=2))
  storage.write_text(directory / "table.md", table_markdown(rows, header))
  storage.write_bytes(directory / "curves.png", plot(curves, study))
  logging.info("Wrote %s.", directory / "table.md")
  return result
