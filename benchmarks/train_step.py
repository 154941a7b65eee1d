"""Images/s of the DVAE and DAAE train steps (64x64x3, batch 64, the paper's networks) and of a 20-step chain.

  python benchmarks/train_step.py                 # dae_jax, plain-Flax decoder and, if installed, PyTorch
  python benchmarks/train_step.py --skip_plain    # without the slow plain-Flax reference
  python benchmarks/train_step.py --skip_plain --skip_compile --repeats 9

Everything is timed after compilation/warm-up. "plain Flax" is the same model with ``nn.ConvTranspose`` in the
decoder instead of our ``UpConv`` (same parameters and gradients, autodiff by XLA). If PyTorch is installed
(``pip install -e '.[bench]'``), an equivalent PyTorch model is timed in the same run, eager and under
``torch.compile``. The train steps and a 2048x2048 fp32 matmul are timed interleaved (one call each per
repetition, the order rotated every repetition) so that other jobs on the machine slow them alike; ratios are
taken within a repetition and their median and range printed. "% of matmul peak" is a step's GFLOP/s (its
FLOPs from XLA's cost analysis of the compiled dae_jax step) over the matmul's in the same repetition.
"""

import argparse
import dataclasses
import functools
import os
import platform
import statistics
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dae_jax import config_lib, experiment, models, sampling, sharding, train_step

PEAK_SIZE = 2048


def machine() -> str:
  cpu = platform.processor()
  if os.path.exists("/proc/cpuinfo"):
    names = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")]
    cpu = names[0] if names else cpu
  devices = jax.devices()
  return (
    f"{cpu} | {os.cpu_count()} cores | jax {jax.__version__} on {len(devices)} x "
    f"{devices[0].device_kind} ({devices[0].platform})"
  )


def paper_config(objective: str, batch: int):
  config = config_lib.default_config()
  config.model.objective = objective
  config.train.batch_size = batch
  config.train.num_devices = 1
  return config


def _time(fn, repeats: int) -> float:
  """Seconds per call of ``fn()`` (which blocks), best of ``repeats`` after one warm-up call."""
  fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return min(times)


def jax_train_step(objective: str, batch: int, plain_flax: bool = False):
  """(a blocking call running one train step, the compiled step's FLOPs from XLA's cost analysis)."""
  config = paper_config(objective, batch)
  run = experiment.build(config)
  if plain_flax:
    decoder = run.spec.autoencoder.decoder
    plain = PlainFlaxDecoder(decoder.widths, decoder.image_size, decoder.channels)
    autoencoder = models.Autoencoder(run.spec.autoencoder.encoder, plain)
    run = dataclasses.replace(run, spec=dataclasses.replace(run.spec, autoencoder=autoencoder))
  images = np.random.default_rng(0).uniform(size=(batch, 64, 64, 3)).astype(np.float32)
  state = experiment.initial_state(run, images)
  step = sharding.jit_train_step(functools.partial(train_step.train_step, spec=run.spec), run.mesh, donate_state=False)
  batch_array = sharding.global_batch(images, run.mesh, len(images))
  cost = step.lower(state, batch_array, run.step_key).compile().cost_analysis()
  flops = (cost[0] if isinstance(cost, list) else cost)["flops"]
  return lambda: jax.block_until_ready(step(state, batch_array, run.step_key)), flops


def jax_train_images_per_sec(objective: str, batch: int, repeats: int, plain_flax: bool = False) -> float:
  """Images/s of one train step, best of ``repeats`` (for benchmarks/input_pipeline.py)."""
  return batch / _time(jax_train_step(objective, batch, plain_flax)[0], repeats)


def matmul_step():
  """A blocking fp32 PEAK_SIZE^3 matmul: the machine's matmul peak, measured beside the steps."""
  a = jax.random.normal(jax.random.PRNGKey(0), (PEAK_SIZE, PEAK_SIZE))
  matmul = jax.jit(jnp.dot)
  return lambda: jax.block_until_ready(matmul(a, a))


class PlainFlaxDecoder(models.ConvDecoder):
  """``models.ConvDecoder`` with Flax's own transposed convolution: the reference our UpConv replaces."""

  @nn.compact
  def __call__(self, z, use_running_average):
    widths = tuple(reversed(self.widths))
    base = self.image_size // 2 ** len(widths)
    h = nn.Dense(base * base * widths[0], use_bias=False)(z).reshape(z.shape[0], base, base, widths[0])
    h = nn.relu(models.batch_norm(use_running_average)(h))
    for width in widths[1:]:
      h = nn.ConvTranspose(width, (4, 4), strides=(2, 2), padding="SAME", use_bias=False)(h)
      h = nn.relu(models.batch_norm(use_running_average)(h))
    return nn.ConvTranspose(self.channels, (4, 4), strides=(2, 2), padding="SAME")(h)


def chain_images_per_sec(batch: int, steps: int, repeats: int) -> tuple[float, float]:
  """(lax.scan chain, Python loop over a jitted single transition), in image-transitions per second."""
  run = experiment.build(paper_config("dae", batch))
  x0 = jax.random.uniform(jax.random.PRNGKey(0), (batch, 64, 64, 3))
  params = experiment.initial_state(run, np.asarray(x0)).autoencoder_variables()
  spec = sampling.ChainSpec()
  sample_chain = jax.jit(
    sampling.make_sample_chain(run.spec.autoencoder, run.data_shape, run.spec.latent_dim, spec), static_argnums=3
  )
  key = jax.random.PRNGKey(1)
  scan_time = _time(lambda: jax.block_until_ready(sample_chain(params, key, x0, steps)), repeats)
  single = jax.jit(lambda p, k, x: sampling.reconstruct(run.spec.autoencoder, p, x, k, spec, run.spec.latent_dim))

  def python_loop():
    x = x0
    for t in range(steps):
      x = single(params, jax.random.fold_in(key, t), x)
    jax.block_until_ready(x)

  loop_time = _time(python_loop, repeats)
  return batch * steps / scan_time, batch * steps / loop_time


