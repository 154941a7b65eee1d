"""Images/s of the DVAE and DAAE train steps (64x64x3, batch 64, the paper's networks) and of a 20-step chain.

  python benchmarks/train_step.py                 # dae_jax, plain-Flax decoder and, if installed, PyTorch
  python benchmarks/train_step.py --skip_plain    # without the slow plain-Flax reference

Everything is timed after compilation/warm-up. "plain Flax" is the same model with ``nn.ConvTranspose`` in the
decoder instead of our ``UpConv`` (same parameters and gradients, autodiff by XLA). If PyTorch is installed
(``pip install -e '.[bench]'``), an equivalent eager PyTorch model is timed in the same run.
"""

import argparse
import dataclasses
import functools
import os
import platform
import time

import flax.linen as nn
import jax
import numpy as np

from dae_jax import config_lib, experiment, models, sampling, sharding, train_step


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


def jax_train_images_per_sec(objective: str, batch: int, repeats: int, plain_flax: bool = False) -> float:
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

  def one_step():
    jax.block_until_ready(step(state, batch_array, run.step_key))

  return batch / _time(one_step, repeats)


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


def torch_train_images_per_sec(objective: str, batch: int, repeats: int):
  try:
    from torch_reference import TorchStep
  except ImportError:  # PyTorch is optional: pip install -e '.[bench]'
    return None
  step = TorchStep(objective, batch)
  return batch / _time(step, repeats)


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--chain_steps", type=int, default=20)
  parser.add_argument("--skip_plain", action="store_true", help="skip the slow plain-Flax reference")
  args = parser.parse_args()
  print(f"machine: {machine()}")
  print(f"batch {args.batch}, 64x64x3, widths 64-128-256-512, latent 100; best of {args.repeats} after warm-up\n")
  rows = []
  for objective in ("dvae", "daae"):
    ours = jax_train_images_per_sec(objective, args.batch, args.repeats)
    plain = None if args.skip_plain else jax_train_images_per_sec(objective, args.batch, 2, plain_flax=True)
    torch_rate = torch_train_images_per_sec(objective, args.batch, args.repeats)
    rows.append((f"{objective} train step", ours, plain, torch_rate))
  scan_rate, loop_rate = chain_images_per_sec(args.batch, args.chain_steps, args.repeats)
  print(f"{'what':<24}{'dae_jax img/s':>15}{'plain Flax':>12}{'PyTorch':>10}{'dae_jax/PyTorch':>17}")
  for name, ours, plain, torch_rate in rows:
    plain_text = f"{plain:.1f}" if plain else "-"
    torch_text = f"{torch_rate:.1f}" if torch_rate else "-"
    ratio = f"{ours / torch_rate:.2f}x" if torch_rate else "-"
    print(f"{name:<24}{ours:>15.1f}{plain_text:>12}{torch_text:>10}{ratio:>17}")
  print(
    f"\n{args.chain_steps}-step chain, image-steps/s: lax.scan {scan_rate:.1f}, Python loop of jitted steps "
    f"{loop_rate:.1f} (scan/loop {scan_rate / loop_rate:.2f}x)"
  )


if __name__ == "__main__":
  main()
