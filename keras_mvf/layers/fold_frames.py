"""Folds the frames of a clip into the batch so that 2D layers see single frames."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_mvf")
class FoldFrames(keras.layers.Layer):
    """Reshapes clips `(batch, num_frames, H, W, C)` to frames `(batch * num_frames, H, W, C)`.

    It is the entry of every video model here, so it also checks that clips have
    the frame and channel counts the model was built for.

    Args:
        num_frames: int, frames per clip.
        channels: int or None, expected channel count; None accepts any.
            Defaults to `None`.
        **kwargs: base layer keyword arguments.

    Input shape:
        5D tensor `(batch, num_frames, height, width, channels)`.

    Output shape:
        4D tensor `(batch * num_frames, height, width, channels)`.
    """

    def __init__(self, num_frames, channels=None, **kwargs):
        super().__init__(**kwargs)
        self.num_frames = num_frames
        self.channels = channels

    def _check(self, shape):
        if len(shape) != 5:
            raise ValueError(
                "Expected clips of shape (batch, num_frames, height, width, channels). "
                f"Received: input shape={tuple(shape)}"
            )
        if shape[1] is not None and shape[1] != self.num_frames:
            raise ValueError(
                f"The model was built for num_frames={self.num_frames}, but the clips have "
                f"{shape[1]} frames. Received: input shape={tuple(shape)}"
            )
        if self.channels is not None and shape[-1] is not None and shape[-1] != self.channels:
            raise ValueError(
                f"The model expects {self.channels} channels (RGB), but the clips have "
                f"{shape[-1]}. Received: input shape={tuple(shape)}"
            )

    def call(self, inputs):
        self._check(inputs.shape)
        shape = ops.shape(inputs)
        return ops.reshape(inputs, (-1, shape[2], shape[3], shape[4]))

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        batch = None if input_shape[0] is None else input_shape[0] * self.num_frames
        return (batch, *input_shape[2:])

    def get_config(self):
        return {**super().get_config(), "num_frames": self.num_frames, "channels": self.channels}
