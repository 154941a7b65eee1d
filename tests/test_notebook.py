"""The Colab notebook, executed end to end on the CPU with the tiny config and no network."""

import importlib.metadata
import json

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow

# Runs before the notebook's cells, in its kernel: Python's audit hook sees every process it starts (pip, git,
# TensorBoard), whichever way the notebook starts it.
RECORD_PROCESSES = """
import sys
STARTED = []
PROCESS_EVENTS = ("subprocess.Popen", "os.system", "os.posix_spawn", "os.exec", "os.spawn")
sys.addaudithook(lambda event, args: STARTED.append([event, repr(args[:2])]) if event in PROCESS_EVENTS else None)
"""

# What Colab shows the notebook (environment, device files) and the runtime it should conclude.
RUNTIMES = {
  "Colab TPU v5e-1": ({"COLAB_TPU_1VM": "1", "TPU_ACCELERATOR_TYPE": "v5e-1", "COLAB_GPU": "0"}, [], "tpu"),
  "TPU VM with /dev/accel chips": ({}, ["/dev/accel0", "/dev/accel1"], "tpu"),
  "TPU VM with VFIO chips": ({}, ["/dev/vfio/0"], "tpu"),
  "Colab GPU": ({"COLAB_GPU": "1"}, ["/dev/nvidia0"], "gpu"),
  "Colab CPU": ({"COLAB_GPU": "0"}, [], "cpu"),
}


def _report_cell() -> str:
  cases = {name: [environ, files] for name, (environ, files, _) in RUNTIMES.items()}
  return f"""
import json
from IPython import get_ipython
print("REPORT " + json.dumps({{
  "started": STARTED,
  "extensions": sorted(get_ipython().extension_manager.loaded),
  "colab_modules": sorted(m for m in sys.modules if m.startswith("google.colab")),
  "runtimes": {{name: accelerator(*case) for name, case in {cases!r}.items()}},
  "pip": {{runtime: install_arguments(runtime, "/checkout", "/pins.txt") for runtime in ("tpu", "gpu", "cpu")}},
  "pins": tensorflow_pins(),
}}))
"""


def _installed_tensorflow() -> list:
  pins = []
  for name in ("tensorflow", "tensorflow-cpu", "tensorflow-tpu"):
    try:
      pins.append(f"{name}=={importlib.metadata.version(name)}")
    except importlib.metadata.PackageNotFoundError:
      continue
  return pins


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
  """(the executed notebook's code cells, the report its kernel printed at the end, the tmp directory)."""
  nbformat = pytest.importorskip("nbformat")
  nbclient = pytest.importorskip("nbclient")
  tmp_path = tmp_path_factory.mktemp("notebook")
  with pytest.MonkeyPatch.context() as env:
    env.setenv("DAE_JAX_NOTEBOOK_VARIANT", "tiny")
    env.setenv("DAE_JAX_NOTEBOOK_WORKDIR", str(tmp_path / "run"))
    env.setenv("DAE_JAX_CHECKOUT", str(REPO))
    env.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    notebook = nbformat.read(str(REPO / "launch" / "colab_tpu.ipynb"), as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(RECORD_PROCESSES))
    notebook.cells.append(nbformat.v4.new_code_cell(_report_cell()))
    try:
      nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
      ).execute()
    finally:
      nbformat.write(notebook, str(tmp_path / "executed.ipynb"))  # A failure can then be read cell by cell.
  cells = [cell for cell in notebook.cells[1:-1] if cell.cell_type == "code"]
  report = next(line for line in _text(notebook.cells[-1]).splitlines() if line.startswith("REPORT "))
  return cells, json.loads(report[len("REPORT ") :]), tmp_path


def _text(cell) -> str:
  return "".join(o.get("text", "") for o in cell.get("outputs", []))


def test_the_notebook_trains_and_draws_the_three_figures_inline(executed):
  cells, _, tmp_path = executed
  outputs = [o for cell in cells for o in cell.get("outputs", [])]
  assert any("trained to step 6" in o.get("text", "") for o in outputs)
  assert sum("image/png" in o.get("data", {}) for o in outputs) == 3  # Figs. 1-3 inline.
  assert (tmp_path / "run" / "checkpoints" / "6").is_dir()
  assert not (REPO / "launch" / "dae_jax_runs").exists()


def test_training_progress_lines_appear_once_in_the_training_cell_without_orbax_chatter(executed):
  cells, _, _ = executed
  training = next(cell for cell in cells if "train.train_and_evaluate" in cell.source)
  text = _text(training)
  progress = [line for line in text.splitlines() if "] step " in line]
  assert [line.split("] ")[1].split(":")[0] for line in progress] == ["step 2/6", "step 4/6", "step 6/6"], text
  assert text.count("step 6/6") == 1  # Not printed again by a handler on the root logger.
  assert "steps/s, ETA" in progress[-1] and "metrics_io.py" in progress[-1]
  assert "checkpoint_manager.py" not in text and "Saving checkpoint" not in text


def test_off_colab_nothing_is_installed_mounted_or_started(executed):
  _, report, _ = executed
  assert report["started"] == []  # No pip, git or TensorBoard process.
  assert "tensorboard" not in report["extensions"]
  assert report["colab_modules"] == []  # google.colab.drive was never imported.


def test_the_runtime_decides_what_pip_installs_and_tensorflow_stays_pinned(executed):
  _, report, _ = executed
  assert report["runtimes"] == {name: expected for name, (_, _, expected) in RUNTIMES.items()}
  accelerator_free = ["-c", "/pins.txt", "tensorboard", "-e", "/checkout"]
  assert report["pip"] == {
    "tpu": ["-c", "/pins.txt", "jax[tpu]", "tensorboard", "-e", "/checkout"],
    "gpu": accelerator_free,  # Colab's CUDA jax stays.
    "cpu": accelerator_free,
  }
  assert sorted(report["pins"]) == sorted(_installed_tensorflow())
