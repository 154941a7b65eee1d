"""Improved precision and recall against known answers: identical, disjoint and collapsed sets, and a 1-D case
worked by hand."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dae_jax.eval import precision_recall as pr


def _faces(count: int, seed: int = 0) -> jax.Array:
  return jax.random.uniform(jax.random.PRNGKey(seed), (count, 32, 32, 1))


def test_identical_sets_have_precision_and_recall_one():
  points = pr.features(_faces(50))
  result = pr.precision_recall(points, points)
  assert float(result["precision"]) == 1.0 and float(result["recall"]) == 1.0


def test_disjoint_far_apart_sets_have_precision_and_recall_zero():
  # Dark images against bright ones: every cross distance (>= 0.6) is far beyond the k-NN radii within a set.
  dark, bright = 0.2 * _faces(40, 1), 0.8 + 0.2 * _faces(40, 2)
  result = pr.precision_recall(pr.features(dark), pr.features(bright))
  assert float(result["precision"]) == 0.0 and float(result["recall"]) == 0.0


def test_a_collapsed_set_is_precise_but_recalls_only_its_one_image():
  reference = _faces(60)
  collapsed = jnp.repeat(reference[7:8], 60, axis=0)
  result = pr.precision_recall(pr.features(reference), pr.features(collapsed))
  # Every sample is a reference image; the samples' balls have radius 0, so only that one image is covered.
  assert float(result["precision"]) == 1.0
  assert float(result["recall"]) == pytest.approx(1 / 60)
  assert float(result["diversity"]) == 0.0


@pytest.mark.parametrize(
  "k, precision, recall",
  [
    # Reference {0, 1, 3}, samples {0.5, 0.7, 6}.
    # k = 1: reference radii 1, 1, 2; sample radii 0.2, 0.2, 5.3. 0.5 and 0.7 lie within 1 of 0 or 1; 6 is 3 from
    # 3 (> 2). Reference 0 is 0.5 from 0.5 (> 0.2) and 6 from 6 (> 5.3); 1 is 5 from 6, 3 is 3 from 6 (<= 5.3).
    (1, 2 / 3, 2 / 3),
    # k = 2: reference radii 3, 2, 3, so 6 (3 from 3) is inside; sample radii 5.5, 5.3, 5.5 cover all of them.
    (2, 1.0, 1.0),
  ],
)
def test_the_knn_radius_rule_on_a_case_worked_by_hand(k, precision, recall):
  reference, samples = jnp.array([[0.0], [1.0], [3.0]]), jnp.array([[0.5], [0.7], [6.0]])
  result = pr.precision_recall(reference, samples, k=k)
  assert float(result["precision"]) == pytest.approx(precision)
  assert float(result["recall"]) == pytest.approx(recall)
  naive_diversity = np.mean([abs(a - b) for a, b in itertools.combinations([0.5, 0.7, 6.0], 2)])
  assert float(result["diversity"]) == pytest.approx(naive_diversity, rel=1e-5)


def test_knn_radii_exclude_the_point_itself_but_not_its_duplicates():
  points = jnp.array([[0.0], [0.0], [2.0], [5.0]])
  np.testing.assert_allclose(pr.knn_radii(points, 1), [0.0, 0.0, 4.0, 9.0])
  # 5 is 3 from 2 and 5 from each 0.
  np.testing.assert_allclose(pr.knn_radii(points, 2), [4.0, 4.0, 4.0, 25.0])


def test_features_are_pooled_pixels_whose_distance_is_the_rms_difference():
  a, b = _faces(1, 3), _faces(1, 4)
  pooled = [np.asarray(x).reshape(16, 2, 16, 2).mean(axis=(1, 3)) for x in (a, b)]
  naive = np.sqrt(np.mean((pooled[0] - pooled[1]) ** 2))
  fa, fb = pr.features(a), pr.features(b)
  assert fa.shape == (1, 256)
  assert float(jnp.linalg.norm(fa - fb)) == pytest.approx(naive, rel=1e-5)


def test_along_a_trajectory_matches_each_step_measured_alone():
  reference = _faces(20)
  trajectory = jnp.stack([_faces(20, 5), jnp.repeat(reference[:1], 20, axis=0), reference])
  curves = pr.along_trajectory(pr.features(reference), trajectory)
  np.testing.assert_allclose(curves["recall"][1:], [1 / 20, 1.0])
  np.testing.assert_allclose(curves["precision"][1:], [1.0, 1.0])
  alone = pr.precision_recall(pr.features(reference), pr.features(trajectory[0]))
  assert float(curves["precision"][0]) == float(alone["precision"])
  assert float(curves["recall"][0]) == float(alone["recall"])


def test_effective_k_leaves_each_point_k_others():
  assert pr.effective_k(64, 64) == 3 and pr.effective_k(2, 8) == 1 and pr.effective_k(1, 8) == 0
