"""The multi-view fusion (MVF) module of MVFNet."""

import contextlib
import contextvars
import math

import keras
from keras import ops

from keras_mvf import _compat
from keras_mvf.layers.channel_split import is_split_shape, leading_channels

VIEWS = ("thw", "th", "tw", "t")
IMPLEMENTATIONS = ("auto", "depthwise", "shift")
# None, or how a LiteRT export being traced is quantized ("float" or "int8").
_TRACING_FOR_LITERT = contextvars.ContextVar("tracing_for_litert", default=None)
# Processed channels below which LiteRT's depthwise views tile the channels across the width:
# fewer than one AVX-512 vector of float32 lanes.
_FEW_CHANNELS = 16


@keras.saving.register_keras_serializable(package="keras_mvf")
class MVFModule(keras.layers.Layer):
    """Multi-view fusion: channel-wise 1D convolutions along time, height and width.

    The first `int(channels * alpha)` channels go through three depthwise 1D
    convolutions (along T, H and W), whose outputs are summed with view weights
    beta, batch-normalised and passed through hard-swish; the remaining channels
    pass through untouched and are concatenated after the processed ones. This is
    the module of the released MVFNet checkpoints (see docs/architecture.md),
    which the paper's eq. 1-5 describe with the concatenation order reversed.

    The layer works on frames folded into the batch, `(batch * num_frames, H, W,
    C)`. It computes the views in one of two ways, with the same weights and
    results (see docs/architecture.md):

    - `"depthwise"`: the T view is a depthwise convolution on the `(batch,
      num_frames, H * W, k)` view of the same memory, and the H and W views are
      one 3x3 depthwise convolution whose cross-shaped kernel holds both 1D
      kernels. Every tensor stays 4-D, as TFLite wants. Fast where depthwise
      convolutions are: TensorFlow without XLA, LiteRT.
    - `"shift"`: each view is the sum of `kernel_size` shifted windows of the
      input, zero-padded once along T, H and W in its `(batch, num_frames, H,
      W, k)` view, times per-channel weights: elementwise work that XLA fuses
      (with the BatchNorm and hard-swish) into one loop, where its depthwise
      convolutions are slow.

    `"auto"` takes `"shift"` under XLA (the JAX backend, or a TensorFlow
    function compiled with `jit_compile=True`) and `"depthwise"` otherwise. At
    inference the BatchNorm is folded into the kernels and a bias. Functions
    traced within `tracing_for_litert()` get the views and hard-swish in the
    forms that LiteRT runs fastest.

    It also takes its input already split into channel pieces,
    `[processed, passed]` with `processed` holding `int(channels * alpha)`
    channels, and then returns `[fused, passed]` without concatenating: the
    ResNet builder keeps activations split this way so that no block copies them
    (see `keras_mvf.layers.channel_split`).

    Args:
        num_frames: int, frames per clip folded into the batch dimension.
        alpha: float in (0, 1], fraction of channels processed. Defaults to `0.125`.
        views: one of `"thw"`, `"th"`, `"tw"`, `"t"`: which views are summed.
            Defaults to `"thw"`.
        share_weights: bool, apply the temporal kernel along all views (the
            paper's "T-H-W (S)" ablation). Defaults to `False`.
        learnable_view_weights: bool, make beta_T, beta_H, beta_W trainable
            scalars initialised at 1 (the paper's future work). Defaults to `False`.
        kernel_size: odd int, length of each 1D kernel. Defaults to `3`.
        epsilon: float, BatchNorm epsilon. Defaults to `1e-5`.
        momentum: float, BatchNorm moving-average momentum (Keras convention;
            PyTorch's 0.1 is Keras' 0.9). Defaults to `0.9`.
        implementation: one of `"auto"`, `"depthwise"`, `"shift"`: how the
            views are computed; only speed differs. Defaults to `"auto"`.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Input shape:
        4D tensor `(batch * num_frames, height, width, channels)`, or its
        channel pieces `[processed, passed]`.

    Output shape:
        Same as the input (a list of two pieces for a list).

    Example:

    >>> x = keras.random.normal((2 * 8, 14, 14, 64))
    >>> MVFModule(num_frames=8, alpha=0.5)(x).shape
    (16, 14, 14, 64)

    Reference:
        Wu et al., "MVFNet: Multi-View Fusion Network for Efficient Video
        Recognition", AAAI 2021.
    """

    def __init__(
        self,
        num_frames,
        alpha=0.125,
        views="thw",
        share_weights=False,
        learnable_view_weights=False,
        kernel_size=3,
        epsilon=1e-5,
        momentum=0.9,
        implementation="auto",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(num_frames, int) or num_frames < 1:
            raise ValueError(
                f"`num_frames` must be a positive int. Received: num_frames={num_frames}"
            )
        if not 0 < alpha <= 1:
            raise ValueError(f"`alpha` must be in (0, 1]. Received: alpha={alpha}")
        if views not in VIEWS:
            raise ValueError(f"`views` must be one of {VIEWS}. Received: views={views!r}")
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"`kernel_size` must be a positive odd int. Received: kernel_size={kernel_size}"
            )
        check_implementation(implementation)
        self.num_frames = num_frames
        self.alpha = alpha
        self.views = views
        self.share_weights = share_weights
        self.learnable_view_weights = learnable_view_weights
        self.kernel_size = kernel_size
        self.epsilon = epsilon
        self.momentum = momentum
        self.implementation = implementation
        self.bn = keras.layers.BatchNormalization(
            epsilon=epsilon, momentum=momentum, dtype=self.dtype_policy, name="bn"
        )

    def processed_channels(self, channels):
        """How many leading channels of `channels` the module processes."""
        return int(channels * self.alpha)

    def build(self, input_shape):
        split = is_split_shape(input_shape)
        channels = sum(shape[-1] for shape in input_shape) if split else input_shape[-1]
        if channels is None:
            raise ValueError(
                f"MVFModule needs a known channel count. Received: input_shape={input_shape}"
            )
        self.channels = self.processed_channels(channels)
        if self.channels < 1:
            raise ValueError(
                f"`alpha` * channels must be at least 1 channel. Received: alpha={self.alpha} "
                f"with {channels} input channels"
            )
        if split and input_shape[0][-1] != self.channels:
            raise ValueError(
                f"MVFModule with alpha={self.alpha} on {channels} channels processes "
                f"{self.channels}; the first channel piece has {input_shape[0][-1]}"
            )
        shape = (self.kernel_size, self.channels)
        stddev = math.sqrt(2.0 / (self.kernel_size * self.channels))

        def kernel(name):
            """Kaiming normal, fan_out mode, as the release initialises its Conv3d kernels;
            an initializer of its own, as an unseeded one draws the same values each call."""
            init = keras.initializers.RandomNormal(stddev=stddev)
            return self.add_weight(shape=shape, initializer=init, name=name)

        separate = not self.share_weights
        self.temporal_kernel = kernel("temporal_kernel")
        self.height_kernel = kernel("height_kernel") if separate and "h" in self.views else None
        self.width_kernel = kernel("width_kernel") if separate and "w" in self.views else None
        self.view_weights = (
            self.add_weight(shape=(3,), initializer="ones", name="view_weights")
            if self.learnable_view_weights
            else None
        )
        self.bn.build((*(input_shape[0] if split else input_shape)[:-1], self.channels))

    def _view_kernels(self, dtype):
        """The (T, H, W) 1D kernels as `dtype` tensors, scaled by the view weights;
        None for unused views."""
        t = self.temporal_kernel
        h = self.temporal_kernel if self.share_weights else self.height_kernel
        w = self.temporal_kernel if self.share_weights else self.width_kernel
        kernels = [t, h if "h" in self.views else None, w if "w" in self.views else None]
        kernels = [None if k is None else ops.cast(k, dtype) for k in kernels]
        if self.view_weights is not None:
            beta = ops.cast(self.view_weights, dtype)
            kernels = [None if k is None else k * beta[i] for i, k in enumerate(kernels)]
        return kernels

    def _cross_kernel(self, vertical, horizontal):
        """A depthwise kernel `(rows, cols, k, 1)` holding two 1D kernels as a cross:
        `vertical` down the centre column and `horizontal` along the centre row of a
        `kernel_size` square, or one line where the other is None."""
        if horizontal is None:
            return vertical[:, None, :, None]
        if vertical is None:
            return horizontal[None, :, :, None]
        size, centre = self.kernel_size, self.kernel_size // 2
        zeros = ops.zeros_like(vertical)
        column = ops.stack([vertical if i == centre else zeros for i in range(size)], axis=1)
        row = ops.stack([horizontal if i == centre else zeros for i in range(size)], axis=0)
        return (column + row)[..., None]

    def call(self, inputs, training=None):
        k = self.channels
        split = isinstance(inputs, (list, tuple))
        processed, passed = inputs if split else leading_channels(inputs, k, training)
        kernels = self._view_kernels(processed.dtype)
        folded = not (training and self.bn.trainable)
        if folded:
            scale, bias = self._folded_batch_norm(processed.dtype)
            kernels = [None if kernel is None else kernel * scale for kernel in kernels]
        if formulation(self.implementation) == "shift":
            out = self._shifted_views(processed, *kernels)
            out = out + bias if folded else out
        else:
            out = self._depthwise_views(processed, *kernels, bias if folded else None)
        out = out if folded else self.bn(out, training=training)
        int8 = _TRACING_FOR_LITERT.get() == "int8"
        hard_swish = _int8_hard_swish if int8 else keras.activations.hard_silu
        out = ops.cast(hard_swish(out), passed.dtype)
        if split:
            return [out, passed]
        return ops.concatenate([out, passed], axis=-1)

    def _folded_batch_norm(self, dtype):
        """The inference BatchNorm as `(scale, bias)` per channel, computed in float32:
        `bn(x) == x * scale + bias`."""
        bn = self.bn
        scale = bn.gamma * ops.rsqrt(bn.moving_variance + bn.epsilon)
        bias = bn.beta - bn.moving_mean * scale
        return ops.cast(scale, dtype), ops.cast(bias, dtype)

    def _depthwise_views(self, processed, t_kernel, h_kernel, w_kernel, bias=None):
        """The sum of the views as two depthwise convolutions, plus `bias`, added to a
        convolution's output, where the TFLite converter folds it in.

        The T view is a convolution on the `(batch, num_frames, H * W, k)` view
        of the same memory, and the H and W views are one cross-shaped
        convolution of the frames. For LiteRT, with few channels (MVFNet
        MobileNetV2's first modules have 3 and 4) and a known width W, the T and
        H views are instead one convolution, with a cross-shaped kernel tiled W
        times, on the `(batch, num_frames, H, W * k)` view, where W * k channels
        fill XNNPACK's vector lanes, and the W view is a `(1, kernel_size)`
        convolution of the frames.
        """
        shape = ops.shape(processed)
        width = processed.shape[2]
        litert = _TRACING_FOR_LITERT.get() is not None
        if litert and width is not None and self.channels < _FEW_CHANNELS:
            clips_shape = (-1, self.num_frames, shape[1], width * self.channels)
            clip_kernel = ops.tile(self._cross_kernel(t_kernel, h_kernel), (1, 1, width, 1))
            frame_views = (None, w_kernel)
        else:
            clips_shape = (-1, self.num_frames, shape[1] * shape[2], self.channels)
            clip_kernel = self._cross_kernel(t_kernel, None)
            frame_views = (h_kernel, w_kernel)
        clips = ops.depthwise_conv(ops.reshape(processed, clips_shape), clip_kernel, padding="same")
        if all(kernel is None for kernel in frame_views):
            if bias is not None:
                clips = clips + ops.tile(bias, (clips_shape[-1] // self.channels,))
            return ops.reshape(clips, shape)
        frames = ops.depthwise_conv(processed, self._cross_kernel(*frame_views), padding="same")
        frames = frames if bias is None else frames + bias
        return frames + ops.reshape(clips, shape)

    def _shifted_views(self, processed, t_kernel, h_kernel, w_kernel):
        """The sum of the views as shifted windows times per-channel taps, on the
        `(batch, num_frames, H, W, k)` view of the same memory: the centre taps of
        all views scale the input itself, the others read windows of one copy
        zero-padded along T, H and W."""
        shape = ops.shape(processed)
        clips = ops.reshape(processed, (-1, self.num_frames, shape[1], shape[2], self.channels))
        kernels = {
            axis: kernel
            for axis, kernel in ((1, t_kernel), (2, h_kernel), (3, w_kernel))
            if kernel is not None
        }
        centre = self.kernel_size // 2
        out = clips * sum(kernel[centre] for kernel in kernels.values())
        if centre:
            out = out + _off_centre_sum(clips, kernels)
        return ops.reshape(out, shape)

    def compute_output_shape(self, input_shape):
        return list(input_shape) if is_split_shape(input_shape) else input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_frames": self.num_frames,
            "alpha": self.alpha,
            "views": self.views,
            "share_weights": self.share_weights,
            "learnable_view_weights": self.learnable_view_weights,
            "kernel_size": self.kernel_size,
            "epsilon": self.epsilon,
            "momentum": self.momentum,
            "implementation": self.implementation,
        }


def check_implementation(implementation):
    """Raises a `ValueError` naming `implementation` unless it is one of `IMPLEMENTATIONS`."""
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"`implementation` must be one of {IMPLEMENTATIONS}. "
            f"Received: implementation={implementation!r}"
        )


