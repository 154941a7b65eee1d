"""DAE: a plain denoising autoencoder trained with BCE and no latent regulariser.

A baseline: the paper trains DVAE and DAAE.

Paper run (CelebA 64x64, batch 64, 20 epochs = 50,865 steps; needs a prepared TFDS celeb_a, see README):
  python -m dae_jax.main --config=configs/dae.py --workdir=workdir/dae
  Wall time: about 10 hours on a 2-core CPU (~90 images/s, benchmarks/train_step.py); on one GPU, not yet measured.
  Expected (the paper's Figs. 1-3; not yet reproduced with this code): figures/fig1_from_noise.png shows rows of
  uniform noise that are faces by step 10 and sharper by step 20; fig2 wanders between faces; nothing shapes the
  latent space, so fig3's d(z), z ~ N(0, I), starts from blobs that the chain pulls towards faces.

Offline demo (the 100 LFW faces in scikit-image, 32x32 grey, 4,000 steps):
  python -m dae_jax.main --config=configs/dae.py:demo --workdir=workdir/dae_demo
  Wall time: about 2 minutes on a 2-core CPU (measured: DAAE 1 min 43 s, DVAE and DAE 1 min 54 s).
  Expected: the same three figures at 32x32; every row of fig1 is a recognisable grey face by step 10.

Smoke test (seconds): --config=configs/dae.py:tiny
"""

from dae_jax import config_lib


def get_config(variant: str = ""):
  """variant: "" (paper), "demo" or "tiny"."""
  config = config_lib.default_config()
  config.model.objective = "dae"
  return config_lib.with_variant(config, variant)
