"""Data parallelism with ``jax.jit`` and named shardings on a 1-D ("data",) mesh.

The batch axis is split over devices and everything else is replicated; XLA inserts the collectives, so
BatchNorm statistics and gradients are over the global batch with no ``axis_name`` anywhere.
"""

from collections.abc import Callable, Sequence
import glob
import os
import shutil

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
import numpy as np

from dae_jax.errors import InputError

DATA_AXIS = "data"


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  return Mesh(np.asarray(jax.devices() if devices is None else devices), (DATA_AXIS,))


def local_devices(num_devices: int) -> list:
  """The first ``num_devices`` devices (0 means all), or an error naming how many there are."""
  devices = jax.devices()
  if num_devices > len(devices):
    raise InputError(
      f"train.num_devices={num_devices} is more than the {len(devices)} devices here; use 0 (all) or fewer"
    )
  return devices[:num_devices] if num_devices else devices


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def check_batch_divisible(batch_size: int, num_devices: int, name: str = "train.batch_size") -> None:
  if batch_size % num_devices:
    raise InputError(
      f"{name}={batch_size} is not divisible by the {num_devices} devices; use a multiple of {num_devices}"
    )


def global_batch(local: np.ndarray, mesh: Mesh, global_size: int) -> jax.Array:
  """The global batch array from this process's contiguous slice of it (the whole batch with one process)."""
  check_batch_divisible(global_size, mesh.size)
  return jax.make_array_from_process_local_data(batch_sharded(mesh), local, (global_size, *local.shape[1:]))


def replicate(tree, mesh: Mesh):
  return jax.device_put(tree, replicated(mesh))


def jit_train_step(step_fn: Callable, mesh: Mesh, *, donate_state: bool = True, input_sharding=None) -> Callable:
  """``step_fn(state, inputs, key) -> (state, metrics)`` jitted with sharded inputs (by default a batch split
  along its first axis) and everything else replicated.

  Donating the state lets XLA update parameters in place; only do it when the caller owns the state.
  """
  return jax.jit(
    step_fn,
    in_shardings=(replicated(mesh), input_sharding or batch_sharded(mesh), replicated(mesh)),
    out_shardings=(replicated(mesh), replicated(mesh)),
    donate_argnums=(0,) if donate_state else (),
  )


def describe(mesh: Mesh, batch_size: int) -> str:
  """What is training: processes, devices (count, kind, platform) and the batch each device holds."""
  devices = list(mesh.devices.ravel())
  kinds = ", ".join(sorted({d.device_kind for d in devices}))
  return (
    f"{jax.process_count()} process(es), {len(devices)} {devices[0].platform} device(s) ({kinds}), "
    f"global batch {batch_size} = {batch_size // len(devices)} per device"
  )


def accelerators_present() -> dict:
  """Which accelerators this host has, whatever JAX was installed with (driver files, device nodes)."""
  return {
    "gpu": os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi") is not None,
    "tpu": bool(glob.glob("/dev/accel[0-9]*") or glob.glob("/dev/vfio/[0-9]*")),
  }


def unused_accelerator_warning(platform: str, present: dict) -> str | None:
  """One line when the host has an accelerator but JAX runs on the CPU: the usual cause is a CPU-only jaxlib."""
  if platform != "cpu":
    return None
  if present.get("gpu"):
    return "an NVIDIA GPU is present but JAX runs on the CPU; install the GPU build: pip install 'dae_jax[cuda12]'"
  if present.get("tpu"):
    return "a TPU is present but JAX runs on the CPU; install the TPU build: pip install 'dae_jax[tpu]'"
  return None
