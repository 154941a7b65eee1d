"""Encoders, decoders and the latent discriminator (Flax Linen).

Decoders return logits; the sigmoid is applied by whoever needs pixels, so BCE is computed from logits.
DAE, DVAE and DAAE share these modules; only a variational encoder differs (it returns a mean and a
log-variance instead of one code).

Mixed precision: each module's ``dtype`` is the compute dtype of its activations, matmuls and convolutions;
parameters and BatchNorm statistics are always float32 (Flax's ``param_dtype``, and BatchNorm reduces in
float32). What a module returns (codes, logits) is float32 whatever its ``dtype``, so losses, KL, the chains'
state and eval see float32 and only the networks' insides are rounded.
"""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from dae_jax.upconv import DownConv, UpConv


def batch_norm(use_running_average: bool, dtype: Any = jnp.float32) -> nn.BatchNorm:
  # PyTorch's defaults (momentum 0.1 there is 0.9 here), as in the paper's DCGAN-style networks. Layers feeding
  # a BatchNorm have no bias: BatchNorm removes it, its true gradient is 0, and Adam would turn the rounding
  # noise in that gradient into full-size random steps.
  return nn.BatchNorm(
    use_running_average=use_running_average, momentum=0.9, epsilon=1e-5, dtype=dtype, param_dtype=jnp.float32
  )


def dense(features: int, dtype: Any, use_bias: bool = True) -> nn.Dense:
  return nn.Dense(features, use_bias=use_bias, dtype=dtype, param_dtype=jnp.float32)


def reparameterise(mean: jax.Array, log_var, eps: jax.Array) -> jax.Array:
  """A posterior sample mean + std * eps from a variational encoder's output; the code itself otherwise."""
  return mean if log_var is None else mean + jnp.exp(0.5 * log_var) * eps


def _split_code(h: jax.Array, variational: bool):
  h = h.astype(jnp.float32)
  if variational:
    mean, log_var = jnp.split(h, 2, axis=-1)
    return mean, log_var
  return h, None


class ConvEncoder(nn.Module):
  """4x4 stride-2 convs, BatchNorm + ReLU after each, then a dense layer to the code; with ``standardise_code``, a
  BatchNorm without scale or shift on the code (``model.code_batchnorm``, the DAAE's default)."""

  widths: Sequence[int]
  latent_dim: int
  variational: bool = False
  dtype: Any = jnp.float32
  standardise_code: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, use_running_average: bool):
    h = x.astype(self.dtype)  # DownConv computes in its input's dtype.
    for width in self.widths:
      h = DownConv(width, use_bias=False)(h)
      h = nn.relu(batch_norm(use_running_average, self.dtype)(h))
    features = self.latent_dim * (2 if self.variational else 1)
    h = dense(features, self.dtype, use_bias=not self.standardise_code)(h.reshape(h.shape[0], -1))
    if self.standardise_code:
      # Each code dimension gets N(0, I)'s mean and variance by construction, over the batch in training (the
      # running averages at evaluation), so the discriminator is left only the shape and the correlations to
      # match; without a scale or shift, nothing can learn the moments away again.
      h = nn.BatchNorm(
        use_running_average=use_running_average,
        momentum=0.9,
        epsilon=1e-5,
        use_scale=False,
        use_bias=False,
        dtype=self.dtype,
        param_dtype=jnp.float32,
      )(h)
    return _split_code(h, self.variational)


class ConvDecoder(nn.Module):
  """Dense to a (size / 2^L)^2 map, then L fractionally-strided convs; BatchNorm + ReLU between; logits out.

  Every BatchNorm normalises per channel, the first one included: it follows the reshape to the map, as in
  DCGAN, so it has ``widths[-1]`` features rather than one per dense output.
  """

  widths: Sequence[int]
  image_size: int
  channels: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array, use_running_average: bool) -> jax.Array:
    widths = tuple(reversed(self.widths))
    base = self.image_size // 2 ** len(widths)
    h = dense(base * base * widths[0], self.dtype, use_bias=False)(z).reshape(z.shape[0], base, base, widths[0])
    h = nn.relu(batch_norm(use_running_average, self.dtype)(h))
    for width in widths[1:]:
      h = nn.relu(batch_norm(use_running_average, self.dtype)(UpConv(width, use_bias=False)(h)))
    return UpConv(self.channels)(h).astype(jnp.float32)


