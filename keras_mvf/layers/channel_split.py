"""Layers that carry a tensor as channel pieces, so temporal modules never copy it.

TensorFlow copies on every slice and concatenation along the channel axis. The
MVF module processes the first `alpha` of the channels and passes the rest (as
TSM's shift does), so a plain implementation splits and re-concatenates the
whole block input in every block: about half of the module's time at batch 1
and more at larger batches. The ResNet builder therefore keeps the activations
of consecutive MVF (or TSM) blocks as two tensors, `[processed, passed]`, from
one block to the next. These layers are the
standard ones on such a list of channel pieces, holding the very same weights
(names and shapes) as their one-tensor parents, so checkpoints, ImageNet
copies and `.weights.h5` files load unchanged.
"""

import itertools

import keras
from keras import ops


def _pieces(inputs):
    return list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]


def _split(x, sizes, axis=-1):
    """`x` cut into consecutive pieces of the given sizes along `axis`, by one op.

    Its gradient is one concatenation; slices would each have a gradient the
    size of `x`, zero but for the slice, and then their sum: on TensorFlow
    without XLA, those took 96 ms of MVFNet-50's training step (batch 2 of
    8x224x224), more than all it costs over C2D's.
    """
    if len(sizes) == 1:
        return [x]
    return ops.split(x, list(itertools.accumulate(sizes))[:-1], axis=axis)


def leading_channels(x, count, training=None):
    """`[x[..., :count], x[..., count:]]`, as the temporal modules take their channels
    from one tensor.

    In training, one split op, for its gradient (see `_split`); in inference two
    slices, the ops the LiteRT exports were built and measured with.
    """
    if training:
        return _split(x, [count, x.shape[-1] - count])
    return [x[..., :count], x[..., count:]]


def is_split_shape(shape):
    """Whether `shape` is a list of the shapes of channel pieces (not one tensor's shape)."""
    return isinstance(shape, (list, tuple)) and len(shape) > 0 and hasattr(shape[0], "__len__")


def merged_shape(shapes):
    """The shape of the concatenation of channel pieces (or of one tensor)."""
    shapes = shapes if is_split_shape(shapes) else [shapes]
    return (*shapes[0][:-1], sum(shape[-1] for shape in shapes))


@keras.saving.register_keras_serializable(package="keras_mvf")
class SplitChannels(keras.layers.Layer):
    """Splits the last axis into channel pieces of the given sizes.

    Args:
        sizes: list of ints, channels of each piece; they must add up to the
            input's channels.
        **kwargs: base layer keyword arguments.
    """

    def __init__(self, sizes, **kwargs):
        super().__init__(**kwargs)
        self.sizes = list(sizes)

    def build(self, input_shape):
        if input_shape[-1] != sum(self.sizes):
            raise ValueError(
                f"SplitChannels sizes {self.sizes} must add up to the input's "
                f"{input_shape[-1]} channels"
            )

    def call(self, inputs):
        return _split(inputs, self.sizes)

    def compute_output_shape(self, input_shape):
        return [(*input_shape[:-1], size) for size in self.sizes]

    def get_config(self):
        return {**super().get_config(), "sizes": self.sizes}


