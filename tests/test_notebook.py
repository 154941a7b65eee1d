"""The Colab notebook, executed end to end on the CPU with the tiny config and no network."""

import os

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow


def test_colab_notebook_runs_end_to_end(tmp_path, monkeypatch):
  nbformat = pytest.importorskip("nbformat")
  nbclient = pytest.importorskip("nbclient")
  monkeypatch.setenv("DAE_JAX_NOTEBOOK_VARIANT", "tiny")
  monkeypatch.setenv("DAE_JAX_NOTEBOOK_WORKDIR", str(tmp_path / "run"))
  monkeypatch.setenv("DAE_JAX_CHECKOUT", str(REPO))
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
  notebook = nbformat.read(str(REPO / "launch" / "colab_tpu.ipynb"), as_version=4)
  nbclient.NotebookClient(
    notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
  ).execute()
  outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
  assert any("trained to step 6" in o.get("text", "") for o in outputs)
  assert sum("image/png" in o.get("data", {}) for o in outputs) == 3  # Figs. 1-3 inline.
  assert (tmp_path / "run" / "checkpoints" / "6").is_dir()
  assert not os.path.exists(REPO / "launch" / "dae_jax_run")
