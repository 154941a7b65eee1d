"""``--mode=eval``: the paper's claims as numbers for a trained model, in ``<workdir>/eval/summary.{json,md}``.

- Figs. 1-3 as curves: the sliced Wasserstein distance to held-out real images at every step of each chain
  (from U(0, 1) noise, with noise injection, from decoded prior samples, and Nguyen-style steps), with the step
  where each chain stops improving.
- Reconstruction error of R on clean and on corrupted held-out images.
- Nearest-training-image distance of the final chain samples, beside that of the held-out images themselves:
  far below it means memorisation, near it means the chain makes new images.
- A linear probe of the codes for each CelebA attribute, when the data has attributes.
Figures (curve plot, chain GIF, chain grids) go to ``<workdir>/figures/``.
"""

import json
import os

from absl import logging
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
from PIL import Image  # pylint: disable=wrong-import-position

from dae_jax import (corruption, data, figures, linear_probe, losses, metrics_io, pretrained, sampling, swd,  # pylint: disable=wrong-import-position
                     visualize)
from dae_jax.data import loader  # pylint: disable=wrong-import-position

SPLIT_SOURCES = ("celeba", "celeba_files")


def _pixels(images) -> jax.Array:
  return jnp.asarray(loader.to_pixels(np.asarray(images)))


def held_out(config) -> tuple:
  """(images, attributes or None, description) to compare samples with."""
  if config.data.source in SPLIT_SOURCES:
    held_config = config.data.copy_and_resolve_references()
    held_config.split = config.eval.split
    images, attributes = data.load(held_config)
    return images, attributes, f"the {config.eval.split} split"
  images, attributes = data.load(config.data)
  return images, attributes, "the training images (this source has no held-out split)"


def chain_variants(run, params, key, config, n: int) -> dict:
  """Trajectories [T + 1, n, ...] of the four chains, all from the same starts where they share one."""
  shape = (n, *run.data_shape)
  chain = config.chain
  specs = {
      "from_noise": (sampling.spec_from_config(chain), chain.num_steps, "noise"),
      "noise_injection": (sampling.spec_from_config(chain, noise_std=chain.noise_std), chain.long_num_steps,
                          "noise"),
      "from_prior": (sampling.spec_from_config(chain), chain.num_steps, "prior"),
      "nguyen": (sampling.ChainSpec(step_size=config.eval.nguyen_step_size,
                                    step_noise_std=config.eval.nguyen_noise_std, batchnorm=chain.batchnorm),
                 chain.long_num_steps, "noise"),
  }
  starts = {"noise": sampling.uniform_noise(jax.random.fold_in(key, 0), shape),
            "prior": sampling.decode_prior(run.spec.autoencoder, params, jax.random.fold_in(key, 1), n,
                                           run.spec.latent_dim, chain.batchnorm)}
  chains = {name: (starts[start], spec, steps) for name, (spec, steps, start) in specs.items()}
  keys = {name: jax.random.fold_in(key, 10 + index) for index, name in enumerate(chains)}
  return figures.run_chains(run.spec.autoencoder, params, keys, chains, run.data_shape, run.spec.latent_dim)


def swd_curves(key, trajectories: dict, reference: jax.Array, patches: int) -> dict:
  """SWD (mean over levels) to ``reference`` at every step, with the same patch places at every step."""
  prepared = swd.prepare_reference(key, reference, patches)
  distance = jax.jit(lambda images: swd.swd_to_reference(key, prepared, jnp.clip(images, 0, 1), patches)["mean"])
  curves = {}
  for name, trajectory in trajectories.items():
    values = [float(distance(x)) for x in trajectory]
    best = int(np.argmin(values))
    curves[name] = {"swd": values, "first_step_improves": values[1] < values[0], "best_step": best,
                    "best_swd": values[best], "final_swd": values[-1]}
  return curves


def reconstruction_errors(run, params, key, reference: jax.Array, sigma: float) -> dict:
  spec = sampling.ChainSpec()

  def errors(inputs):
    r = sampling.reconstruct(run.spec.autoencoder, params, inputs, key, spec, run.spec.latent_dim)
    logits = jnp.log(jnp.clip(r, 1e-6, 1 - 1e-6)) - jnp.log1p(-jnp.clip(r, 1e-6, 1 - 1e-6))
    return {"bce_per_pixel": float(losses.reconstruction(logits, reference, "bce", "mean").mean()),
            "mse_per_pixel": float(jnp.mean((r - reference) ** 2))}

  return {"clean": errors(reference), "corrupted": errors(corruption.gaussian(key, reference, sigma))}


def nearest_distances(samples: jax.Array, training: np.ndarray, exclude_self: bool = False) -> np.ndarray:
  """Per-sample RMS pixel distance to the closest training image (in chunks, so any training set fits)."""
  flat = samples.reshape(samples.shape[0], -1)
  best = jnp.full((flat.shape[0],), jnp.inf)
  for start in range(0, training.shape[0], 4096):
    chunk = _pixels(training[start:start + 4096]).reshape(-1, flat.shape[1])
    squared = (jnp.sum(flat ** 2, 1)[:, None] - 2 * flat @ chunk.T + jnp.sum(chunk ** 2, 1)[None])
    if exclude_self:
      squared = jnp.where(squared < 1e-10, jnp.inf, squared)
    best = jnp.minimum(best, squared.min(1))
  return np.sqrt(np.maximum(np.asarray(best), 0) / flat.shape[1])


