"""The demo data: the 100 real LFW face crops that ship inside scikit-image, so the demo runs offline."""

import numpy as np
import skimage.data
import skimage.transform

NUM_FACES = 100  # lfw_subset() holds 100 faces followed by 100 non-face patches.


def load(image_size: int, channels: int) -> np.ndarray:
  """float32 [100, image_size, image_size, channels] in [0, 1]; grey faces are repeated for 3 channels."""
  crops = skimage.data.lfw_subset()[:NUM_FACES]
  resized = np.stack(
    [skimage.transform.resize(c, (image_size, image_size), order=1, anti_aliasing=True) for c in crops]
  )
  images = np.clip(resized, 0.0, 1.0).astype(np.float32)[..., None]
  return np.repeat(images, channels, axis=-1)
