import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dae_jax.upconv import DownConv, UpConv

LAYERS = {
  "up": (UpConv, lambda f: nn.ConvTranspose(f, (4, 4), strides=(2, 2), padding="SAME"), 2),
  "down": (DownConv, lambda f: nn.Conv(f, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1))), 0.5),
}


@pytest.mark.parametrize("kind", ["up", "down"])
@pytest.mark.parametrize(
  "shape,features", [((2, 4, 4, 3), 5), ((3, 8, 8, 16), 8), ((1, 2, 2, 4), 1), ((2, 16, 16, 3), 4)]
)
def test_layer_is_a_drop_in_for_its_flax_counterpart(kind, shape, features):
  ours_class, reference_class, scale = LAYERS[kind]
  ours, reference = ours_class(features), reference_class(features)
  x = jax.random.normal(jax.random.PRNGKey(0), shape)
  variables = reference.init(jax.random.PRNGKey(1), x)
  ours_variables = ours.init(jax.random.PRNGKey(1), x)
  jax.tree.map(np.testing.assert_array_equal, variables, ours_variables)  # Same names, shapes and values.
  variables = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(jax.random.PRNGKey(2), p.shape), variables)
  out_hw = int(shape[1] * scale), int(shape[2] * scale)
  target = jax.random.normal(jax.random.PRNGKey(3), (shape[0], *out_hw, features))

  def loss(module, variables, x):
    return jnp.sum(jnp.sin(module.apply(variables, x)) * target)

  np.testing.assert_allclose(ours.apply(variables, x), reference.apply(variables, x), rtol=1e-5, atol=1e-5)
  ours_grads = jax.grad(loss, argnums=(1, 2))(ours, variables, x)
  reference_grads = jax.grad(loss, argnums=(1, 2))(reference, variables, x)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4), ours_grads, reference_grads)
