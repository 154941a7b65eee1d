"""Training images as a float32 array [N, H, W, C] in [0, 1], from the source the config names."""

import numpy as np

from dae_jax.data import celeba, faces


def load_train_images(data_config) -> np.ndarray:
  if data_config.source == "lfw_faces":
    return faces.load(data_config.image_size, data_config.channels)
  return celeba.load(data_config)


def check_available(data_config) -> None:
  """Fails fast (before any model is built) when the configured data is not on this machine."""
  if data_config.source == "celeba":
    celeba.locate(data_config.data_dir)
