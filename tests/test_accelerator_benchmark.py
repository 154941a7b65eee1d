"""benchmarks/accelerator.py on the CPU: FLOPs from XLA's cost analysis, the peak table, the paper-run projection
and one row of the tiny DVAE, end to end, on conftest's 4 CPU devices."""

import importlib.util
import math
import sys

import jax
import jax.numpy as jnp
import pytest

from dae_jax import sharding

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))  # The script imports its neighbour train_step.py, as run from there.
_spec = importlib.util.spec_from_file_location("accelerator", REPO / "benchmarks" / "accelerator.py")
accelerator = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(accelerator)

M, K, N = 64, 128, 32  # [M, K] @ [K, N]: 2 * M * N * K FLOPs.


def test_program_flops_of_a_matmul_are_two_m_n_k():
  a, b = jnp.ones((M, K)), jnp.ones((K, N))
  compiled = jax.jit(lambda a, b: a @ b).lower(a, b).compile()
  assert accelerator.program_flops(compiled) == 2 * M * N * K


def test_flops_per_step_of_a_sharded_scan_are_one_steps_on_all_devices():
  # The lowered program is the whole batch's, before it is split over the devices; the scan's body runs k times,
  # whether or not the cost analysis counts it once per trip.
  mesh = sharding.make_mesh()
  k = 3
  steps = jax.jit(
    lambda a, b: jax.lax.scan(lambda c, b: (c + (a @ b).sum(), None), 0.0, b)[0],
    in_shardings=(sharding.batch_sharded(mesh), sharding.replicated(mesh)),
  )
  lowered = steps.lower(jnp.ones((M, K)), jnp.ones((k, K, N)))
  flops = accelerator.flops_per_step(lowered, k)
  # The scan adds a sum and a counter per step: a few percent over the matmul's FLOPs at these sizes.
  assert 2 * M * N * K <= flops < 1.05 * 2 * M * N * K


@pytest.mark.parametrize(
  "kind, dtype, tflops",
  [
    ("NVIDIA H200", "bfloat16", 989.5),
    ("NVIDIA H100 80GB HBM3", "float32", 494.5),
    ("NVIDIA H100 PCIe", "bfloat16", 756.5),
    ("NVIDIA A100-SXM4-80GB", "float32", 156),
    ("Tesla V100-SXM2-16GB", "bfloat16", 15.7),
    ("NVIDIA L4", "bfloat16", 121),
    ("TPU v5 lite", "bfloat16", 197),
    ("TPU v5p", "float32", 459),
    ("TPU v4", "bfloat16", 275),
  ],
)
def test_table_peak_of_a_known_device(kind, dtype, tflops):
  assert accelerator.table_peak(kind, dtype) == tflops * 1e12


@pytest.mark.parametrize("kind", ["cpu", "NVIDIA L40S", "NVIDIA GH200 480GB", "TPU v7x"])
def test_table_peak_of_an_unknown_device_is_none(kind):
  assert accelerator.table_peak(kind, "bfloat16") is None


def test_the_cpu_peak_is_measured():
  peaks, source = accelerator.peaks_per_device(["float32", "bfloat16"], peak_size=256)
  assert source.startswith("measured")
  assert peaks["float32"] == peaks["bfloat16"] > 0


def test_the_paper_run_projection():
  images = accelerator.PAPER_EPOCHS * accelerator.PAPER_IMAGES
  assert accelerator.paper_seconds(images / 3600) == pytest.approx(3600)
  assert accelerator.paper_seconds(1000) == pytest.approx(3255.4)
  assert accelerator.duration(3255.4) == "54.3 min"
  assert accelerator.duration(7200) == "2.0 h"


def test_a_row_of_the_tiny_dvae_in_bfloat16_with_two_steps_per_call(tiny_config):
  config = accelerator.benchmark_config(tiny_config("dvae"), batch=8, dtype="bfloat16", k=2)
  row = accelerator.measure(config, repeats=1, peak_per_device=1e9)
  assert (row.objective, row.dtype, row.batch, row.k) == ("dvae", "bfloat16", 8, 2)
  assert row.peak == 4e9
  for value in (row.seconds_per_step, row.images_per_sec, row.flops_per_step, row.fraction_of_peak):
    assert math.isfinite(value) and value > 0
  assert row.images_per_sec == 8 / row.seconds_per_step
  line = accelerator.format_row(row)
  assert len(line) == len(accelerator.HEADER) and line.startswith("dvae")
