"""Images/s of data preparation (JPEG decode + centre crop + antialiased resize) and of the loader in both modes,
against the images/s the DVAE train step consumes (64x64, batch 64).

  python benchmarks/input_pipeline.py [--num_jpegs 1000] [--num_cached 20000]

Preparation runs on CelebA-format JPEGs (218x178) made from the scikit-image faces; the loader runs on a uint8
array of 64x64x3 images, in memory and memory-mapped from disk as the cache stores it (just written, so from the
page cache: a cold read is bounded by the disk instead).
"""

import argparse
import io
import os
import tempfile
import time

import jax
import numpy as np
from PIL import Image
import skimage.data
import skimage.transform
import train_step as step_benchmark

from dae_jax import sharding
from dae_jax.data import image_files, loader


def _write_jpegs(directory: str, count: int) -> None:
  faces = skimage.data.lfw_subset()[:100]
  for i in range(count):
    face = skimage.transform.resize(faces[i % 100], (218, 178), order=1)
    image = np.repeat(np.round(face * 255).astype(np.uint8)[..., None], 3, axis=-1)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=90)
    with open(os.path.join(directory, f"{i + 1:06d}.jpg"), "wb") as f:
      f.write(buffer.getvalue())


def preparation_images_per_sec(count: int) -> float:
  with tempfile.TemporaryDirectory() as directory:
    _write_jpegs(directory, count)
    image_files.load_folder(directory, 140, 64, 3)  # Warm-up: page cache and thread pool.
    start = time.perf_counter()
    images = image_files.load_folder(directory, 140, 64, 3)
    elapsed = time.perf_counter() - start
  assert images.shape == (count, 64, 64, 3)
  return count / elapsed


def loader_images_per_sec(images: np.ndarray, device_resident: bool, steps: int, batch: int = 64) -> float:
  mesh = sharding.make_mesh()
  feeder = loader.make_feeder(images, 0, batch, mesh, device_resident)
  to_pixels = jax.jit(loader.batch_pixels)  # What the step does first with what it is sent.
  jax.block_until_ready(to_pixels(feeder(0)))
  start = time.perf_counter()
  for step in range(1, steps + 1):
    out = to_pixels(feeder(step))
  jax.block_until_ready(out)
  return steps * batch / (time.perf_counter() - start)


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--num_jpegs", type=int, default=1000)
  parser.add_argument("--num_cached", type=int, default=20000)
  parser.add_argument("--steps", type=int, default=300)
  args = parser.parse_args()
  print(f"machine: {step_benchmark.machine()}\n")
  rng = np.random.default_rng(0)
  in_memory = rng.integers(0, 256, (args.num_cached, 64, 64, 3), dtype=np.uint8)
  with tempfile.TemporaryDirectory() as directory:
    path = os.path.join(directory, "images.npy")
    np.save(path, in_memory)
    memmapped = np.load(path, mmap_mode="r")
    rates = {
      "prepare: JPEG decode + crop + resize": preparation_images_per_sec(args.num_jpegs),
      "loader: host, in memory": loader_images_per_sec(in_memory, False, args.steps),
      "loader: host, memory-mapped cache": loader_images_per_sec(memmapped, False, args.steps),
      "loader: device-resident": loader_images_per_sec(in_memory, True, args.steps),
    }
  consumed = step_benchmark.jax_train_images_per_sec("dvae", 64, 3)
  print(f"{'what':<40}{'images/s':>12}{'x step':>10}")
  for name, rate in rates.items():
    print(f"{name:<40}{rate:>12.0f}{rate / consumed:>9.1f}x")
  print(f"{'train step (DVAE, 64x64, batch 64)':<40}{consumed:>12.1f}{1:>9.1f}x")


if __name__ == "__main__":
  main()
