"""Several processes, one program: JAX's own distributed runtime, started once before anything else touches JAX.

On a TPU VM slice and under SLURM ``jax.distributed.initialize()`` finds the coordinator, process count and
process id by itself; elsewhere (several GPU hosts, or processes on one machine) they come from the flags or
the environment variables DAE_JAX_COORDINATOR, DAE_JAX_NUM_PROCESSES and DAE_JAX_PROCESS_ID. A run with one
process starts nothing.
"""

import os

import jax

from dae_jax.errors import InputError


def _env_int(name: str) -> int | None:
  value = os.environ.get(name)
  if value is None:
    return None
  try:
    return int(value)
  except ValueError:
    raise InputError(f"{name}={value!r} is not allowed; it must be an integer") from None


def _detected_cluster() -> bool:
  """A TPU VM slice or a SLURM job step with more than one task: JAX can read everything from the environment."""
  slurm_tasks = os.environ.get("SLURM_NTASKS") or os.environ.get("SLURM_STEP_NUM_TASKS")
  return bool(os.environ.get("TPU_WORKER_HOSTNAMES", "").count(",")) or (slurm_tasks or "1") != "1"


def initialize(coordinator: str = "", num_processes: int = 0, process_id: int = -1) -> bool:
  """Starts the distributed runtime when the run spans several processes; returns whether it did."""
  coordinator = coordinator or os.environ.get("DAE_JAX_COORDINATOR", "")
  num_processes = num_processes or _env_int("DAE_JAX_NUM_PROCESSES") or 0
  if process_id < 0:
    process_id = _env_int("DAE_JAX_PROCESS_ID")
    process_id = -1 if process_id is None else process_id
  if coordinator or num_processes > 1:
    if not coordinator or num_processes < 1 or not 0 <= process_id < num_processes:
      raise InputError(
        f"--coordinator_address={coordinator!r}, --num_processes={num_processes}, --process_id={process_id} do not "
        "describe a run: give all three, with 0 <= process_id < num_processes"
      )
    # CPU processes need a collectives library to talk to each other; GPUs and TPUs bring their own.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, num_processes, process_id)
    return True
  if _detected_cluster():
    jax.distributed.initialize()
    return True
  return False


def is_main_process() -> bool:
  """Process 0 writes metrics, figures and config.json; every process saves and restores checkpoints."""
  return jax.process_index() == 0
