"""What the start of a run says about the devices it trains on."""

import jax

from dae_jax import sharding


def test_describe_names_processes_devices_and_the_per_device_batch():
  line = sharding.describe(sharding.make_mesh(jax.devices()[:4]), 64)
  assert line == "1 process(es), 4 cpu device(s) (cpu), global batch 64 = 16 per device"


def test_an_accelerator_left_unused_is_one_line_naming_the_extra():
  gpu = sharding.unused_accelerator_warning("cpu", {"gpu": True, "tpu": False})
  tpu = sharding.unused_accelerator_warning("cpu", {"gpu": False, "tpu": True})
  assert "pip install 'dae_jax[cuda12]'" in gpu and "\n" not in gpu
  assert "pip install 'dae_jax[tpu]'" in tpu
  assert sharding.unused_accelerator_warning("gpu", {"gpu": True, "tpu": False}) is None
  assert sharding.unused_accelerator_warning("cpu", {"gpu": False, "tpu": False}) is None
