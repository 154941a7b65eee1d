import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dae_jax.upconv import UpConv


@pytest.mark.parametrize("shape,features", [((2, 4, 4, 3), 5), ((3, 8, 8, 16), 8), ((1, 2, 2, 4), 1)])
def test_upconv_is_a_drop_in_for_flax_conv_transpose(shape, features):
  reference = nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding="SAME")
  ours = UpConv(features)
  x = jax.random.normal(jax.random.PRNGKey(0), shape)
  variables = reference.init(jax.random.PRNGKey(1), x)
  ours_variables = ours.init(jax.random.PRNGKey(1), x)
  jax.tree.map(np.testing.assert_array_equal, variables, ours_variables)  # Same names, shapes and values.
  variables = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(jax.random.PRNGKey(2), p.shape), variables)
  target = jax.random.normal(jax.random.PRNGKey(3), (shape[0], 2 * shape[1], 2 * shape[2], features))

  def loss(module, variables, x):
    return jnp.sum(jnp.sin(module.apply(variables, x)) * target)

  np.testing.assert_allclose(ours.apply(variables, x), reference.apply(variables, x), rtol=1e-5, atol=1e-5)
  ours_grads = jax.grad(loss, argnums=(1, 2))(ours, variables, x)
  reference_grads = jax.grad(loss, argnums=(1, 2))(reference, variables, x)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4), ours_grads, reference_grads)
