"""Several processes, one program: JAX's own distributed runtime, started once before anything else touches JAX.

Who decides that a run spans several processes:
1. The flags --coordinator_address, --num_processes, --process_id, or else the environment variables
   DAE_JAX_COORDINATOR, DAE_JAX_NUM_PROCESSES and DAE_JAX_PROCESS_ID (several GPU hosts without a scheduler,
   or processes on one machine). ``--num_processes=1`` says "one process" and skips detection.
2. Otherwise JAX's own cluster detection, the same that ``jax.distributed.initialize()`` uses to fill in its
   arguments: an Open MPI job (``mpirun``), a SLURM job step (``srun``), a GKE or GCE Cloud TPU slice. The
   runtime starts only when the detected cluster has more than one process. A SLURM allocation shell
   (``salloc``) or a batch script outside ``srun`` is no step, so nothing starts there, and a one-task step
   (``srun -n1 ...``) inside a larger allocation starts nothing either.
A run with one process starts nothing.
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


def jax_cluster():
  """The cluster environment JAX's own ``initialize()`` would read its arguments from, or None.

  Private API (``jax._src.clusters``), checked on jax 0.10.2: JAX exposes no public "which cluster am I in?",
  and re-implementing its rules would drift from the ones ``initialize()`` really applies. This mirrors the
  selection in ``ClusterEnv.auto_detect_unset_distributed_params``: the first registered environment that is
  not opt-in only (mpi4py is) and reports itself present.
  """
  from jax._src import clusters

  return next(
    (env for env in clusters.ClusterEnv._cluster_types if not env.opt_in_only_method and env.is_env_present()), None
  )


def _detected_process_count(cluster) -> int:
  # JAX's SlurmCluster counts SLURM_NTASKS, which a step can inherit from its allocation; the step's own task
  # count is the number of processes that will actually meet at the coordinator.
  step_tasks = _env_int("SLURM_STEP_NUM_TASKS") if cluster.name == "slurm" else None
  return step_tasks if step_tasks is not None else cluster.get_process_count()


def _start(*args) -> None:
  # Processes on CPUs need a collectives library to talk to each other; GPUs and TPUs bring their own, and
  # the setting touches only the CPU backend.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(*args)


def _explicit(coordinator: str, num_processes: int, process_id: int) -> tuple[str, int, int]:
  coordinator = coordinator or os.environ.get("DAE_JAX_COORDINATOR", "")
  num_processes = num_processes or _env_int("DAE_JAX_NUM_PROCESSES") or 0
  if process_id < 0:
    process_id = _env_int("DAE_JAX_PROCESS_ID")
    process_id = -1 if process_id is None else process_id
  return coordinator, num_processes, process_id


def initialize(coordinator: str = "", num_processes: int = 0, process_id: int = -1) -> bool:
  """Starts the distributed runtime when the run spans several processes; returns whether it did."""
  coordinator, num_processes, process_id = _explicit(coordinator, num_processes, process_id)
  if coordinator or num_processes > 1:
    if not coordinator or num_processes < 1 or not 0 <= process_id < num_processes:
      raise InputError(
        f"--coordinator_address={coordinator!r}, --num_processes={num_processes}, --process_id={process_id} do not "
        "describe a run: give all three, with 0 <= process_id < num_processes"
      )
    _start(coordinator, num_processes, process_id)
    return True
  if num_processes == 1:
    return False
  cluster = jax_cluster()
  if cluster is None or _detected_process_count(cluster) < 2:
    return False
  _start()
  return True


def is_main_process() -> bool:
  """Process 0 writes metrics, figures and config.json; every process saves and restores checkpoints."""
  return jax.process_index() == 0
