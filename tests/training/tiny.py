"""A tiny network and dataset for the tests that call `train()` themselves."""

import numpy as np
import tensorflow as tf

import keras_mvf

# What `train()` needs to know about `tiny_batches()`.
TINY_SETTINGS = {"num_classes": 3, "num_frames": 4, "crop_size": 32, "batch_size": 2}


def tiny_resnet(temporal_module=None, **kwargs):
    """A builder for `train()`: one block per stage, 8 wide, without ImageNet weights."""
    kwargs.pop("backbone_weights", None)
    return keras_mvf.ResNetVideo(
        (1, 1, 1, 1), base_width=8, temporal_module=temporal_module, **kwargs
    )


def tiny_batches():
    """Four random uint8 clips of 4x32x32 with labels of three classes, in batches of two."""
    clips = np.random.default_rng(0).integers(0, 255, (4, 4, 32, 32, 3), dtype=np.uint8)
    return tf.data.Dataset.from_tensor_slices((clips, np.array([0, 1, 2, 0]))).batch(2)
