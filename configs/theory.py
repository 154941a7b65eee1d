"""The score identity against ground truth: MLP DAEs on Gaussian mixtures in [0, 1]^d, BCE vs MSE.

  python -m dae_jax.main --mode=theory --config=configs/theory.py --workdir=workdir/theory

For d = 2 and d = 16, sigma in (0.1, 0.25, 0.5) (0.5 is the paper's sigma^2 = 0.25) and both losses, trains an MLP
DAE on fresh mixture samples and compares (R(x~) - x~) / sigma^2 with the analytic grad log p_sigma(x~) at
held-out noisy points. Writes theory/results.json, theory/results.md and the plots (score fields, error vs
sigma, BCE vs MSE) to the workdir.
Wall time: about 9 minutes on a 2-core CPU (12 cases of ~42 s).
Expected (the paper's claim): BCE and MSE match the analytic optimum equally well; at the paper's sigma on d = 2,
cosine similarity >= 0.95 and relative score error <= 0.15 for both.
"""

import ml_collections

from dae_jax import config_lib

# Seconds, for tests: one dimension, the paper's sigma, small networks, few steps.
TINY = {
  "dims": (2,),
  "sigmas": (0.5,),
  "hidden": (32, 32),
  "latent_dim": 8,
  "batch_size": 64,
  "num_steps": 50,
  "num_eval_points": 128,
}
VARIANTS = {"": {}, "tiny": TINY}


def get_config(variant: str = ""):
  """variant: "" (the full check) or "tiny" (seconds, for tests)."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.dims = (2, 16)
  config.sigmas = (0.1, 0.25, 0.5)
  config.losses = ("bce", "mse")
  config.num_components = 8
  config.component_std = 0.05
  config.hidden = (256, 256, 256)
  config.latent_dim = 64
  config.batch_size = 512
  config.num_steps = 6000
  config.learning_rate = 1e-3
  config.num_eval_points = 4096
  return config_lib.with_variant(config, VARIANTS, variant)
