"""The TFDS path, offline: our glue on tfds.testing.mock_data, and TFDS's own celeb_a builder on a fixture."""

import tempfile

import numpy as np
import pytest
import tensorflow_datasets as tfds

from dae_jax import config_lib, data, sharding
from dae_jax.data import celeba, loader
from dae_jax.errors import InputError

import fixtures


@pytest.fixture
def mocked_celeba(tmp_path):
  """A data_dir that looks prepared, with TFDS serving random celeb_a examples of the real shapes."""
  (tmp_path / "celeb_a" / "2.1.0").mkdir(parents=True)
  (tmp_path / "celeb_a" / "2.1.0" / "dataset_info.json").write_text("{}")
  with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
    yield tmp_path


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_tfds_glue_crops_resizes_and_keeps_attributes(mocked_celeba, split):
  images, attributes = celeba.load(str(mocked_celeba), split, 140, 64, 3)
  assert images.shape == (12, 64, 64, 3) and images.dtype == np.uint8
  assert attributes.shape == (12, 40) and attributes.dtype == bool
  assert images.std() > 10  # Mock pixels are random noise, not a blank.


def test_tfds_unknown_split_is_a_clear_error(mocked_celeba):
  with pytest.raises(InputError, match=r"data.split='dev' is not allowed; choose one of train, validation, test"):
    celeba.load(str(mocked_celeba), "dev", 140, 64, 3)


def test_tfds_batches_feed_the_sharded_step(mocked_celeba, tmp_path):
  config = config_lib.default_config()
  config.data.data_dir = str(mocked_celeba)
  config.data.image_size = 32
  config.data.cache_dir = str(tmp_path / "cache")
  images, attributes = data.load(config.data)
  assert images.shape == (12, 32, 32, 3) and attributes.shape == (12, 40)
  mesh = sharding.make_mesh()
  feeder = loader.make_feeder(images, 0, 8, mesh, device_resident=False)
  batch = feeder(0)
  assert batch.shape == (8, 32, 32, 3) and batch.dtype == np.uint8
  assert len(batch.sharding.device_set) == 4


class CelebABuilderOnFixtureTest(tfds.testing.DatasetBuilderTestCase):
  """TFDS's own test of the real celeb_a builder, run on CelebA-format files made from real faces."""

  from tensorflow_datasets.datasets.celeb_a import celeb_a_dataset_builder as _module

  DATASET_CLASS = _module.Builder
  SPLITS = {"train": 8, "validation": 2, "test": 2}
  DL_EXTRACT_RESULT = {
    "img_align_celeba": "img_align_celeba.zip",
    "list_eval_partition": "list_eval_partition.txt",
    "list_attr_celeba": "list_attr_celeba.txt",
    "landmarks_celeba": "list_landmarks_align_celeba.txt",
    "identity_celeba": "identity_CelebA.txt",
  }

  @classmethod
  def setUpClass(cls):
    cls._example_dir = tempfile.TemporaryDirectory()
    fixtures.write_celeba_files(cls._example_dir.name)
    cls.EXAMPLE_DIR = cls._example_dir.name
    super().setUpClass()

  @classmethod
  def tearDownClass(cls):
    super().tearDownClass()
    cls._example_dir.cleanup()


def test_manual_download_dir_prepares_and_training_reads_it(tmp_path, monkeypatch):
  """The 5 original files in <data_dir>/downloads/manual/ -> download_and_prepare -> our loader reads it."""
  manual = tmp_path / "downloads" / "manual"
  truth = fixtures.write_celeba_files(str(manual))
  # Only the sha256/size check is patched: our fixture files are not the real 1.4 GB ones.
  monkeypatch.setattr(tfds.download.DownloadManager, "_register_or_validate_checksums", lambda *a, **k: None)
  tfds.builder("celeb_a", data_dir=str(tmp_path)).download_and_prepare()
  config = config_lib.default_config()
  config.data.data_dir = str(tmp_path)
  config.data.image_size = 32
  config.data.cache_dir = str(tmp_path / "cache")
  images, attributes = data.load(config.data)
  assert images.shape == (8, 32, 32, 3) and images.std() > 10
  names, _ = fixtures.headings()
  expected = truth["attributes"][:8][:, np.argsort(names)]  # Ours are ordered by attribute name.
  # TFDS stores examples in hashed order, so compare the rows as a multiset.
  assert sorted(map(tuple, attributes.tolist())) == sorted(map(tuple, expected.tolist()))
