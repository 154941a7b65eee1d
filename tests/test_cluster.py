"""When dae_jax starts JAX's distributed runtime: one test per place a run can find itself in.

The environments are simulated for JAX's own cluster classes (SLURM and Open MPI variables, a GCE metadata server
on localhost). ``jax.distributed.initialize`` is replaced by a recorder, which also asks JAX's detection what it
would fill in, so each test checks both our decision and that the simulated environment is one JAX understands.
"""

import http.server
import os
import re
import threading

import jax
from jax._src import clusters
from jax._src.clusters import cloud_tpu_cluster, cluster
import pytest

from dae_jax import distributed
from dae_jax.errors import InputError

_CLUSTER_PREFIXES = (
  "SLURM_",
  "OMPI_",
  "TPU_",
  "MEGASCALE_",
  "KUBERNETES_",
  "DAE_JAX_",
  "JAX_COORDINATOR",
  "JAX_LOCAL_DEVICE_IDS",
  "GCE_METADATA",
)


@pytest.fixture
def calls(monkeypatch):
  """A clean environment, and the list of calls to ``jax.distributed.initialize``."""
  for name in list(os.environ):
    if name.startswith(_CLUSTER_PREFIXES):
      monkeypatch.delenv(name)
  recorded = []

  def record(*args, **kwargs):
    # JAX's detection ignores the detected values when all three are given, as initialize() itself does.
    detected = (
      None if args else clusters.ClusterEnv.auto_detect_unset_distributed_params(None, None, None, None, None, 5)
    )
    recorded.append((args, kwargs, detected))

  monkeypatch.setattr(jax.distributed, "initialize", record)
  collectives = jax.config.jax_cpu_collectives_implementation
  yield recorded
  jax.config.update("jax_cpu_collectives_implementation", collectives)


def _srun_step(monkeypatch, tasks: int, procid: int, allocation_tasks: int | None = None):
  """What ``srun`` sets for task ``procid`` of a step over 2 nodes (two tasks per node)."""
  step = {
    "SLURM_JOB_ID": "4242",
    "SLURM_JOB_NODELIST": "gpu[007-008]",
    "SLURM_STEP_ID": "0",
    "SLURM_STEP_NODELIST": "gpu[007-008]",
    "SLURM_STEP_NUM_NODES": "2",
    "SLURM_STEP_NUM_TASKS": str(tasks),
    "SLURM_NTASKS": str(allocation_tasks or tasks),
    "SLURM_PROCID": str(procid),
    "SLURM_LOCALID": str(procid % 2),
  }
  for name, value in step.items():
    monkeypatch.setenv(name, value)


def test_an_srun_step_starts_the_runtime_from_slurms_variables(calls, monkeypatch):
  _srun_step(monkeypatch, tasks=4, procid=3)
  assert distributed.initialize() is True
  # JAX's port for job 4242: 4242 % 4096 + 61440; one GPU per task, its local rank.
  assert calls == [((), {}, ("gpu007:61586", 4, 3, [1]))]
  assert jax.config.jax_cpu_collectives_implementation == "gloo"


def test_a_one_task_step_inside_a_larger_allocation_starts_nothing(calls, monkeypatch):
  _srun_step(monkeypatch, tasks=1, procid=0, allocation_tasks=8)  # e.g. `srun -n1 -N1 ... prepare_data`.
  assert distributed.initialize() is False
  assert calls == []


def test_an_salloc_shell_or_batch_script_outside_srun_starts_nothing(calls, monkeypatch):
  # The allocation's variables (and the batch step's rank 0), but no step: SLURM_STEP_* are missing.
  for name, value in {
    "SLURM_JOB_ID": "4242",
    "SLURM_JOB_NODELIST": "gpu[007-008]",
    "SLURM_NODELIST": "gpu[007-008]",
    "SLURM_NNODES": "2",
    "SLURM_NTASKS": "16",
    "SLURM_PROCID": "0",
    "SLURM_LOCALID": "0",
  }.items():
    monkeypatch.setenv(name, value)
  assert distributed.initialize() is False
  assert calls == []


def test_an_open_mpi_job_starts_the_runtime(calls, monkeypatch):
  monkeypatch.setenv("OMPI_MCA_orte_hnp_uri", "1531576320.0;tcp://10.96.0.1,10.148.0.1:34911")
  monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
  monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "1")
  monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1")
  assert distributed.initialize() is True
  assert calls == [((), {}, ("10.96.0.1:62624", 2, 1, [1]))]


