"""Throughput, FLOPs and fraction of peak of the DVAE and DAAE train steps on the devices present (issue 13).

  python benchmarks/accelerator.py                                  # batch 64, 256, 1024; float32, bfloat16; k 1, 8
  python benchmarks/accelerator.py --batches 64 --repeats 3         # what a 2-core CPU finishes in minutes

The paper's networks (``config_lib.default_config()``, 64x64x3) train on all devices, the batch split over a 1-D
mesh as training does (it must divide by the number of devices), at each ``train.compute_dtype`` and
``train.steps_per_call`` k: one ``multi_step.scan_steps`` dispatch of k steps on k batches already on the devices
(k = 1 too, as training's single steps). The state is donated and carried from call to call, as in training.
Each row is the best of ``--repeats`` calls after compilation and one warm-up call, each call waited for with
``jax.block_until_ready``.

FLOPs per step are XLA's cost analysis of the lowered program (the whole step, see ``flops_per_step``); the fraction of
peak divides the achieved FLOP/s by the devices' dense peak from ``PEAKS`` (vendor datasheets), or, on a CPU or
a device not in the table, by the FLOP/s of a large float32 matmul measured in the same run. The last column is
the wall time of the paper's run (20 epochs of CelebA's 162,770 training images) at the row's images/s.
"""

import argparse
import dataclasses
import functools
import math
import os
import re
import time

import jax
import jax.numpy as jnp
import numpy as np
from train_step import machine, paper_config

from dae_jax import experiment, multi_step, sharding, train_step
from dae_jax.data import loader

PAPER_EPOCHS, PAPER_IMAGES = 20, 162_770  # CelebA's training split.
NO_FLOPS_NOTE = (
  "\n'-': this backend's cost analysis of the lowered program gives no FLOPs (XLA:GPU with jax 0.11). A step's\n"
  "FLOPs do not depend on the device: a CPU run of this script prints them, and % peak = images/s x FLOPs per\n"
  "image / the peak above."
)

# Dense (no structured sparsity) peak FLOP/s of one JAX device: (words or hyphenated parts of device.device_kind,
# lower case; bfloat16; float32). First match wins; "l4" does not match an L40S. NVIDIA states Tensor Core figures
# with sparsity (marked *), halved here; float32 is TF32 where the GPU has it (JAX's default precision uses TF32
# for float32 on Ampere and later). TPUs state bfloat16 only: at JAX's default precision a float32 matmul is one
# bfloat16 pass on the MXU, so the same figure.
TERA = 1e12
PEAKS = (
  # H100 PCIe datasheet: BF16 1,513 TFLOPS*, TF32 756 TFLOPS* (*with sparsity).
  (("h100", "pcie"), 756.5 * TERA, 378 * TERA),
  # H100 NVL datasheet: BF16 1,671*, TF32 835*.
  (("h100", "nvl"), 835.5 * TERA, 417.5 * TERA),
  # H100 SXM datasheet ("NVIDIA H100 80GB HBM3"): BF16 1,979*, TF32 989*.
  (("h100",), 989.5 * TERA, 494.5 * TERA),
  # H200 NVL datasheet: BF16 1,671*, TF32 835*.
  (("h200", "nvl"), 835.5 * TERA, 417.5 * TERA),
  # H200 SXM datasheet: BF16 1,979*, TF32 989*.
  (("h200",), 989.5 * TERA, 494.5 * TERA),
  # A100 datasheet (SXM and PCIe alike): BF16 312, TF32 156 dense (624 / 312 with sparsity).
  (("a100",), 312 * TERA, 156 * TERA),
  # V100 datasheet: FP32 15.7 (SXM2) / 14 (PCIe) TFLOPS. No bfloat16 Tensor Cores: XLA computes it in float32.
  (("v100", "pcie"), 14 * TERA, 14 * TERA),
  (("v100",), 15.7 * TERA, 15.7 * TERA),
  # L4 datasheet: BF16 242*, TF32 120*.
  (("l4",), 121 * TERA, 60 * TERA),
  # T4 datasheet: FP32 8.1 TFLOPS; no bfloat16 Tensor Cores.
  (("t4",), 8.1 * TERA, 8.1 * TERA),
  # Cloud TPU system architecture pages, per chip (one JAX device): v4 275, v5e 197, v5p 459, v6e (Trillium) 918
  # bf16 TFLOPS. JAX names v5e "TPU v5 lite", v5p "TPU v5" and v6e "TPU v6 lite".
  (("tpu v4",), 275 * TERA, 275 * TERA),
  (("tpu v5 lite",), 197 * TERA, 197 * TERA),
  (("tpu v5e",), 197 * TERA, 197 * TERA),
  (("tpu v5p",), 459 * TERA, 459 * TERA),
  (("tpu v5",), 459 * TERA, 459 * TERA),
  (("tpu v6 lite",), 918 * TERA, 918 * TERA),
  (("tpu v6e",), 918 * TERA, 918 * TERA),
)


