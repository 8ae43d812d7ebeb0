"""Unfolds frames from the batch back into clips."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_mvf")
class UnfoldFrames(keras.layers.Layer):
    """Reshapes `(batch * num_frames, ...)` back to `(batch, num_frames, ...)`.

    Args:
        num_frames: int, frames per clip.
        **kwargs: base layer keyword arguments.

    Input shape:
        Tensor `(batch * num_frames, *dims)`.

    Output shape:
        Tensor `(batch, num_frames, *dims)`.
    """

    def __init__(self, num_frames, **kwargs):
        super().__init__(**kwargs)
        self.num_frames = num_frames

    def call(self, inputs):
        dims = ops.shape(inputs)[1:]
        return ops.reshape(inputs, (-1, self.num_frames, *dims))

    def compute_output_shape(self, input_shape):
        batch = None if input_shape[0] is None else input_shape[0] // self.num_frames
        return (batch, self.num_frames, *input_shape[1:])

    def get_config(self):
        return {**super().get_config(), "num_frames": self.num_frames}
