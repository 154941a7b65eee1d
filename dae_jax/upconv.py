"""A 4x4, stride-2 transposed convolution whose gradient is written by hand.

XLA:CPU differentiates ``lax.conv_transpose`` (a convolution with a dilated input) at a few GFLOP/s, which made
the decoder ~10x slower to train than its forward pass. A transposed convolution is, by definition, the linear
transpose of the ordinary strided convolution with the same kernel, so both of its gradients are ordinary
strided-convolution computations that XLA runs fast:

  y = up(x, K) = down_K^T(x)   =>   dx = down_K(dy),   dK = d/dK <down_K(dy), x>.

``UpConv`` is a drop-in for ``flax.linen.ConvTranspose(features, (4, 4), strides=(2, 2), padding="SAME")``:
same parameter names, shapes, initialisers, outputs and gradients (see tests/test_upconv.py).
"""

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")
_STRIDES = (2, 2)
# Flax's "SAME" for a 4x4 stride-2 transposed conv is the transpose of the strided conv padded by 1 on each side
# (PyTorch's ConvTranspose2d(k=4, s=2, p=1)).
_DOWN_PADDING = ((1, 1), (1, 1))


def _down_kernel(kernel: jax.Array) -> jax.Array:
  """The strided-conv kernel (HWIO) whose transpose is Flax's transposed conv with ``kernel`` (H, W, in, out)."""
  return jnp.swapaxes(kernel, 2, 3)[::-1, ::-1]


def _down(z: jax.Array, down_kernel: jax.Array) -> jax.Array:
  return lax.conv_general_dilated(z, down_kernel, _STRIDES, _DOWN_PADDING, dimension_numbers=_DIMENSIONS)


def _up(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return lax.conv_transpose(x, kernel, _STRIDES, "SAME", dimension_numbers=_DIMENSIONS)


@jax.custom_vjp
def conv_transpose_4x4_s2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Flax-convention transposed conv: x [N, H, W, in], kernel [4, 4, in, out] -> [N, 2H, 2W, out]."""
  return _up(x, kernel)


def _forward(x, kernel):
  return _up(x, kernel), (x, kernel)


def _backward(residuals, dy):
  x, kernel = residuals
  down_kernel = _down_kernel(kernel)
  dx = _down(dy, down_kernel)
  _, kernel_vjp = jax.vjp(lambda k: _down(dy, k), down_kernel)
  (d_down_kernel,) = kernel_vjp(x)
  # _down_kernel is its own inverse (a flip and a swap), so it maps the gradient back as well.
  return dx, _down_kernel(d_down_kernel)


conv_transpose_4x4_s2.defvjp(_forward, _backward)


class UpConv(nn.Module):
  """``nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding="SAME")`` with a fast hand-written gradient."""

  features: int
  use_bias: bool = True
  kernel_init: Callable[..., Any] = nn.initializers.lecun_normal()
  bias_init: Callable[..., Any] = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", self.kernel_init, (4, 4, x.shape[-1], self.features))
    y = conv_transpose_4x4_s2(x, kernel.astype(x.dtype))
    if self.use_bias:
      y = y + self.param("bias", self.bias_init, (self.features,)).astype(x.dtype)
    return y
