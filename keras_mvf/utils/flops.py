"""FLOPs and parameter counts with the convention of the MVFNet paper (docs/architecture.md)."""

import math

import keras

from keras_mvf.layers import FoldFrames, MVFModule, UnfoldFrames
from keras_mvf.layers.channel_split import merged_shape


def _elements(shape):
    return math.prod(shape[1:])


def _shape(tensors):
    """The shape of a layer's input or output; of their concatenation for channel pieces."""
    if isinstance(tensors, list):
        return merged_shape([tensor.shape for tensor in tensors])
    return tensors.shape


def _layer_flops(layer, input_shape, output_shape):
    """Multiply-adds of one layer on one sample, per the paper's counting convention."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return _elements(output_shape) * math.prod(layer.kernel_size)
    if isinstance(layer, keras.layers.Conv2D):
        in_channels = input_shape[-1] // layer.groups
        return _elements(output_shape) * in_channels * math.prod(layer.kernel_size)
    if isinstance(layer, keras.layers.BatchNormalization):
        return 2 * _elements(input_shape)
    if isinstance(layer, keras.layers.Dense):
        return 2 * input_shape[-1] * _elements(output_shape)
    if isinstance(layer, keras.layers.GlobalAveragePooling2D):
        return _elements(output_shape) * (input_shape[1] * input_shape[2] + 1)
    if isinstance(layer, MVFModule):
        # One depthwise 1D conv per view, then BatchNorm, on the processed channels.
        processed = _elements(input_shape[:-1]) * layer.channels
        convs = 1 if layer.views == "t" else len(layer.views)
        return processed * (convs * layer.kernel_size + 2)
    return 0


def count_flops(model):
    """GFLOPs of one clip through `model`, counted as the MVFNet paper counts them.

    Conv: output elements x input channels per group x kernel elements; BatchNorm:
    2 x input elements; dense: 2 x input features per output element; global
    average pool: output elements x (H * W + 1); the MVF module: its three
    depthwise convs and BatchNorm; activations, pooling, additions and
    reshapes: 0. Layers between `FoldFrames` and `UnfoldFrames` run once per
    frame.

    Args:
        model: a functional video model with a fixed frame size.

    Returns:
        float, GFLOPs per clip.
    """
    frames = 1
    total = 0
    for layer in model.layers:
        if isinstance(layer, FoldFrames):
            frames = layer.num_frames
        elif isinstance(layer, UnfoldFrames):
            frames = 1
        if isinstance(layer, keras.layers.InputLayer):
            continue
        # Layers on channel pieces count as on their concatenation.
        input_shape = _shape(layer.input)
        output_shape = _shape(layer.output)
        if any(size is None for size in output_shape[1:]):
            raise ValueError(
                "count_flops needs fixed frame sizes; build the model with "
                f"input_shape=(224, 224, 3). Layer {layer.name!r} has output shape {output_shape}"
            )
        total += frames * _layer_flops(layer, input_shape, output_shape)
    return total / 1e9


def count_params(model):
    """Trainable parameters, as PyTorch's `parameters()` counts them (no BN statistics)."""
    return sum(math.prod(weight.shape) for weight in model.trainable_weights)
