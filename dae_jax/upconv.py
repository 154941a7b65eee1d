"""The DCGAN layers (4x4 kernels, stride 2) as matmuls on CPU, with gradients written by hand.

A strided convolution S_K and the transposed convolution T_K = S_K^T are each other's gradients:

  y = S_K(z):  dz = T_K(dy),  dK = kernel gradient of S at (z, dy)
  y = T_K(x):  dx = S_K(dy),  dK = kernel gradient of S at (dy, x)

On CPU both are one matmul with the 16 I-channel patches of S's input (``patches``) or with their adjoint
(``unpatch``), so each layer is three matmuls: forward, input gradient and kernel gradient. XLA:CPU runs its
own convolutions at about half the speed it runs a matmul of the same size, differentiates ``conv_transpose``
at a few GFLOP/s, and runs the kernel gradient's matmul as autodiff writes it (contracting the long batch x
pixels axis of both operands) through a slower library than the other two; so the gradients are written by
hand with that matmul's small operand transposed first (benchmarks/conv_layers.py measures each form).

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


def patches(z: jax.Array) -> jax.Array:
  """[N, H', W', C] -> [N, H, W, 16 C], the inputs of each output pixel of S (padding 1, stride 2).

  Space-to-depth first, so that the 4x4 stride-2 window becomes a 2x2 stride-1 window of 4 C channels: four
  contiguous slices rather than sixteen strided ones. An odd H' or W' gets one more zero row or column, whose
  extra output is cropped.
  """
  n, h_in, w_in, c = z.shape
  h, w = (h_in - 2) // 2 + 1, (w_in - 2) // 2 + 1
  padded = jnp.pad(z, ((0, 0), (1, 1 + h_in % 2), (1, 1 + w_in % 2), (0, 0)))
  rows, cols = padded.shape[1] // 2, padded.shape[2] // 2
  blocks = padded.reshape(n, rows, 2, cols, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, rows, cols, 4 * c)
  return jnp.concatenate([blocks[:, a : a + h, b : b + w] for a in (0, 1) for b in (0, 1)], axis=-1)


def unpatch(columns: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """The adjoint of ``patches`` for an input of ``shape``: each column summed back into the pixel it came from."""
  return jax.linear_transpose(patches, jax.ShapeDtypeStruct(shape, columns.dtype))(columns)[0]


def kernel_matrix(kernel: jax.Array) -> jax.Array:
  """[4, 4, I, O] -> [16 I, O], rows in the order of ``patches``' channels (row block, column block, row, col)."""
  i, o = kernel.shape[2:]
  return kernel.reshape(2, 2, 2, 2, i, o).transpose(0, 2, 1, 3, 4, 5).reshape(16 * i, o)


def _kernel_matrix_grad(small: jax.Array, large: jax.Array) -> jax.Array:
  """small^T @ large over the batch x pixels rows, with ``small`` transposed first (see the module docstring);
  the barrier stops XLA folding that transpose back into the matmul."""
  return lax.optimization_barrier(small.T) @ large


def _matrix_to_kernel(matrix: jax.Array, i: int, o: int) -> jax.Array:
  return matrix.reshape(2, 2, 2, 2, i, o).transpose(0, 2, 1, 3, 4, 5).reshape(4, 4, i, o)


def _rows(x: jax.Array) -> jax.Array:
  return x.reshape(-1, x.shape[-1])


@jax.custom_vjp
def strided_conv(z: jax.Array, kernel: jax.Array) -> jax.Array:
  """S_K: [N, H', W', I] -> [N, ceil(H' / 2 - 1 / 2), ..., O] with kernel [4, 4, I, O], stride 2, padding 1."""
  return _strided_fwd(z, kernel)[0]


def _strided_fwd(z, kernel):
  columns = patches(z)
  y = columns @ kernel_matrix(kernel)
  return y, (columns, kernel, z.shape)


def _strided_bwd(res, dy):
  columns, kernel, z_shape = res
  i, o = kernel.shape[2:]
  dz = unpatch(dy @ kernel_matrix(kernel).T, z_shape)
  dkernel = _kernel_matrix_grad(_rows(dy), _rows(columns)).T
  return dz, _matrix_to_kernel(dkernel, i, o)


strided_conv.defvjp(_strided_fwd, _strided_bwd)


@jax.custom_vjp
def transposed_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """T_K = S_K^T: [N, H, W, O] -> [N, 2H, 2W, I] with S's kernel [4, 4, I, O]."""
  return _transposed_fwd(x, kernel)[0]


def _transposed_fwd(x, kernel):
  n, h, w, _ = x.shape
  y = unpatch(x @ kernel_matrix(kernel).T, (n, 2 * h, 2 * w, kernel.shape[2]))
  return y, (x, kernel)


def _transposed_bwd(res, dy):
  x, kernel = res
  i, o = kernel.shape[2:]
  columns = patches(dy)
  dx = columns @ kernel_matrix(kernel)
  dkernel = _kernel_matrix_grad(_rows(x), _rows(columns)).T
  return dx, _matrix_to_kernel(dkernel, i, o)


transposed_conv.defvjp(_transposed_fwd, _transposed_bwd)


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
  """``nn.Conv(features, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)))``, as matmuls on CPU."""

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    kernel = self.param("kernel", self.kernel_init, (4, 4, z.shape[-1], self.features)).astype(z.dtype)
    if not _on_cpu():
      return self._bias(lax.conv_general_dilated(z, kernel, (2, 2), ((1, 1), (1, 1)), dimension_numbers=_DIMENSIONS))
    return self._bias(strided_conv(z, kernel))


class UpConv(_Layer):
  """``nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding="SAME")``, as matmuls on CPU."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", self.kernel_init, (4, 4, x.shape[-1], self.features)).astype(x.dtype)
    if not _on_cpu():
      return self._bias(lax.conv_transpose(x, kernel, (2, 2), "SAME", dimension_numbers=_DIMENSIONS))
    return self._bias(transposed_conv(x, _flax_transpose_kernel_to_strided(kernel)))
