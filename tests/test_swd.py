import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dae_jax.data import faces
from dae_jax.eval import swd


@pytest.fixture(scope="module")
def face_sets():
  images = jnp.asarray(faces.load(32, 1))
  return images[:50], images[50:]


def test_laplacian_pyramid_reconstructs_the_image():
  image = jax.random.uniform(jax.random.PRNGKey(0), (2, 64, 64, 3))
  levels = swd.laplacian_pyramid(image)
  assert [level.shape[1] for level in levels] == [64, 32, 16]
  rebuilt = levels[-1]
  for band in reversed(levels[:-1]):
    rebuilt = band + swd._up(rebuilt)
  np.testing.assert_allclose(rebuilt, image, atol=1e-5)


def test_sliced_wasserstein_of_a_shift_along_one_axis_is_its_mean_projection():
  a = jax.random.normal(jax.random.PRNGKey(0), (20000, 1))
  assert float(swd.sliced_wasserstein(jax.random.PRNGKey(1), a, a + 0.5, 8)) == pytest.approx(0.5, rel=1e-3)


def test_identical_sets_are_zero_apart(face_sets):
  a, _ = face_sets
  result = swd.swd(jax.random.PRNGKey(0), a, a)
  assert float(result["mean"]) == 0.0 and result["levels"].shape == (2,)


def test_distances_order_noise_levels_and_real_faces_beat_noise(face_sets):
  a, b = face_sets
  key = jax.random.PRNGKey(1)

  def distance(images):
    return float(swd.swd(key, images, a)["mean"])

  def noisy(std):
    return jnp.clip(b + std * jax.random.normal(jax.random.PRNGKey(2), b.shape), 0, 1)

  other_faces, slightly, very = distance(b), distance(noisy(0.05)), distance(noisy(0.3))
  uniform = distance(jax.random.uniform(jax.random.PRNGKey(3), b.shape))
  assert other_faces < slightly < very < uniform


def test_a_growing_blur_moves_the_set_further_away(face_sets):
  a, b = face_sets
  key = jax.random.PRNGKey(4)
  once = swd._blur(b)
  twice = swd._blur(swd._blur(once))
  distances = [float(swd.swd(key, images, a)["levels"][0]) for images in (b, once, twice)]
  assert distances[0] < distances[1] < distances[2]  # Detail lost shows in the finest level.


def test_unequal_sets_are_rejected(face_sets):
  a, b = face_sets
  with pytest.raises(ValueError, match="one shape"):
    swd.swd(jax.random.PRNGKey(0), a, b[:10])
