import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dae_jax import upconv
from dae_jax.upconv import DownConv, UpConv

LAYERS = {
  "up": (UpConv, lambda f, bias: nn.ConvTranspose(f, (4, 4), strides=(2, 2), padding="SAME", use_bias=bias)),
  "down": (DownConv, lambda f, bias: nn.Conv(f, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)), use_bias=bias)),
}
# (input shape, features): small odd cases, then spatial sizes of the 64x64 model (encoder, then decoder) with fewer
# channels: XLA:CPU's own transposed-convolution gradient, the reference, takes seconds at the model's widths.
SHAPES = {
  "down": [
    ((2, 4, 4, 3), 5),
    ((3, 8, 8, 16), 8),
    ((1, 2, 2, 4), 1),
    ((2, 16, 16, 3), 4),
    ((1, 6, 6, 1), 3),
    ((2, 7, 5, 3), 2),  # Odd height and width: flax's explicit padding drops the last row/column.
    ((1, 64, 64, 3), 8),
    ((1, 32, 32, 8), 16),
    ((1, 8, 8, 16), 32),
  ],
  "up": [
    ((2, 4, 4, 3), 5),
    ((3, 8, 8, 16), 8),
    ((1, 2, 2, 4), 1),
    ((2, 16, 16, 3), 4),
    ((1, 3, 5, 1), 3),
    ((1, 4, 4, 32), 16),
    ((1, 16, 16, 16), 8),
    ((1, 32, 32, 8), 3),
  ],
}
CASES = [(kind, shape, features) for kind, cases in SHAPES.items() for shape, features in cases]


def _loss(module, variables, x, target):
  return jnp.sum(jnp.sin(module.apply(variables, x)) * target)


def _assert_close(ours, reference):
  """Float32 rounding of sums that cancel: relative to the array's largest entry, not to each entry."""
  np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-5 * float(np.abs(reference).max()))


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("kind,shape,features", CASES)
def test_layer_is_a_drop_in_for_its_flax_counterpart(kind, shape, features, use_bias):
  ours_class, reference_class = LAYERS[kind]
  ours, reference = ours_class(features, use_bias=use_bias), reference_class(features, use_bias)
  x = jax.random.normal(jax.random.PRNGKey(0), shape)
  variables = reference.init(jax.random.PRNGKey(1), x)
  jax.tree.map(np.testing.assert_array_equal, variables, ours.init(jax.random.PRNGKey(1), x))  # Names, shapes, values.
  variables = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(jax.random.PRNGKey(2), p.shape), variables)
  expected = reference.apply(variables, x)
  target = jax.random.normal(jax.random.PRNGKey(3), expected.shape)
  # Jitted: op by op, every one of the patch slices would compile on its own (seconds a case on this CPU).
  _assert_close(jax.jit(ours.apply)(variables, x), expected)
  ours_grads = jax.jit(jax.grad(functools.partial(_loss, ours), argnums=(0, 1)))(variables, x, target)
  reference_grads = jax.jit(jax.grad(functools.partial(_loss, reference), argnums=(0, 1)))(variables, x, target)
  jax.tree.map(_assert_close, ours_grads, reference_grads)


@pytest.mark.parametrize("shape", [(2, 8, 8, 3), (1, 7, 5, 2)])
def test_unpatch_is_the_adjoint_of_patches(shape):
  z = jax.random.normal(jax.random.PRNGKey(0), shape)
  columns = upconv.patches(z)
  other = jax.random.normal(jax.random.PRNGKey(1), columns.shape)
  np.testing.assert_allclose(jnp.vdot(columns, other), jnp.vdot(z, upconv.unpatch(other, shape)), rtol=1e-5)
