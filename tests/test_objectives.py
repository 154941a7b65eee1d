"""The objectives table: what each objective adds, checked against the formulas, and what config_lib allows."""

import types

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dae_jax import config_lib, objectives
from dae_jax.errors import InputError


class _ConstantLogit(nn.Module):
  """A discriminator stub whose logit is the first code dimension."""

  @nn.compact
  def __call__(self, z, deterministic):
    del deterministic
    return z[:, 0]


def _spec(**fields):
  defaults = {"kl_weight": 1.0, "adversarial_weight": 1.0, "discriminator": None}
  return types.SimpleNamespace(**{**defaults, **fields})


def test_the_table_names_each_objective_once_with_its_parts():
  table = objectives.OBJECTIVES
  assert sorted(table) == ["daae", "dae", "dvae"]
  assert [(o.variational, o.adversarial) for o in (table["dae"], table["dvae"], table["daae"])] == [
    (False, False),
    (True, False),
    (False, True),
  ]
  assert all(name == o.name for name, o in table.items())


def test_dae_adds_nothing_and_dvae_adds_the_weighted_kl():
  mean = jnp.array([[0.5, -1.0], [0.0, 2.0]])
  log_var = jnp.array([[0.0, np.log(4.0)], [np.log(0.25), 0.0]])
  value, metrics = objectives.OBJECTIVES["dae"].regulariser(_spec(), mean, None, mean, None, None)
  assert float(value) == 0.0 and metrics == {}
  var = np.exp(np.asarray(log_var))
  naive = np.mean(0.5 * np.sum(np.asarray(mean) ** 2 + var - 1 - np.log(var), axis=1))
  value, metrics = objectives.OBJECTIVES["dvae"].regulariser(_spec(kl_weight=0.5), mean, log_var, mean, None, None)
  np.testing.assert_allclose(float(metrics["kl"]), naive, rtol=1e-6)
  np.testing.assert_allclose(float(value), 0.5 * naive, rtol=1e-6)


def test_daae_adds_the_weighted_non_saturating_loss_of_its_discriminator():
  codes = jnp.array([[2.0, 0.0], [-1.0, 0.0]])
  spec = _spec(discriminator=_ConstantLogit(), adversarial_weight=3.0)
  value, metrics = objectives.OBJECTIVES["daae"].regulariser(spec, codes, None, codes, {}, jax.random.PRNGKey(0))
  naive = np.mean(np.log1p(np.exp(-np.array([2.0, -1.0]))))  # -log sigmoid(logit), labels "prior".
  np.testing.assert_allclose(float(metrics["adversarial"]), naive, rtol=1e-6)
  np.testing.assert_allclose(float(value), 3.0 * naive, rtol=1e-6)


@pytest.mark.parametrize(
  "field,table",
  [
    ("model.objective", objectives.OBJECTIVES),
    ("loss.reconstruction", objectives.RECONSTRUCTION_LOSSES),
    ("loss.reduction", objectives.REDUCTIONS),
  ],
)
def test_config_lib_allows_exactly_the_tables_names(field, table):
  group, name = field.split(".")
  for allowed in table:
    config = config_lib.default_config()
    config[group][name] = allowed
    config_lib.validate(config)
  config = config_lib.default_config()
  config[group][name] = "nope"
  with pytest.raises(InputError, match=f"choose one of {', '.join(table)}$"):
    config_lib.validate(config)