def probe(run, params, config, train_images, train_attributes, held_images, held_attributes):
  def encode(images):
    codes = []
    for start in range(0, len(images), 256):
      batch = _pixels(images[start:start + 256])
      codes.append(run.spec.autoencoder.apply(params, batch, True, method=run.spec.autoencoder.encode)[0])
    return jnp.concatenate(codes)

  limit = min(len(train_images), 20000)
  return linear_probe.evaluate(encode(train_images[:limit]), jnp.asarray(train_attributes[:limit]),
                               encode(held_images), jnp.asarray(held_attributes), config.eval.probe_steps)


def _plot_curves(curves: dict, path: str) -> None:
  figure, ax = plt.subplots(figsize=(6, 4))
  for name, curve in curves.items():
    ax.plot(curve["swd"], label=name)
  ax.set(xlabel="chain step", ylabel="SWD to the reference images (x 1e3)", yscale="log", title="Sample quality along"
         " each chain")
  ax.legend(fontsize=8)
  figure.savefig(path, dpi=100, bbox_inches="tight")
  plt.close(figure)


def _chain_gif(trajectory: np.ndarray, path: str) -> None:
  frames = [Image.fromarray(visualize.grid(np.asarray(step)[None, :8])) for step in trajectory]
  frames[0].save(path, save_all=True, append_images=frames[1:], duration=150, loop=0)


def _markdown(summary: dict) -> str:
  lines = [f"# Evaluation at step {summary['step']}", "", f"Reference: {summary['reference']}.", "",
           "| chain | SWD at step 0 | best SWD (step) | final SWD | first step improves |", "|---|---|---|---|---|"]
  for name, c in summary["chains"].items():
    lines.append(f"| {name} | {c['swd'][0]:.1f} | {c['best_swd']:.1f} ({c['best_step']}) | {c['final_swd']:.1f} | "
                 f"{c['first_step_improves']} |")
  rec = summary["reconstruction"]
  lines += ["", "| reconstruction | BCE per pixel | MSE per pixel |", "|---|---|---|",
            f"| clean | {rec['clean']['bce_per_pixel']:.4f} | {rec['clean']['mse_per_pixel']:.4f} |",
            f"| corrupted | {rec['corrupted']['bce_per_pixel']:.4f} | {rec['corrupted']['mse_per_pixel']:.4f} |",
            "", f"Nearest training image (RMS pixel distance): final samples of from_noise "
            f"{summary['nearest_training']['from_noise_final']:.4f}, held-out images "
            f"{summary['nearest_training']['reference']:.4f}."]
  if "linear_probe" in summary:
    p = summary["linear_probe"]
    lines += ["", f"Linear probe over 40 attributes: mean accuracy {p['mean_accuracy']:.3f} vs majority class "
              f"{p['mean_majority_baseline']:.3f}."]
  return "\n".join(lines) + "\n"


def run(config, workdir: str) -> dict:
  experiment, state = pretrained.restore(config, workdir)
  params = state.autoencoder_variables()
  key = jax.random.fold_in(jax.random.PRNGKey(config.seed), int(state.step))
  reference_images, reference_attributes, description = held_out(config)
  n = min(config.eval.num_samples, len(reference_images))
  reference = _pixels(reference_images[:n])
  trajectories = chain_variants(experiment, params, key, config, n)
  training, training_attributes = data.load(config.data)
  summary = {
      "step": int(state.step),
      "reference": f"{n} images of {description}",
      "chains": swd_curves(jax.random.fold_in(key, 2), trajectories, reference, config.eval.swd_patches_per_image),
      "reconstruction": reconstruction_errors(experiment, params, jax.random.fold_in(key, 3), reference,
                                              config.noise.sigma),
      "nearest_training": {
          "from_noise_final": float(nearest_distances(jnp.clip(trajectories["from_noise"][-1], 0, 1),
                                                      training).mean()),
          "reference": float(nearest_distances(reference, training,
                                               exclude_self=config.data.source not in SPLIT_SOURCES).mean()),
      },
  }
  if training_attributes is not None and reference_attributes is not None:
    summary["linear_probe"] = probe(experiment, params, config, training, training_attributes, reference_images,
                                    reference_attributes)
  _write(workdir, summary, trajectories)
  return summary


def _to_tensorboard(workdir: str, summary: dict, plot_path: str) -> None:
  writer = metrics_io.MetricsWriter(workdir)
  scalars = {f"eval/{name}_{key}": c[key] for name, c in summary["chains"].items() for key in ("best_swd", "final_swd")}
  writer.scalars(summary["step"], scalars)
  writer.images(summary["step"], {"eval/swd_along_chains": np.asarray(Image.open(plot_path).convert("RGB"))})
  writer.close()


def _write(workdir: str, summary: dict, trajectories: dict) -> None:
  eval_dir, figure_dir = os.path.join(workdir, "eval"), os.path.join(workdir, "figures")
  os.makedirs(eval_dir, exist_ok=True)
  os.makedirs(figure_dir, exist_ok=True)
  with open(os.path.join(eval_dir, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2)
  with open(os.path.join(eval_dir, "summary.md"), "w") as f:
    f.write(_markdown(summary))
  _plot_curves(summary["chains"], os.path.join(figure_dir, "eval_swd_along_chains.png"))
  _chain_gif(np.asarray(trajectories["from_noise"]), os.path.join(figure_dir, "chain_from_noise.gif"))
  _to_tensorboard(workdir, summary, os.path.join(figure_dir, "eval_swd_along_chains.png"))
  figures.write_pngs({"fig1_from_noise": np.asarray(trajectories["from_noise"]),
                      "fig2_noise_injection": np.asarray(trajectories["noise_injection"]),
                      "fig3_from_prior": np.asarray(trajectories["from_prior"])}, figure_dir, suffix="_eval")
  logging.info("Wrote %s and %s.", os.path.join(eval_dir, "summary.md"), figure_dir)
