"""The temporal shift of TSM, for comparison models built from the same code."""

import keras
import numpy as np
from keras import ops

from keras_mvf.layers.channel_split import is_split_shape, leading_channels
from keras_mvf.layers.mvf_module import check_implementation, formulation


@keras.saving.register_keras_serializable(package="keras_mvf")
class TemporalShift(keras.layers.Layer):
    """Shifts a fold of channels one frame back and another one frame forward in time.

    With `fold = channels // fold_div`, frame t of the output takes channels
    `[0, fold)` from frame t + 1 and channels `[fold, 2 * fold)` from frame t - 1;
    the other channels are unchanged. Frames shifted in from outside the clip are
    zeros. This is MVF with `alpha = 2 / fold_div`, view "t" and fixed kernels
    (paper section 3.3).

    The layer computes the shift in one of two ways, with the same results, as
    `MVFModule` does (see docs/architecture.md):

    - `"depthwise"`: one depthwise convolution along T with those fixed one-hot
      kernels, a single pass over the shifted channels where TensorFlow without
      XLA and LiteRT would copy them three times (slices, then concatenations).
    - `"shift"`: slices of the clips and concatenations, which XLA fuses into
      one copy.

    `"auto"` takes `"shift"` under XLA (the JAX backend, or a TensorFlow
    function compiled with `jit_compile=True`) and `"depthwise"` otherwise.

    Args:
        num_frames: int, frames per clip folded into the batch dimension.
        fold_div: int, the inverse fraction of channels shifted each way.
            Defaults to `8`.
        implementation: one of `"auto"`, `"depthwise"`, `"shift"`: how the
            shift is computed; only speed differs. Defaults to `"auto"`.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    It also takes its input already split into channel pieces,
    `[shifted, passed]` with `shifted` holding the `2 * fold` shifted channels,
    and returns the pieces without concatenating them, as the ResNet builder
    keeps activations between temporal blocks (see
    `keras_mvf.layers.channel_split`).

    Input shape:
        4D tensor `(batch * num_frames, height, width, channels)`, or its
        channel pieces `[shifted, passed]`.

    Output shape:
        Same as the input (a list of two pieces for a list).

    Example:

    >>> x = keras.random.normal((2 * 8, 7, 7, 64))
    >>> TemporalShift(num_frames=8)(x).shape
    (16, 7, 7, 64)

    Reference:
        Lin, Gan and Han, "TSM: Temporal Shift Module for Efficient Video
        Understanding", ICCV 2019.
    """

    def __init__(self, num_frames, fold_div=8, implementation="auto", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(num_frames, int) or num_frames < 1:
            raise ValueError(
                f"`num_frames` must be a positive int. Received: num_frames={num_frames}"
            )
        if not isinstance(fold_div, int) or fold_div < 2:
            raise ValueError(f"`fold_div` must be an int >= 2. Received: fold_div={fold_div}")
        check_implementation(implementation)
        self.num_frames = num_frames
        self.fold_div = fold_div
        self.implementation = implementation

    def processed_channels(self, channels):
        """How many leading channels of `channels` the layer shifts (both folds)."""
        return 2 * (channels // self.fold_div)

    def build(self, input_shape):
        if is_split_shape(input_shape):
            channels = sum(shape[-1] for shape in input_shape)
            if input_shape[0][-1] != self.processed_channels(channels):
                raise ValueError(
                    f"TemporalShift with fold_div={self.fold_div} on {channels} channels "
                    f"shifts {self.processed_channels(channels)}; the first channel piece has "
                    f"{input_shape[0][-1]}"
                )

    def call(self, inputs, training=None):
        split = isinstance(inputs, (list, tuple))
        channels = sum(x.shape[-1] for x in inputs) if split else inputs.shape[-1]
        width = self.processed_channels(channels)
        if width == 0:  # fewer channels than `fold_div`: nothing to shift
            return list(inputs) if split else inputs
        shifting, passed = inputs if split else leading_channels(inputs, width, training)
        shape = ops.shape(shifting)
        clips = ops.reshape(shifting, (-1, self.num_frames, shape[1] * shape[2], width))
        if formulation(self.implementation) == "shift":
            fold = width // 2
            pad = ops.zeros_like(clips[:, :1, :, :fold])
            back = ops.concatenate([clips[:, 1:, :, :fold], pad], axis=1)
            forward = ops.concatenate([pad, clips[:, :-1, :, fold:]], axis=1)
            shifted = ops.concatenate([back, forward], axis=-1)
        else:
            kernel = ops.convert_to_tensor(_one_hot_kernel(width), dtype=clips.dtype)
            shifted = ops.depthwise_conv(clips, kernel, padding="same")
        shifted = ops.reshape(shifted, shape)
        if split:
            return [shifted, passed]
        return ops.concatenate([shifted, passed], axis=-1)

    def compute_output_shape(self, input_shape):
        return list(input_shape) if is_split_shape(input_shape) else input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_frames": self.num_frames,
            "fold_div": self.fold_div,
            "implementation": self.implementation,
        }


def _one_hot_kernel(width):
    """The `(3, 1, width, 1)` depthwise kernel of the shift along T: the first half of the
    channels takes the next frame (tap 2), the second half the previous one (tap 0)."""
    kernel = np.zeros((3, 1, width, 1), "float32")
    kernel[2, 0, : width // 2] = 1
    kernel[0, 0, width // 2 :] = 1
    return kernel
