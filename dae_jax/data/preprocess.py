"""Image preprocessing as small pure TensorFlow functions: they run eagerly on one image and inside tf.data.

Every source ends in ``to_model_size``: a centred crop, then an antialiased resize, back to uint8.
"""

import tensorflow as tf


def center_crop(image: tf.Tensor, crop: int) -> tf.Tensor:
  """The centred ``crop`` x ``crop`` window; ``crop = 0`` takes the largest centred square."""
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  size = tf.minimum(height, width) if crop == 0 else tf.constant(crop, tf.int32)
  tf.debugging.assert_less_equal(size, tf.minimum(height, width), message=f"data.crop={crop} is larger than the image")
  top, left = (height - size) // 2, (width - size) // 2
  return image[top : top + size, left : left + size]


def resize(image: tf.Tensor, size: int) -> tf.Tensor:
  """Antialiased bilinear resize of a uint8 image to ``size`` x ``size``, returned as uint8."""
  resized = tf.image.resize(tf.cast(image, tf.float32), (size, size), method="bilinear", antialias=True)
  return tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)


def to_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
  """Grey <-> RGB so every image has the model's channel count."""
  have = image.shape[-1]
  if have == channels:
    return image
  if channels == 1:
    return tf.cast(tf.round(tf.image.rgb_to_grayscale(tf.cast(image, tf.float32))), tf.uint8)
  return tf.image.grayscale_to_rgb(image)


def to_model_size(image: tf.Tensor, crop: int, size: int, channels: int) -> tf.Tensor:
  """uint8 [H, W, C] -> uint8 [size, size, channels]."""
  return to_channels(resize(center_crop(image, crop), size), channels)
