"""A linear classifier per CelebA attribute on the encoder's codes (the authors' SVM evaluation, as logistic
regression), compared with always guessing the majority class."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dae_jax.data import loader


def fit(codes: jax.Array, labels: jax.Array, steps: int, learning_rate: float = 1e-2):
  """(weights [D, A], bias [A]) of independent logistic regressions, one per column of the bool ``labels``."""
  mean, std = codes.mean(0), codes.std(0) + 1e-6
  x = (codes - mean) / std
  params = {"w": jnp.zeros((codes.shape[1], labels.shape[1])), "b": jnp.zeros((labels.shape[1],))}
  tx = optax.adam(learning_rate)

  def loss(p):
    return optax.sigmoid_binary_cross_entropy(x @ p["w"] + p["b"], labels.astype(jnp.float32)).mean()

  def step(carry, _):
    p, opt_state = carry
    grads = jax.grad(loss)(p)
    updates, opt_state = tx.update(grads, opt_state)
    return (optax.apply_updates(p, updates), opt_state), None

  (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), None, length=steps)
  return params, mean, std


def evaluate(train_codes, train_labels, test_codes, test_labels, steps: int) -> dict:
  """Per-attribute test accuracy of the probe and of the training majority class."""
  params, mean, std = jax.jit(fit, static_argnums=2)(train_codes, train_labels, steps)
  predictions = ((test_codes - mean) / std) @ params["w"] + params["b"] > 0
  accuracy = np.asarray((predictions == test_labels).mean(0))
  majority = np.asarray(train_labels.mean(0) > 0.5)
  baseline = np.asarray((test_labels == majority).mean(0))
  return {
    "accuracy": accuracy.tolist(),
    "majority_baseline": baseline.tolist(),
    "mean_accuracy": float(accuracy.mean()),
    "mean_majority_baseline": float(baseline.mean()),
  }


def encode(autoencoder, params, images, batch_size: int = 256) -> jax.Array:
  """Codes (posterior means) of uint8 or float images, with BatchNorm's running averages."""
  codes = []
  for start in range(0, len(images), batch_size):
    batch = jnp.asarray(loader.to_pixels(np.asarray(images[start : start + batch_size])))
    codes.append(autoencoder.apply(params, batch, True, method=autoencoder.encode)[0])
  return jnp.concatenate(codes)


def probe(
  autoencoder, params, train_images, train_attributes, held_images, held_attributes, steps: int, max_train: int = 20000
) -> dict:
  """``evaluate`` on the codes of (at most ``max_train``) training images and of the held-out ones."""
  return evaluate(
    encode(autoencoder, params, train_images[:max_train]),
    jnp.asarray(train_attributes[:max_train]),
    encode(autoencoder, params, held_images),
    jnp.asarray(held_attributes),
    steps,
  )
