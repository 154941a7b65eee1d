"""``--mode=eval`` orchestrated: restore, run the chains, gather every measure into one summary, report it.

- Figs. 1-3 as curves: the sliced Wasserstein distance to held-out real images at every step of each chain
  (from U(0, 1) noise, with noise injection, from decoded prior samples with noise before each encoding as
  Fig. 3's caption says and without it as Eq. 11 writes, and Nguyen-style steps), with the step where each
  chain is best.
- How closely the codes of held-out images match the prior N(0, I) (``prior_match``), which decides whether
  decoded prior samples can look like data.
- Reconstruction error of R on clean and on corrupted held-out images.
- Nearest-training-image distance of the final chain samples, beside that of the held-out images themselves:
  far below it means memorisation, near it means the chain makes new images.
- A linear probe of the codes for each CelebA attribute, when the data has attributes.
"""

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from dae_jax import chains, data, experiment, rng
from dae_jax.data import loader
from dae_jax.eval import linear_probe, nearest, prior_match, reconstruction, report, swd

SPLIT_SOURCES = ("celeba", "celeba_files")
# Held-out images whose codes are compared with the prior, when ``eval.prior_match_samples`` is not set.
PRIOR_MATCH_SAMPLES = 2048


def held_out(config) -> tuple:
  """(images, attributes or None, description) to compare samples with."""
  if config.data.source in SPLIT_SOURCES:
    held_config = config.data.copy_and_resolve_references()
    held_config.split = config.eval.split
    images, attributes = data.load(held_config)
    return images, attributes, f"the {config.eval.split} split"
  images, attributes = data.load(config.data)
  return images, attributes, "the training images (this source has no held-out split)"


def swd_curves(key, trajectories: dict, reference: jax.Array, patches: int) -> dict:
  """SWD (mean over levels) to ``reference`` at every step, with the same patch places at every step."""
  prepared = swd.prepare_reference(key, reference, patches)
  distance = jax.jit(lambda images: swd.swd_to_reference(key, prepared, jnp.clip(images, 0, 1), patches)["mean"])
  curves = {}
  for name, trajectory in trajectories.items():
    values = [float(distance(x)) for x in trajectory]
    best = int(np.argmin(values))
    curves[name] = {
      "swd": values,
      "first_step_improves": values[1] < values[0],
      "best_step": best,
      "best_swd": values[best],
      "final_swd": values[-1],
    }
  return curves


def prior_match_block(config, exp, state, key, images, description: str):
  """``prior_match.of_model`` on up to ``eval.prior_match_samples`` held-out images; None with fewer than two,
  which fit no covariance."""
  count = min(config.eval.get("prior_match_samples", PRIOR_MATCH_SAMPLES), len(images))
  if count < 2:
    logging.warning("Skipping the prior match: %d held-out image(s), at least 2 are needed.", count)
    return None
  match = prior_match.of_model(exp.spec, state, key, images[:count], config.eval.probe_steps)
  return dict(match, images=f"{count} images of {description}, corrupted with noise std {config.noise.sigma}")


def run(config, workdir: str) -> dict:
  exp, state = experiment.restore(config, workdir)
  autoencoder, latent_dim = exp.spec.autoencoder, exp.spec.latent_dim
  params = state.autoencoder_variables()
  key = jax.random.fold_in(rng.run_key(config.seed, "eval"), int(state.step))
  reference_images, reference_attributes, description = held_out(config)
  n = min(config.eval.num_samples, len(reference_images))
  reference = jnp.asarray(loader.to_pixels(np.asarray(reference_images[:n])))
  trajectories = chains.run(
    autoencoder,
    params,
    rng.named(key, "chains"),
    chains.eval_chains(config.chain, config.eval),
    n,
    exp.data_shape,
    latent_dim,
    config.chain.batchnorm,
  )
  training, training_attributes = data.load(config.data)
  final = jnp.clip(trajectories["from_noise"][-1], 0, 1)
  summary = {
    "step": int(state.step),
    "reference": f"{n} images of {description}",
    "chains": swd_curves(rng.named(key, "swd"), trajectories, reference, config.eval.swd_patches_per_image),
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
  report.write(workdir, summary, trajectories)
  return summary
