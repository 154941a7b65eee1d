"""The data sources, preprocessing and cache, on fixtures built at test time (all offline)."""

import errno
import os
import socket
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from dae_jax import config_lib, data
from dae_jax.data import cache, celeba_files, image_files
from dae_jax.errors import InputError

import fixtures


def test_center_crop_is_score_sdes_celeba_window_and_the_model_size_is_uint8():
  image = (np.arange(218 * 178 * 3).reshape(218, 178, 3) % 251).astype(np.uint8)
  np.testing.assert_array_equal(image_files.center_crop(image, 140), image[39:179, 19:159])
  out = image_files.to_model_size(image, 140, 64, 3)
  assert out.shape == (64, 64, 3) and out.dtype == np.uint8


def test_largest_square_crop_resize_of_a_constant_is_the_constant_and_grey_conversion():
  image = np.full((30, 50, 3), 200, np.uint8)
  assert image_files.center_crop(image, 0).shape == (30, 30, 3)
  out = image_files.to_model_size(image, 0, 32, 1)
  assert out.shape == (32, 32, 1) and int(out.min()) == int(out.max()) == 200


def test_antialiased_resize_averages_instead_of_aliasing():
  stripes = np.zeros((64, 64, 1), np.uint8)
  stripes[:, ::2] = 255  # One-pixel stripes: a non-antialiased 2x downsample would pick all-black or all-white.
  out = image_files.resize(stripes, 32).astype(np.float32)[:, 1:-1]  # Away from the border.
  assert abs(out.mean() - 127.5) < 1 and out.std() < 1


@pytest.mark.parametrize("form", ["img_align_celeba.zip", "img_align_celeba"])
def test_celeba_files_give_the_official_splits_and_attributes(tmp_path, form):
  truth = fixtures.write_celeba_files(str(tmp_path))
  images, attributes = celeba_files.load(str(tmp_path / form), "train", 140, 32, 3)
  assert images.shape == (8, 32, 32, 3) and images.dtype == np.uint8
  np.testing.assert_array_equal(attributes, truth["attributes"][:8])
  test_images, _ = celeba_files.load(str(tmp_path / form), "test", 140, 32, 3)
  assert test_images.shape[0] == 2


def test_zip_and_folder_hold_the_same_pixels(tmp_path):
  fixtures.write_celeba_files(str(tmp_path))
  from_zip, _ = celeba_files.load(str(tmp_path / "img_align_celeba.zip"), "validation", 140, 64, 3)
  from_folder, _ = celeba_files.load(str(tmp_path / "img_align_celeba"), "validation", 140, 64, 3)
  np.testing.assert_array_equal(from_zip, from_folder)
  assert from_zip.std() > 10  # Real faces, not a blank.


def test_without_a_partition_file_the_split_is_80_10_10_by_name(tmp_path):
  fixtures.write_celeba_files(str(tmp_path), count=20, partition=False, attributes=False)
  sizes = [
    celeba_files.load(str(tmp_path / "img_align_celeba"), s, 140, 32, 1)[0].shape[0]
    for s in ("train", "validation", "test")
  ]
  assert sizes == [16, 2, 2]
  assert celeba_files.load(str(tmp_path / "img_align_celeba"), "train", 140, 32, 1)[1] is None


@pytest.mark.parametrize(
  "missing, expected",
  [
    ("partition", ["list_eval_partition.txt", "by file name", "80% train, next 10% validation, last 10% test"]),
    ("attributes", ["list_attr_celeba.txt", "no attributes", "skips the linear probe"]),
  ],
)
def test_a_missing_list_file_is_one_warning_line_naming_it_where_and_the_fallback(tmp_path, caplog, missing, expected):
  fixtures.write_celeba_files(str(tmp_path), **{missing: False})
  with caplog.at_level("WARNING"):
    celeba_files.load(str(tmp_path / "img_align_celeba.zip"), "train", 140, 32, 1)
  warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
  assert len(warnings) == 1 and "\n" not in warnings[0]
  assert all(part in warnings[0] for part in [*expected, f" {tmp_path};"]), warnings[0]