def formulation(implementation):
    """The formulation that `implementation` names in the function being traced now:
    "auto" is "shift" under XLA and "depthwise" elsewhere."""
    if implementation != "auto":
        return implementation
    return "shift" if _compat.compiling_with_xla() else "depthwise"


@contextlib.contextmanager
def tracing_for_litert(int8=False):
    """MVF modules traced within are written as LiteRT's XNNPACK runs them fastest.

    With fewer than 16 processed channels their depthwise views tile the
    channels across the width (see `MVFModule._depthwise_views`): faster in
    LiteRT, slower in TensorFlow. With `int8` they compute hard-swish as an
    addition and multiplications, which XNNPACK runs in int8; elsewhere they
    call `keras.activations.hard_silu`, which the TFLite converter makes one
    HARD_SWISH op, faster in float (about 4% of a float32 MVFNet MobileNetV2 in
    LiteRT) but run by XNNPACK in float only, so an int8 model would leave
    XNNPACK at every module. The TFLite export traces within.
    """
    token = _TRACING_FOR_LITERT.set("int8" if int8 else "float")
    try:
        yield
    finally:
        _TRACING_FOR_LITERT.reset(token)


def _int8_hard_swish(x):
    """`keras.activations.hard_silu`, `x * relu6(x + 3) / 6`, in an order that the TFLite
    converter keeps as an addition (with relu6) and multiplications."""
    return ops.relu6(x + 3.0) * x * (1.0 / 6.0)


def _off_centre_sum(x, kernels):
    """The sum, over `{axis: kernel}` (kernels `(size, channels)`, size > 1), of
    depthwise 1D convolutions of `x` along `axis` with zero padding, without
    their centre taps.

    `x` is padded once along all the axes (XLA writes the padded copy once);
    each tap reads a window of it, shifted along its axis and centred along the
    others, so XLA sums all the taps in one loop of plain strided reads.
    """
    size = next(iter(kernels.values())).shape[0]
    centre = size // 2
    rank = len(x.shape)
    padded = ops.pad(x, [(centre, centre) if a in kernels else (0, 0) for a in range(rank)])
    out = None
    for axis, kernel in kernels.items():
        for i in range(size):
            if i == centre:
                continue
            index = [slice(centre, -centre) if a in kernels else slice(None) for a in range(rank)]
            index[axis] = slice(i, i - size + 1 or None)
            term = padded[tuple(index)] * kernel[i]
            out = term if out is None else out + term
    return out
