"""Serializable Keras layers that put a backbone's pixel normalisation inside the model.

Keeping normalisation in the graph is what lets training, the SavedModel and
the TFLite file see identical numbers: the app and the server feed raw RGB
pixels and never re-implement a mean/std table.
"""

from __future__ import annotations

import keras
from keras import ops

from tl_keras.vision.pixels import to_uint8

# Per-channel constants of the ImageNet-trained Keras Applications.
_IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
_IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

PREPROCESSING_MODES = ("tf", "torch", "caffe", "zero_one", "none")


@keras.saving.register_keras_serializable(package="tl_keras")
class ImagePreprocessing(keras.layers.Layer):
    """Maps RGB pixels in [0, 255] to what a backbone was trained on.

    Modes follow `keras.applications.imagenet_utils.preprocess_input`:
    `tf` scales to [-1, 1]; `torch` scales to [0, 1] then ImageNet mean/std;
    `caffe` flips RGB to BGR and subtracts the ImageNet BGR mean; `zero_one`
    scales to [0, 1] (TF Hub image modules); `none` passes [0, 255] floats
    through for backbones that normalise internally (EfficientNet, ConvNeXt,
    MobileNetV3).
    """

    # What `models.anatomy` looks for: the layer that normalises a classifier's input for its backbone.
    normalises_input = True

    def __init__(self, mode: str = "tf", **kwargs):
        super().__init__(**kwargs)
        if mode not in PREPROCESSING_MODES:
            raise ValueError(f"unknown preprocessing mode {mode!r}; known: {', '.join(PREPROCESSING_MODES)}")
        self.mode = mode

    def call(self, images):
        x = ops.cast(images, self.compute_dtype)
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "torch":
            mean = ops.convert_to_tensor(_IMAGENET_MEAN_RGB, self.compute_dtype)
            std = ops.convert_to_tensor(_IMAGENET_STD_RGB, self.compute_dtype)
            return (x / 255.0 - mean) / std
        if self.mode == "caffe":
            mean = ops.convert_to_tensor(_CAFFE_MEAN_BGR, self.compute_dtype)
            return ops.flip(x, axis=-1) - mean
        if self.mode == "zero_one":
            return x / 255.0
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="tl_keras")
class ToPixels(keras.layers.Layer):
    """Rounds floats to the nearest uint8 pixel (clipped to [0, 255]).

    Augmentation layers compute in float; the classifier takes uint8, as
    the server and the phone will feed it. Rounding here (rather than the
    truncation a plain cast does) keeps augmented pixels unbiased.
    """

    def call(self, images):
        return to_uint8(images)

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, images):
        return keras.KerasTensor(images.shape, dtype="uint8")