def test_with_both_list_files_nothing_is_warned(tmp_path, caplog):
  fixtures.write_celeba_files(str(tmp_path))
  with caplog.at_level("WARNING"):
    celeba_files.load(str(tmp_path / "img_align_celeba"), "test", 140, 32, 1)
  assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_unknown_split_and_missing_path_are_clear_errors(tmp_path):
  fixtures.write_celeba_files(str(tmp_path))
  with pytest.raises(InputError, match=r"data.split='dev' is not allowed; choose one of train, validation, test"):
    celeba_files.load(str(tmp_path / "img_align_celeba"), "dev", 140, 32, 3)
  with pytest.raises(InputError, match=r"data.path='.*nothing' does not exist"):
    celeba_files.load(str(tmp_path / "nothing"), "train", 140, 32, 3)


def test_a_folder_of_your_own_images_is_searched_recursively(tmp_path):
  fixtures.write_celeba_files(str(tmp_path / "a" / "b"), count=5)
  fixtures.write_celeba_files(str(tmp_path / "c"), count=3)
  images = image_files.load(str(tmp_path), 0, 32, 3)
  assert images.shape == (8, 32, 32, 3)  # Both nested img_align_celeba/ folders; zips and .txt files are skipped.


def test_an_empty_folder_and_a_corrupt_image_are_one_clear_line(tmp_path):
  (tmp_path / "empty").mkdir()
  with pytest.raises(InputError, match=r"holds no images"):
    image_files.load(str(tmp_path / "empty"), 0, 32, 3)
  fixtures.write_celeba_files(str(tmp_path / "mixed"), count=3)
  bad = tmp_path / "mixed" / "img_align_celeba" / "000002.jpg"
  bad.write_bytes(b"not a jpeg at all")
  with pytest.raises(InputError, match=r"cannot decode image .*000002.jpg") as error:
    image_files.load(str(tmp_path / "mixed" / "img_align_celeba"), 0, 32, 3)
  assert "\n" not in str(error.value)


@pytest.mark.parametrize("layout", ["uint8_nhw", "float_nhwc", "npz"])
def test_arrays_of_images(tmp_path, layout):
  faces = fixtures.celeba_like_images(4)
  path = tmp_path / "images.npy"
  if layout == "uint8_nhw":
    np.save(path, faces[..., 0])
  elif layout == "float_nhwc":
    np.save(path, faces.astype(np.float32) / 255)
  else:
    path = tmp_path / "images.npz"
    np.savez(path, faces=faces)
  images = image_files.load(str(path), 140, 32, 3)
  expected = image_files.load_array(str(path), 140, 32, 3)
  assert images.shape == (4, 32, 32, 3) and images.dtype == np.uint8
  np.testing.assert_array_equal(images, expected)


@pytest.mark.parametrize(
  "array,message",
  [
    (np.zeros((4, 8, 8, 2), np.uint8), r"has shape \(4, 8, 8, 2\); expected images"),
    (np.zeros((8, 8), np.uint8), r"has shape \(8, 8\)"),
    (np.full((2, 8, 8), 3.0, np.float32), r"holds floats from 3.0 to 3.0; expected uint8, or floats in \[0, 1\]"),
    (np.zeros((2, 8, 8), np.int64), r"has dtype int64"),
  ],
)
def test_bad_arrays_are_one_clear_line(tmp_path, array, message):
  np.save(tmp_path / "bad.npy", array)
  with pytest.raises(InputError, match=message):
    image_files.load(str(tmp_path / "bad.npy"), 0, 32, 3)


def _config(tmp_path, **data_overrides):
  config = config_lib.default_config()
  config.data.source = "celeba_files"
  config.data.path = str(tmp_path / "img_align_celeba.zip")
  config.data.image_size = 32
  config.data.cache_dir = str(tmp_path / "cache")
  for key, value in data_overrides.items():
    config.data[key] = value
  return config