class _Metadata(http.server.BaseHTTPRequestHandler):
  """The few keys of a GCE TPU VM's metadata server that JAX reads, for worker 1 of a slice."""

  attributes: dict[str, str] = {}

  def do_GET(self):  # noqa: N802 (the name http.server calls)
    key = self.path.removeprefix("/computeMetadata/v1/instance/attributes/")
    body = self.attributes.get(key) if self.headers.get("Metadata-Flavor") == "Google" else None
    self.send_response(200 if body is not None else 404)
    self.end_headers()
    self.wfile.write((body or "").encode())

  def log_message(self, *args):
    pass


@pytest.fixture
def tpu_vm(monkeypatch):
  """A Cloud TPU VM whose metadata server lists ``workers`` workers; this one is worker 1 (or 0 if alone)."""
  servers = []

  def make(workers: int):
    endpoints = ",".join(f"w-{i}:{i}:127.0.0.1" for i in range(workers))  # The old name:id:ip form.
    attributes = {
      "agent-worker-number": str(min(1, workers - 1)),
      "worker-network-endpoints": endpoints,
      "tpu-env": f"ACCELERATOR_TYPE: 'v4-{8 * workers}'\nWORKER_ID: '{min(1, workers - 1)}'\n",
    }
    server = http.server.ThreadingHTTPServer(
      ("127.0.0.1", 0), type("Handler", (_Metadata,), {"attributes": attributes})
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    servers.append(server)
    monkeypatch.setenv("GCE_METADATA_IP", f"127.0.0.1:{server.server_port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    # What jax's import-time cloud_tpu_init() records on a machine with TPU chips and libtpu.
    monkeypatch.setattr(cloud_tpu_cluster, "running_in_cloud_tpu_vm", True)
    monkeypatch.setattr(cluster, "running_in_cloud_tpu_vm", True)

  yield make
  for server in servers:
    server.shutdown()
    server.server_close()


def test_a_gce_tpu_slice_of_two_workers_starts_the_runtime(calls, tpu_vm):
  tpu_vm(workers=2)
  assert distributed.initialize() is True
  # JAX's fixed TPU port, worker 0 as coordinator; on TPUs JAX leaves the local devices alone.
  assert calls == [((), {}, ("127.0.0.1:8482", 2, 1, None))]


def test_a_single_host_tpu_vm_starts_nothing(calls, tpu_vm):
  tpu_vm(workers=1)
  assert distributed.initialize() is False
  assert calls == []


def test_one_process_on_a_plain_machine_starts_nothing(calls):
  assert distributed.jax_cluster() is None
  assert distributed.initialize() is False
  assert calls == []


def test_the_explicit_flags_are_passed_exactly_and_win_over_slurm(calls, monkeypatch):
  _srun_step(monkeypatch, tasks=4, procid=3)
  assert distributed.initialize("10.0.0.5:1234", 2, 1) is True
  assert calls == [(("10.0.0.5:1234", 2, 1), {}, None)]


def test_the_environment_variables_stand_in_for_the_flags(calls, monkeypatch):
  monkeypatch.setenv("DAE_JAX_COORDINATOR", "10.0.0.5:1234")
  monkeypatch.setenv("DAE_JAX_NUM_PROCESSES", "3")
  monkeypatch.setenv("DAE_JAX_PROCESS_ID", "0")
  assert distributed.initialize() is True
  assert distributed.initialize(process_id=2) is True  # A flag beats its variable.
  assert [args for args, _, _ in calls] == [("10.0.0.5:1234", 3, 0), ("10.0.0.5:1234", 3, 2)]


def test_num_processes_one_skips_detection_inside_an_srun_step(calls, monkeypatch):
  _srun_step(monkeypatch, tasks=4, procid=3)
  assert distributed.initialize(num_processes=1) is False
  assert calls == []


@pytest.mark.parametrize(
  "args,env,message",
  [
    (("10.0.0.5:1234", 2, 2), {}, "--process_id=2 do not describe a run"),
    (("", 2, 0), {}, "--coordinator_address='', --num_processes=2"),
    ((), {"DAE_JAX_NUM_PROCESSES": "two"}, "DAE_JAX_NUM_PROCESSES='two' is not allowed; it must be an integer"),
  ],
)
def test_an_incomplete_explicit_run_is_one_clear_error(calls, monkeypatch, args, env, message):
  for name, value in env.items():
    monkeypatch.setenv(name, value)
  with pytest.raises(InputError, match=re.escape(message)):
    distributed.initialize(*args)
  assert calls == []
