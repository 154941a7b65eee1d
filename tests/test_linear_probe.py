import jax
import jax.numpy as jnp
import numpy as np

from dae_jax.eval import linear_probe


def test_probe_reads_linearly_encoded_attributes_and_beats_the_majority():
  codes = jax.random.normal(jax.random.PRNGKey(0), (2000, 10))
  labels = jnp.stack([codes[:, 0] > 0.5, codes[:, 1] - codes[:, 2] > 0, jnp.zeros(2000, bool)], axis=1)
  result = linear_probe.evaluate(codes[:1500], labels[:1500], codes[1500:], labels[1500:], 300)
  accuracy, baseline = np.array(result["accuracy"]), np.array(result["majority_baseline"])
  assert accuracy[0] > 0.95 and accuracy[1] > 0.95
  assert baseline[0] < 0.8 and 0.4 < baseline[1] < 0.6
  assert accuracy[2] == baseline[2] == 1.0  # A constant attribute: both always right.
