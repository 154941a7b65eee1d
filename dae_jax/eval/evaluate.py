"""``--mode=eval`` orchestrated: restore, run the chains, gather every measure into one summary, report it.

- Figs. 1-3 as curves: the sliced Wasserstein distance to held-out real images at every step of each chain
  (from U(0, 1) noise, with noise injection, from decoded prior samples with noise before each encoding as
  Fig. 3's caption says and without it as Eq. 11 writes, and Nguyen-style steps), with the step where each
  chain is best; beside it, precision, recall and the samples' mean pairwise distance (``precision_recall``).
- The step each chain should stop at, and the one chain ``chain.num_steps=-1`` samples with (``recommend``).
- How closely the codes of held-out images match the prior N(0, I) (``prior_match``), which decides whether
  decoded prior samples can look like data.
- Reconstruction error of R on clean and on corrupted held-out images.
- Nearest-training-image distance of the final chain samples, beside that of the held-out images themselves:
  far below it means memorisation, near it means the chain makes new images.
- A linear probe of the codes for each CelebA attribute, when the data has attributes.
"""

import functools

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from dae_jax import chains, data, experiment, figures, rng
from dae_jax.data import loader
from dae_jax.eval import linear_probe, nearest, precision_recall, prior_match, recommend, reconstruction, report, swd

SPLIT_SOURCES = ("celeba", "celeba_files", "mnist")
# Held-out images whose codes are compared with the prior, when ``eval.prior_match_samples`` is not set.
PRIOR_MATCH_SAMPLES = 2048


def held_out_data_config(config):
  """``config.data`` with ``eval.split`` for its split; None for sources without a held-out split."""
  if config.data.source not in SPLIT_SOURCES:
    return None
  held_config = config.data.copy_and_resolve_references()
  held_config.split = config.eval.split
  return held_config


def held_out(config) -> tuple:
  """(images, attributes or None, description) to compare samples with."""
  held_config = held_out_data_config(config)
  if held_config is not None:
    images, attributes = data.load(held_config)
    return images, attributes, f"the {config.eval.split} split"
  images, attributes = data.load(config.data)
  return images, attributes, "the training images (this source has no held-out split)"


@functools.partial(jax.jit, static_argnames="patches")
def _swd_mean(key, prepared: list, images: jax.Array, patches: int) -> jax.Array:
  # Module-level, so that every call with one shape (each step, each chain, each call) reuses one compilation.
  return swd.swd_to_reference(key, prepared, jnp.clip(images, 0, 1), patches)["mean"]


def swd_curves(key, trajectories: dict, reference: jax.Array, patches: int) -> dict:
  """SWD (mean over levels) to ``reference`` at every step, with the same patch places at every step (and in
  every call with the same key)."""
  prepared = swd.prepare_reference(key, reference, patches)
  curves = {}
  for name, trajectory in trajectories.items():
    values = [float(_swd_mean(key, prepared, x, patches)) for x in trajectory]
    best = int(np.argmin(values))
    curves[name] = {
      "swd": values,
      "first_step_improves": values[1] < values[0],
      "best_step": best,
      "best_swd": values[best],
      "final_swd": values[-1],
    }
  return curves


def fidelity_curves(trajectories: dict, reference: jax.Array, k: int = precision_recall.K) -> tuple:
  """({name: {"precision", "recall", "diversity"} per step}, {"k", "reference_diversity"}); ({}, None) when a set
  is too small for a k-NN manifold (under two images)."""
  num_samples = next(iter(trajectories.values())).shape[1]
  k = precision_recall.effective_k(reference.shape[0], num_samples, k)
  if k == 0:
    logging.warning("Skipping precision and recall: %d reference image(s), at least 2 are needed.", len(reference))
    return {}, None
  features = precision_recall.features(reference)
  curves = {
    name: {m: np.asarray(v).tolist() for m, v in precision_recall.along_trajectory(features, trajectory, k).items()}
    for name, trajectory in trajectories.items()
  }
  reference_diversity = float(precision_recall.mean_pairwise_distance(features))
  return curves, {"k": k, "features": "average-pooled pixels (RMS units)", "reference_diversity": reference_diversity}