@keras.saving.register_keras_serializable(package="keras_mvf")
class ChannelSplitConv2D(keras.layers.Conv2D):
    """`Conv2D` whose input and output may be channel pieces.

    The convolution of concatenated pieces is the sum of the convolutions of
    each piece with its slice of the kernel, and an output piece is the
    convolution with a slice of the kernel's output channels: no activation is
    ever copied, only kernel slices (far smaller than activations). The bias is
    added to the first piece's convolution, before the others are (see
    `_add_bias`).

    Args:
        output_splits: None for one output tensor, or a list of ints adding up
            to `filters` for output pieces of those sizes.
        *args, **kwargs: as `keras.layers.Conv2D`.

    Input shape:
        A 4D tensor or a list of 4D tensors, the channel pieces of the input.

    Output shape:
        A 4D tensor, or a list of them with `output_splits`.
    """

    def __init__(self, *args, output_splits=None, **kwargs):
        super().__init__(*args, **kwargs)
        if output_splits is not None and sum(output_splits) != self.filters:
            raise ValueError(
                f"`output_splits` must add up to filters={self.filters}. "
                f"Received: output_splits={output_splits}"
            )
        self.output_splits = None if output_splits is None else list(output_splits)
        self.input_spec = None

    def build(self, input_shape):
        super().build(merged_shape(input_shape))
        self.input_spec = None

    def call(self, inputs):
        pieces = _pieces(inputs)
        in_sizes = [piece.shape[-1] for piece in pieces]
        out_sizes = self.output_splits or [self.filters]
        kernels = _split(self.kernel, out_sizes)
        biases = _split(self.bias, out_sizes) if self.use_bias else [None] * len(out_sizes)
        outputs = []
        for kernel, bias in zip(kernels, biases, strict=True):
            output = None
            for piece, piece_kernel in zip(
                pieces, self._input_pieces(kernel, in_sizes), strict=True
            ):
                term = self.convolution_op(piece, piece_kernel)
                if output is None and bias is not None:
                    term = _add_bias(term, bias)
                output = term if output is None else output + term
            outputs.append(self.activation(output))
        return outputs if self.output_splits else outputs[0]

    def _input_pieces(self, kernel, sizes):
        """`kernel` cut by input channels into pieces of the given sizes. A 1x1 kernel is
        cut as the leading axis of a matrix, which TensorFlow does without copying."""
        if len(sizes) == 1:
            return [kernel]
        if tuple(self.kernel_size) != (1, 1):
            return _split(kernel, sizes, axis=2)
        rows = _split(ops.reshape(kernel, kernel.shape[2:]), sizes, axis=0)
        return [ops.reshape(piece, (1, 1, *piece.shape)) for piece in rows]

    def compute_output_shape(self, input_shape):
        shape = super().compute_output_shape(merged_shape(input_shape))
        if not self.output_splits:
            return shape
        return [(*shape[:-1], size) for size in self.output_splits]

    def get_config(self):
        return {**super().get_config(), "output_splits": self.output_splits}


def _add_bias(x, bias):
    """`x + bias` along the last axis. On TensorFlow a `BiasAdd` op: with oneDNN,
    TensorFlow fuses the convolution before it and the addition after it into one
    op, where an `AddV2` would be merged with that addition into two passes over
    the output."""
    if keras.backend.backend() != "tensorflow":
        return x + bias
    import tensorflow as tf

    return tf.nn.bias_add(x, ops.cast(bias, x.dtype))


@keras.saving.register_keras_serializable(package="keras_mvf")
class ChannelSplitBatchNormalization(keras.layers.BatchNormalization):
    """`BatchNormalization` (last axis) of channel pieces, each with its slice of
    the parameters; training statistics are those of the concatenated channels.

    Takes the arguments of `keras.layers.BatchNormalization` except `axis`,
    `center`, `scale` and `renorm`, which keep their defaults.

    Input shape:
        A list of tensors, the channel pieces.

    Output shape:
        The same list of shapes.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.axis != -1 or not (self.center and self.scale) or self.renorm:
            raise ValueError(
                "ChannelSplitBatchNormalization normalises the last axis with a scale and "
                "an offset and no renorm. Received: "
                f"axis={self.axis}, center={self.center}, scale={self.scale}, renorm={self.renorm}"
            )
        self.input_spec = None

    def build(self, input_shape):
        super().build(merged_shape(input_shape))
        self.input_spec = None

    def call(self, inputs, training=None):
        # Statistics in float32 at least, as the parent computes them.
        dtype = keras.backend.result_type(inputs[0].dtype, "float32")
        pieces = [ops.cast(piece, dtype) for piece in inputs]
        mean = ops.cast(self.moving_mean, dtype)
        variance = ops.cast(self.moving_variance, dtype)
        if training and self.trainable:
            axes = list(range(len(pieces[0].shape) - 1))  # all but channels, as the parent
            moments = [
                ops.moments(piece, axes=axes, synchronized=self.synchronized) for piece in pieces
            ]
            batch_mean = ops.concatenate([m for m, _ in moments])
            batch_variance = ops.concatenate([v for _, v in moments])
            self.moving_mean.assign(mean * self.momentum + batch_mean * (1.0 - self.momentum))
            self.moving_variance.assign(
                variance * self.momentum + batch_variance * (1.0 - self.momentum)
            )
            mean, variance = batch_mean, batch_variance
        gamma = ops.cast(self.gamma, dtype)
        beta = ops.cast(self.beta, dtype)
        sizes = [piece.shape[-1] for piece in pieces]
        means, variances, betas, gammas = (_split(v, sizes) for v in (mean, variance, beta, gamma))
        return [
            ops.cast(
                ops.batch_normalization(
                    piece, m, v, axis=-1, offset=b, scale=g, epsilon=self.epsilon
                ),
                self.compute_dtype,
            )
            for piece, m, v, b, g in zip(pieces, means, variances, betas, gammas, strict=True)
        ]

    def compute_output_shape(self, input_shape):
        return list(input_shape)