def test_the_cache_is_built_once_reused_and_rebuilt_when_the_config_changes(tmp_path, monkeypatch):
  fixtures.write_celeba_files(str(tmp_path))
  config = _config(tmp_path)
  builds = []
  real_build = data.build
  monkeypatch.setattr(data, "build", lambda c: builds.append(c.crop) or real_build(c))
  first, attributes = data.load(config.data)
  again, _ = data.load(config.data)
  assert builds == [140] and attributes.shape == (8, 40)
  np.testing.assert_array_equal(first, again)
  assert isinstance(again, np.memmap)
  manifest = cache.read_manifest(cache.entry_dir(str(tmp_path / "cache"), data.describe(config.data)))
  assert manifest["count"] == 8 and manifest["crop"] == 140 and manifest["sha256"] == cache.checksum(first)
  changed = _config(tmp_path, crop=100)
  recropped, _ = data.load(changed.data)
  assert builds == [140, 100] and not np.array_equal(recropped, first)


def test_a_prepare_killed_mid_write_leaves_no_cache_that_looks_complete(tmp_path, monkeypatch):
  fixtures.write_celeba_files(str(tmp_path))
  config = _config(tmp_path)

  def killed(*args, **kwargs):
    raise KeyboardInterrupt  # Stands in for the kill: the write stops between the array and the manifest.

  monkeypatch.setattr(cache, "checksum", killed)
  with pytest.raises(KeyboardInterrupt):
    data.load(config.data)
  entry = cache.entry_dir(str(tmp_path / "cache"), data.describe(config.data))
  assert not os.path.exists(entry)
  assert cache.read_manifest(entry) is None
  monkeypatch.undo()
  images, _ = data.load(config.data)
  assert images.shape == (8, 32, 32, 3)


def test_a_crop_larger_than_the_images_is_one_clear_line_and_caches_nothing(tmp_path):
  fixtures.write_celeba_files(str(tmp_path))
  config = _config(tmp_path, crop=300)
  with pytest.raises(InputError, match=r"data.crop=300 is larger than the image") as error:
    data.load(config.data)
  assert "\n" not in str(error.value)
  assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
  np.save(tmp_path / "small.npy", np.zeros((2, 20, 20, 3), np.uint8))
  with pytest.raises(InputError, match=r"data.crop=140 is larger than the image"):
    image_files.load(str(tmp_path / "small.npy"), 140, 32, 3)


def _saved(path, array, **kwargs):
  np.save(path, array, **kwargs)
  return path.read_bytes()


def _npz_bytes(tmp_path, **arrays):
  np.savez(tmp_path / "scratch.npz", **arrays)
  return (tmp_path / "scratch.npz").read_bytes()


def _overwritten_middle(data: bytes) -> bytes:
  middle = len(data) // 2
  return data[:middle] + bytes(16) + data[middle + 16 :]  # Same size, damaged contents.


_FACES = np.linspace(0, 1, 4 * 16 * 16, dtype=np.float32).reshape(4, 16, 16)
_OBJECTS = np.array([1, "a", None], dtype=object)


