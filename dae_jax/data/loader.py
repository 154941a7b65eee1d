"""Which examples make up the batch at each step: a pure function of (seed, step).

Each epoch is a fresh permutation seeded by (seed, epoch), so a resumed run needs no iterator state and sees
exactly the batches an uninterrupted run would.
"""

import numpy as np

from dae_jax.errors import InputError


def batch_indices(seed: int, step: int, num_examples: int, batch_size: int) -> np.ndarray:
  if batch_size > num_examples:
    raise InputError(
        f"train.batch_size={batch_size} is larger than the {num_examples} training examples; use at most {num_examples}")
  steps_per_epoch = num_examples // batch_size
  epoch, position = divmod(step, steps_per_epoch)
  permutation = np.random.default_rng([seed, epoch]).permutation(num_examples)
  return permutation[position * batch_size:(position + 1) * batch_size]


def batch_at(images: np.ndarray, seed: int, step: int, batch_size: int) -> np.ndarray:
  return images[batch_indices(seed, step, images.shape[0], batch_size)]
