"""DAE: placeholder docstring."""

from dae_jax import config_lib


def get_config(variant: str = ""):
  config = config_lib.default_config()
  config.model.objective = "dae"
  return config_lib.with_variant(config, variant)
