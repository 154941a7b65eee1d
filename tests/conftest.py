"""Four fake CPU devices (set before JAX is imported) so sharding is tested on one CPU."""

import os
import pathlib
import shutil
import sys
import tempfile

import pytest

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()

# The tests, and the command lines they start, compile the same few tiny programs again and again, and on
# this CPU compiling is most of a tiny run (a 6-step training run: 108 s, 32 s with every compile a cache hit).
# One XLA cache, new for each session so that every program is still compiled once, shared through the
# environment with every subprocess.
_XLA_CACHE = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _XLA_CACHE = tempfile.mkdtemp(prefix="dae_jax_tests_xla_cache_")
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _XLA_CACHE
  os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
  os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"


def pytest_sessionfinish(session, exitstatus):
  if _XLA_CACHE is not None:
    shutil.rmtree(_XLA_CACHE, ignore_errors=True)


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
