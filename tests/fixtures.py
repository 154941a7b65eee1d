"""Small data sets in CelebA's and other formats, built at test time from real faces that ship offline."""

import io
import os
import zipfile

import numpy as np
from PIL import Image
import skimage.data
import skimage.transform


def headings():
  """The names TFDS's celeb_a builder expects in the attribute and landmark files."""
  from tensorflow_datasets.datasets.celeb_a import celeb_a_dataset_builder as builder

  return builder.ATTR_HEADINGS, builder.LANDMARK_HEADINGS


def celeba_like_images(count: int) -> np.ndarray:
  """uint8 [count, 218, 178, 3]: LFW faces enlarged to CelebA's aligned size."""
  faces = skimage.data.lfw_subset()[:count]
  resized = np.stack([skimage.transform.resize(f, (218, 178), order=1) for f in faces])
  return np.repeat(np.round(resized * 255).astype(np.uint8)[..., None], 3, axis=-1)


def _jpeg(image: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format="JPEG", quality=95)
  return buffer.getvalue()


def write_celeba_files(root: str, count: int = 12, partition: bool = True, attributes: bool = True) -> dict:
  """The original layout: img_align_celeba/ and img_align_celeba.zip, plus the four text files beside them
  (partition, attributes, landmarks, identities), in CelebA's formats.

  Partition: images 1..count-4 train, then 2 validation, 2 test.
  """
  attribute_names, landmark_names = headings()
  os.makedirs(os.path.join(root, "img_align_celeba"), exist_ok=True)
  names = [f"{i:06d}.jpg" for i in range(1, count + 1)]
  with zipfile.ZipFile(os.path.join(root, "img_align_celeba.zip"), "w") as archive:
    for name, image in zip(names, celeba_like_images(count)):
      data = _jpeg(image)
      archive.writestr(f"img_align_celeba/{name}", data)
      with open(os.path.join(root, "img_align_celeba", name), "wb") as f:
        f.write(data)
  parts = [0] * (count - 4) + [1, 1, 2, 2]
  if partition:
    with open(os.path.join(root, "list_eval_partition.txt"), "w") as f:
      f.writelines(f"{n} {p}\n" for n, p in zip(names, parts))
  rng = np.random.default_rng(0)
  values = rng.integers(0, 2, (count, 40)).astype(bool)
  if attributes:
    with open(os.path.join(root, "list_attr_celeba.txt"), "w") as f:
      f.write(f"{count}\n{' '.join(attribute_names)}\n")
      for name, row in zip(names, values):
        f.write(name + " " + " ".join("1" if v else "-1" for v in row) + "\n")
    with open(os.path.join(root, "list_landmarks_align_celeba.txt"), "w") as f:
      f.write(f"{count}\n{' '.join(landmark_names)}\n")
      for name in names:
        f.write(name + " " + " ".join(str(v) for v in rng.integers(20, 150, len(landmark_names))) + "\n")
    with open(os.path.join(root, "identity_CelebA.txt"), "w") as f:
      f.writelines(f"{name} {1 + i % 3}\n" for i, name in enumerate(names))
  return {"names": names, "partition": parts, "attributes": values}