@pytest.mark.parametrize(
  "name,make,message",
  [
    ("garbage.npz", lambda t: b"these are not the bytes of an array", r"is neither a .npy nor a .npz file"),
    ("garbage.npy", lambda t: b"\x00" * 64, r"is neither a .npy nor a .npz file"),
    ("truncated.npy", lambda t: _saved(t / "s.npy", _FACES)[:200], r"cannot be read as an array .*Failed to read all"),
    ("truncated.npz", lambda t: _npz_bytes(t, faces=_FACES)[:300], r"cannot be read as an array .*not a zip file"),
    ("damaged.npz", lambda t: _overwritten_middle(_npz_bytes(t, faces=_FACES)), r"cannot be read as an array .*CRC"),
    ("objects.npy", lambda t: _saved(t / "s.npy", _OBJECTS, allow_pickle=True), r"holds an array of Python objects"),
    ("objects.npz", lambda t: _npz_bytes(t, faces=_OBJECTS), r"holds an array of Python objects \(dtype object\)"),
    ("two.npz", lambda t: _npz_bytes(t, a=_FACES, b=_FACES), r"holds arrays \['a', 'b'\]; give a .npz with exactly"),
  ],
)
def test_damaged_and_object_array_files_are_one_line_naming_the_file(tmp_path, name, make, message):
  path = tmp_path / name
  path.write_bytes(make(tmp_path))
  with pytest.raises(InputError, match=message) as error:
    image_files.load(str(path), 0, 32, 3)
  assert str(error.value).startswith(f"data.path={str(path)!r} ") and "\n" not in str(error.value)


def test_non_finite_pixels_are_counted_and_the_first_is_located(tmp_path):
  faces = _FACES.copy()
  faces[1, 2, 3], faces[2, 0, 0], faces[3, 15, 15] = np.nan, np.inf, -np.inf
  np.save(tmp_path / "faces.npy", faces)
  config = _config(tmp_path, source="images", path=str(tmp_path / "faces.npy"), crop=0)
  with pytest.raises(InputError) as error:
    data.load(config.data)
  assert str(error.value) == (
    f"data.path={str(tmp_path / 'faces.npy')!r} holds 3 non-finite values (NaN or inf), the first at index "
    "(1, 2, 3); expected uint8, or floats in [0, 1]"
  )
  assert not any((tmp_path / "cache").iterdir())  # Nothing cached, not even a temporary folder.


def _write_bmps(folder, seeds) -> None:
  """BMP files of one size are all the same number of bytes, so a replacement can keep the size."""
  folder.mkdir(parents=True, exist_ok=True)
  for seed in seeds:
    pixels = np.random.default_rng(seed).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / f"{seed:03d}.bmp")


def _counting_builds(monkeypatch) -> list:
  builds = []
  real_build = data.build
  monkeypatch.setattr(data, "build", lambda c: builds.append(c.path) or real_build(c))
  return builds


def test_a_changed_source_folder_rebuilds_the_cache(tmp_path, monkeypatch):
  folder = tmp_path / "faces"
  _write_bmps(folder, range(4))
  config = _config(tmp_path, source="images", path=str(folder), crop=0)
  builds = _counting_builds(monkeypatch)
  first, _ = data.load(config.data)
  data.load(config.data)
  assert len(builds) == 1 and first.shape[0] == 4

  _write_bmps(folder / "more", [10])  # Added, in a subfolder.
  assert data.load(config.data)[0].shape[0] == 5 and len(builds) == 2
  (folder / "000.bmp").unlink()  # Removed.
  assert data.load(config.data)[0].shape[0] == 4 and len(builds) == 3

  # Replaced by another image of the same size, its time set far back: count, total size and newest time are all
  # as before, and only the per-file digest changes.
  before = data.load(config.data)[0][0].copy()
  manifest_before = cache.read_manifest(cache.entry_dir(config.data.cache_dir, data.describe(config.data)))
  size = (folder / "001.bmp").stat().st_size
  _write_bmps(tmp_path / "other", [99])
  (folder / "001.bmp").write_bytes((tmp_path / "other" / "099.bmp").read_bytes())
  os.utime(folder / "001.bmp", ns=(10**18, 10**18))
  assert (folder / "001.bmp").stat().st_size == size
  after, _ = data.load(config.data)
  assert len(builds) == 4 and not np.array_equal(after[0], before)
  manifest = cache.read_manifest(cache.entry_dir(config.data.cache_dir, data.describe(config.data)))
  fingerprint = manifest["source_files"]
  assert {k: fingerprint[k] for k in ("count", "bytes", "newest_mtime_ns")} == {
    k: manifest_before["source_files"][k] for k in ("count", "bytes", "newest_mtime_ns")
  }
  assert fingerprint["count"] == 4 and fingerprint["bytes"] == 4 * size