def table_peak(device_kind: str, dtype: str) -> float | None:
  """The dense peak FLOP/s of one device of this kind at ``dtype`` from ``PEAKS``, or None if it is not there."""
  kind = device_kind.lower()
  for words, bfloat16, float32 in PEAKS:
    if all(re.search(rf"\b{word}\b", kind) for word in words):
      return bfloat16 if dtype == "bfloat16" else float32
  return None


def measured_peak(mesh: jax.sharding.Mesh, size: int = 4096, repeats: int = 3) -> float:
  """FLOP/s per device of a float32 [size, size] @ [size, size] matmul on every device of the mesh at once."""
  sharded = sharding.batch_sharded(mesh)  # One matrix per device.
  a = jax.device_put(jnp.ones((mesh.size, size, size), jnp.float32), sharded)
  matmul = jax.jit(lambda a: a @ a, out_shardings=sharded)
  jax.block_until_ready(matmul(a))
  best = math.inf
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(matmul(a))
    best = min(best, time.perf_counter() - start)
  return 2 * size**3 / best


def program_flops(stage) -> float | None:
  """FLOPs from XLA's cost analysis of a lowered or compiled program: a dict, or (older JAX) a list of one per
  module."""
  analysis = stage.cost_analysis()
  analyses = analysis if isinstance(analysis, list | tuple) else [analysis]
  flops = [a["flops"] for a in analyses if a and "flops" in a]
  return float(sum(flops)) if flops else None


@functools.cache
def loop_counted_per_trip(k: int) -> bool:
  """Whether this backend's cost analysis counts a k-trip scan's body k times (XLA:CPU counts it once)."""
  x = jnp.ones((8, 8), jnp.float32)
  single = program_flops(jax.jit(lambda x: x @ x).lower(x))
  scanned = jax.jit(lambda x: jax.lax.scan(lambda c, _: (c @ x, None), x, None, length=k)[0])
  return program_flops(scanned.lower(x)) > (k + 1) / 2 * single


def flops_per_step(lowered, k: int) -> float | None:
  """FLOPs of one step on all devices from the lowered k-step program. Lowered, not compiled: the lowered program
  is the whole step, before it is split over the devices, and XLA:GPU's compiled cost analysis leaves out the
  convolutions it hands to cuDNN (1.6 instead of 81 GFLOP for the DVAE's step at batch 64 on an H200)."""
  flops = program_flops(lowered)
  if flops is None:
    return None
  return flops / (k if k > 1 and loop_counted_per_trip(k) else 1)


def paper_seconds(images_per_sec: float) -> float:
  """Wall time of the paper's run, 20 epochs of 162,770 images, at ``images_per_sec``."""
  return PAPER_EPOCHS * PAPER_IMAGES / images_per_sec


