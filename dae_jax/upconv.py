"""The DCGAN layers (4x4 kernels, stride 2) with every direction computed in the form XLA:CPU runs fastest.

A strided convolution S_K and the transposed convolution T_K = S_K^T are each other's gradients:

  y = S_K(z):  dz = T_K(dy),  dK = kernel gradient of S at (z, dy)
  y = T_K(x):  dx = S_K(dy),  dK = kernel gradient of S at (dy, x)

XLA:CPU differentiates ``lax.conv_transpose`` at a few GFLOP/s (autodiff of a convolution with a dilated input)
and runs any dilated-input convolution at about a third of the speed of a strided one. So here T is computed
without dilation, as one stride-1 2x2 convolution producing the four output phases as channels, then
interleaved; S is XLA's strided convolution; and both gradients are written by hand from the pair above.

``DownConv`` and ``UpConv`` are drop-ins for ``nn.Conv(f, (4, 4), (2, 2), padding=((1, 1), (1, 1)))`` and
``nn.ConvTranspose(f, (4, 4), (2, 2), padding="SAME")``: same parameter names, shapes, initialisers, outputs and
gradients (tests/test_upconv.py). On GPU/TPU, whose convolution libraries have no such gap, they use the plain
XLA ops.
"""

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
from jax import lax
import jax.numpy as jnp

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")
_PADDING = ((1, 1), (1, 1))
# Output phase a of the transposed conv reads input rows (i - 1, i) for a = 0 and (i, i + 1) for a = 1; these
# are the kernel rows that multiply them (derived from S: out[i] = sum_k z[2i + k - 1] K[k]).
_PHASE_TAPS = ((3, 1), (2, 0))


def _strided(z: jax.Array, kernel: jax.Array) -> jax.Array:
  """S_K: [N, 2H, 2W, I] -> [N, H, W, O] with kernel [4, 4, I, O]."""
  return lax.conv_general_dilated(z, kernel, (2, 2), _PADDING, dimension_numbers=_DIMENSIONS)


def _kernel_grad(z: jax.Array, dy: jax.Array, kernel: jax.Array) -> jax.Array:
  _, vjp = jax.vjp(lambda k: _strided(z, k), kernel)
  return vjp(dy)[0]


def _phase_kernel(kernel: jax.Array) -> jax.Array:
  """[4, 4, I, O] -> [2, 2, O, 4 I]: the stride-1 kernel producing the four output phases (a, b) of T_K."""
  transposed = jnp.swapaxes(kernel, 2, 3)
  rows = []
  for t in range(2):
    taps = [
      jnp.concatenate([transposed[_PHASE_TAPS[a][t], _PHASE_TAPS[b][s]] for a in (0, 1) for b in (0, 1)], axis=-1)
      for s in range(2)
    ]
    rows.append(jnp.stack(taps))
  return jnp.stack(rows)


def _transposed(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """T_K = S_K^T: [N, H, W, O] -> [N, 2H, 2W, I], without a dilated convolution."""
  n, h, w, _ = x.shape
  channels = kernel.shape[2]
  phases = lax.conv_general_dilated(
    jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))), _phase_kernel(kernel), (1, 1), "VALID", dimension_numbers=_DIMENSIONS
  )
  phases = phases.reshape(n, h + 1, w + 1, 2, 2, channels)
  rows = [jnp.stack([phases[:, a : a + h, b : b + w, a, b] for b in (0, 1)], axis=3) for a in (0, 1)]
  return jnp.stack(rows, axis=2).reshape(n, 2 * h, 2 * w, channels)


@jax.custom_vjp
def strided_conv(z: jax.Array, kernel: jax.Array) -> jax.Array:
  return _strided(z, kernel)


strided_conv.defvjp(
  lambda z, k: (_strided(z, k), (z, k)), lambda res, dy: (_transposed(dy, res[1]), _kernel_grad(res[0], dy, res[1]))
)


@jax.custom_vjp
def transposed_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return _transposed(x, kernel)


transposed_conv.defvjp(
  lambda x, k: (_transposed(x, k), (x, k)), lambda res, dy: (_strided(dy, res[1]), _kernel_grad(dy, res[0], res[1]))
)


def _flax_transpose_kernel_to_strided(kernel: jax.Array) -> jax.Array:
  """Flax's ConvTranspose kernel [4, 4, in, out] as the kernel of the strided conv it is the transpose of."""
  return jnp.swapaxes(kernel, 2, 3)[::-1, ::-1]


def _on_cpu() -> bool:
  return jax.default_backend() == "cpu"


class _Layer(nn.Module):
  features: int
  use_bias: bool = True
  kernel_init: Callable[..., Any] = nn.initializers.lecun_normal()
  bias_init: Callable[..., Any] = nn.initializers.zeros_init()

  def _bias(self, y: jax.Array) -> jax.Array:
    if not self.use_bias:
      return y
    return y + self.param("bias", self.bias_init, (self.features,)).astype(y.dtype)


class DownConv(_Layer):
  """``nn.Conv(features, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)))`` with fast gradients on CPU."""

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    kernel = self.param("kernel", self.kernel_init, (4, 4, z.shape[-1], self.features)).astype(z.dtype)
    return self._bias(strided_conv(z, kernel) if _on_cpu() else _strided(z, kernel))


class UpConv(_Layer):
  """``nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding="SAME")`` with fast gradients on CPU."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", self.kernel_init, (4, 4, x.shape[-1], self.features)).astype(x.dtype)
    if not _on_cpu():
      return self._bias(lax.conv_transpose(x, kernel, (2, 2), "SAME", dimension_numbers=_DIMENSIONS))
    return self._bias(transposed_conv(x, _flax_transpose_kernel_to_strided(kernel)))