class MLPEncoder(nn.Module):
  """For vector data. Swish rather than ReLU: R(x) - x estimates a gradient field, which should be smooth."""

  hidden: Sequence[int]
  latent_dim: int
  variational: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, use_running_average: bool):
    del use_running_average  # No BatchNorm: one interface for every encoder.
    h = x.reshape(x.shape[0], -1)
    for width in self.hidden:
      h = nn.swish(dense(width, self.dtype)(h))
    h = dense(self.latent_dim * (2 if self.variational else 1), self.dtype)(h)
    return _split_code(h, self.variational)


class MLPDecoder(nn.Module):
  hidden: Sequence[int]
  data_shape: Sequence[int]
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array, use_running_average: bool) -> jax.Array:
    del use_running_average
    h = z
    for width in reversed(self.hidden):
      h = nn.swish(dense(width, self.dtype)(h))
    size = 1
    for dim in self.data_shape:
      size *= dim
    return dense(size, self.dtype)(h).astype(jnp.float32).reshape(z.shape[0], *self.data_shape)


class Autoencoder(nn.Module):
  """R(x) = sigmoid(decode(encode(x))). ``encode`` returns (code or mean, log-variance or None)."""

  encoder: nn.Module
  decoder: nn.Module

  def encode(self, x: jax.Array, use_running_average: bool = False):
    return self.encoder(x, use_running_average)

  def decode(self, z: jax.Array, use_running_average: bool = False) -> jax.Array:
    return self.decoder(z, use_running_average)

  def __call__(self, x: jax.Array, use_running_average: bool = False) -> jax.Array:
    code, _ = self.encode(x, use_running_average)
    return self.decode(code, use_running_average)


class LatentDiscriminator(nn.Module):
  """Tells prior samples (label 1) from encodings (label 0); returns logits of shape [batch]."""

  hidden: Sequence[int]
  dropout: float
  leaky_relu_slope: float
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array, deterministic: bool) -> jax.Array:
    h = z
    for width in self.hidden:
      h = nn.leaky_relu(dense(width, self.dtype)(h), self.leaky_relu_slope)
      h = nn.Dropout(self.dropout, deterministic=deterministic)(h)
    return dense(1, self.dtype)(h)[:, 0].astype(jnp.float32)


def build(
  model_config: ml_collections.ConfigDict, data_shape: Sequence[int], objective, dtype: Any = jnp.float32
) -> tuple[Autoencoder, LatentDiscriminator | None]:
  """The autoencoder for ``data_shape`` (per example: (H, W, C) images or (d,) vectors) and, when the
  ``objectives.Objective`` is adversarial, the latent discriminator; every network computes in ``dtype``."""
  variational = objective.variational
  if model_config.architecture == "conv":
    height, _, channels = data_shape
    encoder = ConvEncoder(
      tuple(model_config.widths), model_config.latent_dim, variational, dtype, model_config.code_batchnorm
    )
    decoder = ConvDecoder(tuple(model_config.widths), height, channels, dtype)
  else:
    encoder = MLPEncoder(tuple(model_config.mlp_hidden), model_config.latent_dim, variational, dtype)
    decoder = MLPDecoder(tuple(model_config.mlp_hidden), tuple(data_shape), dtype)
  discriminator = None
  if objective.adversarial:
    discriminator = LatentDiscriminator(
      tuple(model_config.disc_hidden), model_config.disc_dropout, model_config.leaky_relu_slope, dtype
    )
  return Autoencoder(encoder, decoder), discriminator
