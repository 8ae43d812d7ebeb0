import keras
import numpy as np
import pytest

from keras_mvf.layers import MVFModule, TemporalShift
from keras_mvf.layers.channel_split import (
    ChannelSplitBatchNormalization,
    ChannelSplitConv2D,
    SplitChannels,
)

SPLIT = [3, 13]
CHANNELS = sum(SPLIT)


def numpy(tensors):
    return [keras.ops.convert_to_numpy(t) for t in keras.tree.flatten(tensors)]


def clip_batch(seed, channels=CHANNELS):
    return np.random.default_rng(seed).normal(size=(4, 6, 6, channels)).astype("float32")


@pytest.mark.parametrize(
    ("kernel_size", "strides", "use_bias", "in_split", "out_split"),
    [
        (1, 1, False, SPLIT, None),
        (1, 2, True, SPLIT, [5, 3]),
        (1, 1, True, None, [2, 6]),
        (3, 2, False, SPLIT, [4, 4]),
    ],
)
def test_conv_on_pieces_equals_conv_on_their_concatenation(
    kernel_size, strides, use_bias, in_split, out_split
):
    x = clip_batch(0)
    conv = keras.layers.Conv2D(8, kernel_size, strides=strides, padding="same", use_bias=use_bias)
    conv.build(x.shape)
    split = ChannelSplitConv2D(
        8, kernel_size, strides=strides, padding="same", use_bias=use_bias, output_splits=out_split
    )
    pieces = SplitChannels(in_split)(x) if in_split else x
    split.build([p.shape for p in pieces] if in_split else x.shape)
    split.set_weights([w + 0.1 for w in conv.get_weights()])  # a non-zero bias, too
    conv.set_weights(split.get_weights())
    expected = keras.ops.convert_to_numpy(conv(x))
    outputs = split(pieces)
    assert isinstance(outputs, list) == bool(out_split)
    np.testing.assert_allclose(np.concatenate(numpy(outputs), axis=-1), expected, atol=1e-5)
    assert [w.shape for w in split.weights] == [w.shape for w in conv.weights]


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="a TensorFlow graph")
def test_bias_is_a_bias_add_on_the_first_pieces_convolution():
    # So TensorFlow's graph optimiser keeps it apart from the sum of the pieces' convolutions,
    # and oneDNN fuses the convolution, the bias and that sum into one op.
    import tensorflow as tf

    split = ChannelSplitConv2D(8, 1)
    pieces = SplitChannels(SPLIT)(clip_batch(0))
    split.build([p.shape for p in pieces])
    operations = tf.function(split).get_concrete_function(pieces).graph.get_operations()
    (bias_add,) = [op for op in operations if op.type == "BiasAdd"]
    assert bias_add.inputs[0].op.type == "Conv2D"
    assert [op.type for op in operations].count("AddV2") == 1


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="a TensorFlow graph")
def test_training_gradients_through_pieces_are_the_plain_layers_and_take_no_slice_gradients():
    # A slice's gradient is a zero tensor the size of what was sliced, then the pieces' are
    # summed: a split's is one concatenation.
    import tensorflow as tf

    inputs = keras.Input((6, 6, CHANNELS))
    plain = keras.Model(
        inputs, keras.layers.BatchNormalization()(keras.layers.Conv2D(8, 1)(inputs))
    )
    pieces = ChannelSplitConv2D(8, 1, output_splits=[2, 6])(SplitChannels(SPLIT)(inputs))
    outputs = keras.layers.Concatenate()(ChannelSplitBatchNormalization()(pieces))
    split = keras.Model(inputs, outputs)
    split.set_weights([w + 0.1 for w in plain.get_weights()])
    plain.set_weights(split.get_weights())
    x, weights = tf.constant(clip_batch(6)), tf.constant(clip_batch(7, channels=8))

    def gradients(model):
        def step(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(model(x, training=True) * weights)
            return tape.gradient(loss, [x, *model.trainable_weights])

        return tf.function(step)

    traced = gradients(split).get_concrete_function(x)
    assert "StridedSliceGrad" not in {op.type for op in traced.graph.get_operations()}
    # atol: BatchNorm cancels the convolution bias's gradient but for rounding (about 1e-5).
    for ours, theirs in zip(traced(x), gradients(plain)(x), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)


def frozen_mvf_module(shape):
    """An MVF module whose BatchNorm is frozen, so training and inference compute the same."""
    module = MVFModule(2, alpha=0.25)
    module.build(shape)
    module.bn.trainable = False
    return module


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="a TensorFlow graph")
@pytest.mark.parametrize(
    "make_layer",
    [lambda shape: TemporalShift(2, fold_div=8), frozen_mvf_module],
    ids=["TemporalShift", "MVFModule"],
)
def test_temporal_modules_on_one_tensor_take_their_channels_by_a_split_in_training(make_layer):
    # For the gradient, as the channel-piece layers; inference keeps the exports' slices.
    import tensorflow as tf

    x = tf.constant(clip_batch(8))
    layer = make_layer(x.shape)
    weights = tf.constant(clip_batch(9))

    def input_gradient(training):
        def step(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(layer(x, training=training) * weights)
            return tape.gradient(loss, x)

        return tf.function(step).get_concrete_function(x)

    traced = {training: input_gradient(training) for training in (True, False)}
    for training, slices in ((True, False), (False, True)):
        operations = traced[training].graph.get_operations()
        slice_gradients = [  # of the input: those of the small kernels do not count
            op
            for op in operations
            if op.type == "StridedSliceGrad" and op.outputs[0].shape == x.shape
        ]
        assert bool(slice_gradients) == slices, training
    np.testing.assert_allclose(traced[True](x), traced[False](x), rtol=1e-6, atol=1e-6)


def test_batch_norm_on_pieces_trains_and_infers_as_on_their_concatenation():
    x = clip_batch(1) * 3 + 1
    norm = keras.layers.BatchNormalization(momentum=0.5)
    split = ChannelSplitBatchNormalization(momentum=0.5)
    pieces = SplitChannels(SPLIT)(x)
    split.build([p.shape for p in pieces])
    norm.build(x.shape)
    rng = np.random.default_rng(2)
    norm.set_weights(
        [rng.normal(size=w.shape) for w in norm.get_weights()[:3]]
        + [rng.uniform(0.5, 2, size=norm.moving_variance.shape)]
    )
    split.set_weights(norm.get_weights())
    for training in (True, False):
        expected = keras.ops.convert_to_numpy(norm(x, training=training))
        got = np.concatenate(numpy(split(pieces, training=training)), axis=-1)
        np.testing.assert_allclose(got, expected, atol=1e-5)
        for ours, theirs in zip(split.weights, norm.weights, strict=True):
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-6)