def torch_train_step(objective: str, batch: int, compiled: bool):
  """A blocking call running one PyTorch train step; None without PyTorch, the error if torch.compile fails."""
  try:
    from torch_reference import TorchStep
  except ImportError:  # PyTorch is optional: pip install -e '.[bench]'
    return None
  step = TorchStep(objective, batch, compiled=compiled)
  if compiled:
    try:
      step()  # Compiles here, so that a machine without a working compiler is reported, not fatal.
    except Exception as error:  # noqa: BLE001 - inductor's failures come as many exception types.
      return f"{type(error).__name__}: {str(error).splitlines()[0][:100]}"
  return step


def time_interleaved(steps: dict, repeats: int) -> dict:
  """{name: [seconds per repetition]}: one call of each per repetition, the order rotated each time."""
  names = list(steps)
  for name in names:
    steps[name]()  # Warm-up (and compilation, for torch.compile) before any timing.
  times = {name: [] for name in names}
  for rep in range(repeats):
    shift = rep % len(names)
    for name in names[shift:] + names[:shift]:
      start = time.perf_counter()
      steps[name]()
      times[name].append(time.perf_counter() - start)
  return times


def _median_range(values) -> str:
  return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"


def objective_steps(objective: str, args) -> tuple[dict, float, list]:
  """({name: blocking step}, the dae_jax step's FLOPs, notes on what was skipped and why)."""
  ours, flops = jax_train_step(objective, args.batch)
  steps, notes = {"dae_jax": ours, "matmul": matmul_step()}, []
  if not args.skip_plain:
    steps["plain Flax"] = jax_train_step(objective, args.batch, plain_flax=True)[0]
  for name, compiled in (("PyTorch eager", False), ("torch.compile", True)):
    if compiled and args.skip_compile:
      continue
    step = torch_train_step(objective, args.batch, compiled)
    if callable(step):
      steps[name] = step
    elif step is not None:
      notes.append(f"{objective}: torch.compile skipped, it failed here ({step})")
  return steps, flops, notes


def report(objective: str, times: dict, flops: float, batch: int) -> list[str]:
  """One table row: median images/s of each step, then ratios taken within each repetition."""
  peak_flops = 2 * PEAK_SIZE**3
  rates = {name: f"{batch / statistics.median(seconds):.1f}" for name, seconds in times.items()}

  def ratio(name: str) -> str:
    if name not in times:
      return "-"
    return _median_range([t / s for s, t in zip(times["dae_jax"], times[name])])

  def percent(name: str) -> str:
    if name not in times:
      return "-"
    values = [100 * (flops / s) / (peak_flops / m) for s, m in zip(times[name], times["matmul"])]
    return f"{statistics.median(values):.0f}%"

  peak = peak_flops / statistics.median(times["matmul"]) / 1e9
  return [
    f"{objective} train step",
    rates["dae_jax"],
    rates.get("plain Flax", "-"),
    rates.get("PyTorch eager", "-"),
    rates.get("torch.compile", "-"),
    ratio("PyTorch eager"),
    ratio("torch.compile"),
    f"{percent('dae_jax')} / {percent('PyTorch eager')}",
    f"{peak:.0f}",
  ]


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--repeats", type=int, default=7)
  parser.add_argument("--chain_steps", type=int, default=20)
  parser.add_argument("--skip_plain", action="store_true", help="skip the slow plain-Flax reference")
  parser.add_argument("--skip_compile", action="store_true", help="skip PyTorch's torch.compile column")
  parser.add_argument("--chain_repeats", type=int, default=5, help="the chain's timing: best of this many")
  parser.add_argument("--skip_chain", action="store_true", help="skip the 20-step chain timing")
  args = parser.parse_args()
  print(f"machine: {machine()}")
  print(
    f"batch {args.batch}, 64x64x3, widths 64-128-256-512, latent 100; steps: median of {args.repeats} interleaved "
    "calls after warm-up; ratios: median (range) over the repetitions\n"
  )
  header = ["what", "dae_jax img/s", "plain Flax", "PyTorch", "torch.compile", "dae_jax/PyTorch", "dae_jax/compile"]
  header += ["% matmul peak (jax / torch)", "peak GFLOP/s"]
  rows, notes = [header], []
  for objective in ("dvae", "daae"):
    steps, flops, objective_notes = objective_steps(objective, args)
    notes += objective_notes + [f"{objective}: {flops / args.batch / 1e9:.3f} GFLOP per image (XLA cost analysis)"]
    rows.append(report(objective, time_interleaved(steps, args.repeats), flops, args.batch))
  print(" | ".join(rows[0]))
  print(" | ".join("---" for _ in rows[0]))
  for row in rows[1:]:
    print(" | ".join(row))
  for note in notes:
    print(f"note: {note}")
  if args.skip_chain:
    return
  scan_rate, loop_rate = chain_images_per_sec(args.batch, args.chain_steps, args.chain_repeats)
  print(
    f"\n{args.chain_steps}-step chain, image-steps/s: lax.scan {scan_rate:.1f}, Python loop of jitted steps "
    f"{loop_rate:.1f} (scan/loop {scan_rate / loop_rate:.2f}x)"
  )


if __name__ == "__main__":
  main()