def test_a_replaced_array_file_rebuilds_the_cache(tmp_path, monkeypatch):
  path = tmp_path / "faces.npy"
  np.save(path, _FACES)
  config = _config(tmp_path, source="images", path=str(path), crop=0)
  builds = _counting_builds(monkeypatch)
  first, _ = data.load(config.data)
  np.save(path, 1 - _FACES)
  second, _ = data.load(config.data)
  assert len(builds) == 2 and not np.array_equal(first, second)


def test_adding_celebas_partition_file_rebuilds_with_the_official_split(tmp_path, monkeypatch):
  truth = fixtures.write_celeba_files(str(tmp_path), partition=False)
  config = _config(tmp_path)
  builds = _counting_builds(monkeypatch)
  assert data.load(config.data)[0].shape[0] == 9  # 80% of 12 by name.
  with open(tmp_path / "list_eval_partition.txt", "w") as f:
    f.writelines(f"{n} {p}\n" for n, p in zip(truth["names"], truth["partition"]))
  assert data.load(config.data)[0].shape[0] == 8 and len(builds) == 2


def _dead_pid() -> int:
  finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
  return int(finished.stdout)


def test_temporary_folders_of_dead_prepares_on_this_host_are_removed_at_the_next_load(tmp_path):
  np.save(tmp_path / "faces.npy", _FACES)
  config = _config(tmp_path, source="images", path=str(tmp_path / "faces.npy"), crop=0)
  entry = os.path.basename(cache.entry_dir(config.data.cache_dir, data.describe(config.data)))
  host, dead = socket.gethostname(), _dead_pid()
  names = {
    "dead": f"{entry}.tmp-{host}-{dead}-k2j4_x",
    "dead_stale": f"other-entry.stale-{host}-{dead}-abc",
    "alive": f"{entry}.tmp-{host}-{os.getpid()}-q9w8e7",
    "elsewhere": f"{entry}.tmp-another-host-{dead}-zz11",
    "unrelated": "my-notes",
  }
  for name in names.values():
    (tmp_path / "cache" / name / "old").mkdir(parents=True)
  images, _ = data.load(config.data)
  left = sorted(p.name for p in (tmp_path / "cache").iterdir())
  assert left == sorted([entry, names["alive"], names["elsewhere"], names["unrelated"]])
  assert images.shape == (4, 32, 32, 3)


def test_a_cache_dir_that_cannot_be_written_is_one_line_naming_it_and_the_reason(tmp_path):
  np.save(tmp_path / "faces.npy", _FACES)
  (tmp_path / "blocker").write_text("a file, not a folder")
  for cache_dir in (tmp_path / "blocker", tmp_path / "blocker" / "cache"):
    config = _config(tmp_path, source="images", path=str(tmp_path / "faces.npy"), cache_dir=str(cache_dir))
    with pytest.raises(InputError) as error:
      data.load(config.data)
    assert str(error.value).startswith(f"data.cache_dir={str(cache_dir)!r} cannot be created or written: a file is")


def test_a_full_disk_while_writing_the_cache_is_one_line_and_leaves_no_temporary_folder(tmp_path, monkeypatch):
  np.save(tmp_path / "faces.npy", _FACES)
  config = _config(tmp_path, source="images", path=str(tmp_path / "faces.npy"), crop=0)
  real_save = np.save

  def full_disk(file, array, **kwargs):
    if str(file).endswith(cache.IMAGES):  # Only the cache's write; the fixture above already saved its input.
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
    return real_save(file, array, **kwargs)

  monkeypatch.setattr(np, "save", full_disk)
  with pytest.raises(InputError) as error:
    data.load(config.data)
  message = str(error.value)
  assert message.startswith(f"data.cache_dir={config.data.cache_dir!r} cannot be created or written: No space left")
  assert "\n" not in message and not any((tmp_path / "cache").iterdir())
