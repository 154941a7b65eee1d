"""Four fake CPU devices (set before JAX is imported) so sharding is tested on one CPU."""

import os
import pathlib
import sys

import pytest

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `import configs.daae` from the checkout, as the CLI loads it.


@pytest.fixture
def tiny_config():
  """The "tiny" variant of a config file: ``tiny_config("dvae")``."""
  from configs import daae, dae, dvae

  files = {"dae": dae, "dvae": dvae, "daae": daae}

  def make(objective: str = "daae", **overrides):
    config = files[objective].get_config("tiny")
    for dotted, value in overrides.items():
      group, name = dotted.split("__")
      config[group][name] = value
    return config

  return make