def test_pieces_under_mixed_precision():
    x = clip_batch(3)
    pieces = SplitChannels(SPLIT)(x)
    conv = ChannelSplitConv2D(8, 1, output_splits=[2, 6], dtype="mixed_float16")
    norm = ChannelSplitBatchNormalization(dtype="mixed_float16")
    outputs = norm(conv(pieces), training=True)
    assert [keras.backend.standardize_dtype(t.dtype) for t in outputs] == ["float16"] * 2
    assert all(w.dtype == "float32" for w in conv.weights + norm.weights)


def test_a_split_block_saves_and_loads(tmp_path):
    inputs = keras.Input((6, 6, 16))
    pieces = SplitChannels([2, 14])(inputs)
    fused = MVFModule(2, alpha=0.125)(pieces)
    x = ChannelSplitConv2D(16, 1, output_splits=[2, 14])(fused)
    x = ChannelSplitBatchNormalization()(x)
    outputs = keras.layers.Concatenate()(x)
    model = keras.Model(inputs, outputs)
    path = str(tmp_path / "split.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    x = clip_batch(4)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)


def test_bad_arguments_name_what_was_received():
    with pytest.raises(ValueError, match=r"\[3, 4\] must add up to the input's 16 channels"):
        SplitChannels([3, 4])(clip_batch(5))
    with pytest.raises(ValueError, match=r"add up to filters=8. Received: output_splits=\[3, 4\]"):
        ChannelSplitConv2D(8, 1, output_splits=[3, 4])
    with pytest.raises(ValueError, match="Received: axis=-1, center=True, scale=False"):
        ChannelSplitBatchNormalization(scale=False)