def measured_curves(key, trajectories: dict, reference: jax.Array, patches: int) -> tuple:
  """(per-chain curves: SWD, precision, recall and diversity at every step; the precision-recall settings or
  None). The same ``key`` gives the same SWD patch places, so curves of separate calls compare."""
  curves = swd_curves(key, trajectories, reference, patches)
  fidelity, settings = fidelity_curves(trajectories, reference)
  for name, measures in fidelity.items():
    curves[name].update(measures)
  return curves, settings


def with_choices(curves: dict) -> dict:
  """The curves, each with the step ``recommend`` chooses for it ("chosen"), one recall floor for all."""
  choices = recommend.choose_steps(curves)
  return {name: dict(curve, chosen=choices[name]) for name, curve in curves.items()}


def prior_match_block(config, exp, state, key, images, description: str):
  """``prior_match.of_model`` on up to ``eval.prior_match_samples`` held-out images; None with fewer than two,
  which fit no covariance."""
  count = min(config.eval.get("prior_match_samples", PRIOR_MATCH_SAMPLES), len(images))
  if count < 2:
    logging.warning("Skipping the prior match: %d held-out image(s), at least 2 are needed.", count)
    return None
  match = prior_match.of_model(
    exp.spec, state, key, loader.held_out_sample(images, count, config.seed), config.eval.probe_steps
  )
  return dict(match, images=f"{count} images of {description}, corrupted with noise std {config.noise.sigma}")


def run(config, workdir: str) -> dict:
  exp, state = experiment.restore(config, workdir)
  autoencoder, latent_dim = exp.spec.autoencoder, exp.spec.latent_dim
  params = state.autoencoder_variables()
  key = jax.random.fold_in(rng.run_key(config.seed, "eval"), int(state.step))
  reference_images, reference_attributes, description = held_out(config)
  n = min(config.eval.num_samples, len(reference_images))
  reference = jnp.asarray(loader.to_pixels(np.asarray(loader.held_out_sample(reference_images, n, config.seed))))
  evaluated = chains.eval_chains(config.chain, config.eval)
  trajectories = chains.run(
    autoencoder, params, rng.named(key, "chains"), evaluated, n, exp.data_shape, latent_dim, config.chain.batchnorm
  )
  training, training_attributes = data.load(config.data)
  final = jnp.clip(trajectories["from_noise"][-1], 0, 1)
  curves, fidelity_settings = measured_curves(
    rng.named(key, "swd"), trajectories, reference, config.eval.swd_patches_per_image
  )
  curves = with_choices(curves)
  summary = {
    "step": int(state.step),
    "reference": f"{n} images of {description}",
    "chains": curves,
    "recommended": recommend.recommended({name: c["chosen"] for name, c in curves.items()}, evaluated),
    "reconstruction": reconstruction.reconstruction_errors(
      autoencoder, params, rng.named(key, "reconstruction"), reference, config.noise.sigma, latent_dim
    ),
    "nearest_training": {
      "from_noise_final": float(nearest.nearest_distances(final, training).mean()),
      "reference": float(
        nearest.nearest_distances(reference, training, exclude_self=config.data.source not in SPLIT_SOURCES).mean()
      ),
    },
  }
  if fidelity_settings is not None:
    summary["precision_recall"] = fidelity_settings
  match = prior_match_block(config, exp, state, rng.named(key, "prior_match"), reference_images, description)
  if match is not None:
    summary["prior_match"] = match
  if training_attributes is not None and reference_attributes is not None:
    summary["linear_probe"] = linear_probe.probe(
      autoencoder,
      params,
      training,
      training_attributes,
      reference_images,
      reference_attributes,
      config.eval.probe_steps,
    )
  report.write(workdir, summary, trajectories, evaluated, figures.FigureInfo.of_run(config, int(state.step)))
  return summary