def benchmark_config(config, batch: int, dtype: str, k: int):
  """``config`` on all devices at this batch, compute dtype and steps per call. Its intervals, unused here, are
  rounded up to multiples of k so that it validates."""
  config.train.batch_size = batch
  config.train.num_devices = 0
  config.train.compute_dtype = dtype
  config.train.steps_per_call = k
  for name in ("log_every_steps", "checkpoint_every_steps", "figures_every_steps"):
    config.train[name] = -(-config.train[name] // k) * k
  return config


def lowered_steps(run: experiment.Experiment, state, inputs):
  """The jitted, donating dispatch of k = ``train.steps_per_call`` steps, lowered for these arguments. k = 1 goes
  through ``multi_step.scan_steps`` too, as the training loop's single steps do."""
  step = multi_step.scan_steps(functools.partial(train_step.train_step, spec=run.spec))
  jitted = sharding.jit_train_step(step, run.mesh, input_sharding=loader.stacked_batch_sharded(run.mesh))
  return jitted.lower(state, inputs, run.step_key)


def device_inputs(run: experiment.Experiment, k: int) -> tuple[np.ndarray, jax.Array]:
  """(one batch on the host, for shapes; the k batches of a call on the devices, [k, batch, ...])."""
  images = np.random.default_rng(0).uniform(size=(k, run.config.train.batch_size, *run.data_shape))
  images = images.astype(np.float32)
  return images[0], jax.device_put(images, loader.stacked_batch_sharded(run.mesh))


def seconds_per_call(compiled, state, inputs, key, repeats: int) -> float:
  """Best of ``repeats`` calls after one warm-up; the donated state is carried from each call to the next."""
  best = math.inf
  for i in range(repeats + 1):
    start = time.perf_counter()
    state = jax.block_until_ready(compiled(state, inputs, key))[0]
    if i:
      best = min(best, time.perf_counter() - start)
  return best


@dataclasses.dataclass(frozen=True)
class Row:
  objective: str
  dtype: str
  batch: int
  k: int
  seconds_per_step: float
  flops_per_step: float | None  # On all devices.
  peak: float | None  # FLOP/s of all devices.

  @property
  def images_per_sec(self) -> float:
    return self.batch / self.seconds_per_step

  @property
  def fraction_of_peak(self) -> float | None:
    if self.flops_per_step is None or not self.peak:
      return None
    return self.flops_per_step / self.seconds_per_step / self.peak


def measure(config, repeats: int, peak_per_device: float | None) -> Row:
  """One row for a ``benchmark_config``: compile its k-step program, time it and read its FLOPs."""
  run = experiment.build(config)
  k = config.train.steps_per_call
  example, inputs = device_inputs(run, k)
  state = experiment.initial_state(run, example)
  lowered = lowered_steps(run, state, inputs)
  seconds = seconds_per_call(lowered.compile(), state, inputs, run.step_key, repeats) / k
  train = config.train
  peak = peak_per_device * run.mesh.size if peak_per_device else None
  flops = flops_per_step(lowered, k)
  return Row(config.model.objective, train.compute_dtype, train.batch_size, k, seconds, flops, peak)


def duration(seconds: float) -> str:
  return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


HEADER = (
  f"{'model':<6}{'dtype':>10}{'batch':>7}{'k':>3}{'images/s':>11}{'ms/step':>10}{'GFLOP/step':>12}{'TFLOP/s':>9}"
  f"{'% peak':>8}{'paper run':>11}"
)


def format_row(row: Row) -> str:
  gflops = f"{row.flops_per_step / 1e9:.1f}" if row.flops_per_step else "-"
  tflops = f"{row.flops_per_step / row.seconds_per_step / TERA:.3f}" if row.flops_per_step else "-"
  fraction = f"{100 * row.fraction_of_peak:.1f}" if row.fraction_of_peak is not None else "-"
  paper = duration(paper_seconds(row.images_per_sec))
  return (
    f"{row.objective:<6}{row.dtype:>10}{row.batch:>7}{row.k:>3}{row.images_per_sec:>11.1f}"
    f"{1e3 * row.seconds_per_step:>10.1f}{gflops:>12}{tflops:>9}{fraction:>8}{paper:>11}"
  )


def peaks_per_device(dtypes, peak_size: int) -> tuple[dict, str]:
  """({dtype: peak FLOP/s of one device}, where the figures come from): the table, else a measured matmul."""
  device = jax.devices()[0]
  table = {dtype: table_peak(device.device_kind, dtype) for dtype in dtypes}
  if device.platform != "cpu" and all(table.values()):
    return table, f"datasheet peak for {device.device_kind!r} (benchmarks/accelerator.py PEAKS)"
  measured = measured_peak(sharding.make_mesh(), peak_size)
  return dict.fromkeys(dtypes, measured), f"measured: float32 {peak_size}^2 matmul on every device at once"


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--batches", type=int, nargs="+", default=[64, 256, 1024])
  parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
  parser.add_argument("--ks", type=int, nargs="+", default=[1, 8], help="train.steps_per_call values")
  parser.add_argument("--objectives", nargs="+", default=["dvae", "daae"], choices=["dvae", "daae"])
  parser.add_argument("--repeats", type=int, default=5, help="timed calls per row, after one warm-up call")
  parser.add_argument("--peak_size", type=int, default=4096, help="matmul size measuring a CPU's peak")
  args = parser.parse_args()
  for batch in args.batches:
    sharding.check_batch_divisible(batch, jax.device_count(), "--batches")
  print(f"machine: {machine()}")
  print(f"load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
  peaks, source = peaks_per_device(args.dtypes, args.peak_size)
  print(f"peak per device: {', '.join(f'{d} {p / TERA:.3f} TFLOP/s' for d, p in peaks.items())} ({source})")
  print(f"64x64x3, paper networks; best of {args.repeats} calls after warm-up; paper run = {PAPER_EPOCHS} epochs")
  print(f"of {PAPER_IMAGES:,} images at the row's images/s\n\n{HEADER}", flush=True)
  uncounted = False
  for objective in args.objectives:
    for batch in args.batches:
      for dtype in args.dtypes:
        for k in args.ks:
          config = benchmark_config(paper_config(objective, batch), batch, dtype, k)
          row = measure(config, args.repeats, peaks[dtype])
          uncounted |= row.flops_per_step is None
          print(format_row(row), flush=True)
  if uncounted:
    print(NO_FLOPS_NOTE)
  print(f"\nload average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
  main()
