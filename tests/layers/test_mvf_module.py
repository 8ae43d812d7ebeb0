import contextlib
import math
import os

import keras
import numpy as np
import pytest

from keras_mvf.layers import MVFModule, mvf_module
from tests.layer_checks import check_layer

FRAMES, HEIGHT, WIDTH, CHANNELS = 4, 5, 6, 16


def reference_mvf(x, layer, frames):
    """The module written naively in NumPy on the unfolded (N, T, H, W, C) view."""
    k = layer.channels
    clips = x.reshape(-1, frames, *x.shape[1:])[..., :k]
    kernels = {"t": layer.temporal_kernel, "h": layer.height_kernel, "w": layer.width_kernel}
    betas = (
        dict(zip("thw", keras.ops.convert_to_numpy(layer.view_weights), strict=True))
        if layer.learnable_view_weights
        else dict.fromkeys("thw", 1.0)
    )
    out = np.zeros_like(clips)
    for axis, view in zip((1, 2, 3), "thw", strict=True):
        if view not in layer.views:
            continue
        kernel = keras.ops.convert_to_numpy(
            layer.temporal_kernel if layer.share_weights else kernels[view]
        )
        size = clips.shape[axis]
        padded = np.pad(clips, [(1, 1) if a == axis else (0, 0) for a in range(5)])
        for i in range(3):
            window = np.take(padded, np.arange(i, i + size), axis=axis)
            out += betas[view] * kernel[i] * window
    bn = layer.bn
    mean, var, gamma, beta = (
        keras.ops.convert_to_numpy(v)
        for v in (bn.moving_mean, bn.moving_variance, bn.gamma, bn.beta)
    )
    out = (out - mean) / np.sqrt(var + 1e-5) * gamma + beta
    out = out * np.clip(out + 3, 0, 6) / 6
    out = out.reshape(-1, *out.shape[2:])
    return np.concatenate([out, x[..., k:]], axis=-1)


def randomise_batch_norm(bn, rng):
    for variable in (bn.gamma, bn.beta, bn.moving_mean):
        variable.assign(rng.normal(size=variable.shape))
    bn.moving_variance.assign(rng.uniform(0.5, 2.0, size=bn.moving_variance.shape))


ABLATIONS = [
    {},
    {"alpha": 0.5},
    {"alpha": 1.0},  # 16 processed channels: the depthwise views do not tile them
    {"alpha": 1.0, "views": "t"},
    {"alpha": 0.25, "views": "th"},
    {"alpha": 0.25, "views": "tw"},
    {"alpha": 0.5, "share_weights": True},
    {"alpha": 0.5, "learnable_view_weights": True},
]


def randomised_layer(rng, x_shape, **kwargs):
    layer = MVFModule(FRAMES, **kwargs)
    layer.build(x_shape)
    randomise_batch_norm(layer.bn, rng)
    if layer.view_weights is not None:
        layer.view_weights.assign([0.5, -1.5, 2.0])
    return layer


@pytest.mark.parametrize("implementation", ["depthwise", "shift"])
@pytest.mark.parametrize("kwargs", ABLATIONS)
def test_matches_naive_reference(kwargs, implementation):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2 * FRAMES, HEIGHT, WIDTH, CHANNELS)).astype("float32")
    layer = randomised_layer(rng, x.shape, implementation=implementation, **kwargs)
    expected = reference_mvf(x, layer, FRAMES)
    np.testing.assert_allclose(layer(x, training=False), expected, atol=1e-5)
    for int8 in (False, True):  # the views and hard-swish as the TFLite export writes them
        with mvf_module.tracing_for_litert(int8=int8):
            np.testing.assert_allclose(layer(x, training=False), expected, atol=1e-5)


@pytest.mark.parametrize("kwargs", ABLATIONS)
def test_depthwise_formulation_with_unknown_frame_size(kwargs):
    """LiteRT's tiled views need a known width; without one the export keeps the others."""
    import tensorflow as tf

    rng = np.random.default_rng(2)
    x = rng.normal(size=(2 * FRAMES, HEIGHT, WIDTH, CHANNELS)).astype("float32")
    layer = randomised_layer(rng, x.shape, implementation="depthwise", **kwargs)
    spec = tf.TensorSpec((None, None, None, CHANNELS))
    function = tf.function(lambda x: layer(x, training=False), input_signature=[spec])
    with mvf_module.tracing_for_litert():
        np.testing.assert_allclose(function(x), reference_mvf(x, layer, FRAMES), atol=1e-5)


def test_depthwise_views_tile_few_channels_for_litert_only():
    """In TensorFlow the tiled views were slower: the layer tiles in LiteRT exports only."""
    import tensorflow as tf

    layer = MVFModule(FRAMES, alpha=0.5)  # 8 processed channels
    x = tf.zeros((2 * FRAMES, HEIGHT, WIDTH, CHANNELS))

    def depthwise_channels(litert):
        function = tf.function(lambda x: layer(x, training=False))
        with mvf_module.tracing_for_litert() if litert else contextlib.nullcontext():
            graph = function.get_concrete_function(x).graph
        return sorted(
            op.inputs[0].shape[-1]
            for op in graph.get_operations()
            if op.type == "DepthwiseConv2dNative"
        )

    assert depthwise_channels(litert=False) == [8, 8]
    assert depthwise_channels(litert=True) == [8, WIDTH * 8]


def outputs_and_gradients(layer, x, training):
    """The layer's output and the gradients of a weighted sum of it with respect to the
    input and to each trainable weight, in a TensorFlow function compiled as `layer` asks."""
    import tensorflow as tf

    x = tf.constant(x)
    weights = tf.constant(np.random.default_rng(7).normal(size=x.shape).astype("float32"))

    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=training)
            loss = tf.reduce_sum(y * weights)
        return [y, *tape.gradient(loss, [x, *layer.trainable_weights])]

    return [keras.ops.convert_to_numpy(t) for t in step(x)]


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize(
    "kwargs",
    [{"alpha": 0.5}, ABLATIONS[-1], ABLATIONS[-2], {"alpha": 0.5, "views": "th", "kernel_size": 5}],
)
def test_formulations_agree_in_outputs_and_gradients(kwargs, training):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(2 * FRAMES, HEIGHT, WIDTH, CHANNELS)).astype("float32")
    depthwise = randomised_layer(rng, x.shape, implementation="depthwise", **kwargs)
    shift = MVFModule(FRAMES, implementation="shift", **kwargs)
    shift.build(x.shape)
    shift.set_weights(depthwise.get_weights())
    names = [[w.path.split("/", 1)[1] for w in layer.weights] for layer in (shift, depthwise)]
    assert names[0] == names[1]
    expected = outputs_and_gradients(depthwise, x, training)
    got = outputs_and_gradients(shift, x, training)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-5, atol=1e-5)
    # A weight's gradient sums thousands of products, in an order that depends on the
    # threads TensorFlow gets: 1e-5 of the gradient's scale, not of each element.
    for got_gradient, gradient in zip(got[1:], expected[1:], strict=True):
        scale = np.abs(gradient).max()
        np.testing.assert_allclose(got_gradient, gradient, rtol=1e-5, atol=1e-5 * scale)


def test_auto_takes_shifts_under_xla_and_depthwise_convolutions_otherwise():
    import tensorflow as tf

    layer = MVFModule(FRAMES, alpha=0.5)
    x = tf.zeros((2 * FRAMES, 4, 4, 8))
    for jit_compile, depthwise in ((True, False), (False, True)):
        function = tf.function(lambda x: layer(x, training=False), jit_compile=jit_compile)
        graph = function.get_concrete_function(x).graph
        ops_used = {op.type for op in graph.get_operations()}
        assert ("DepthwiseConv2dNative" in ops_used) == depthwise, jit_compile


JAX_SCRIPT = """
import jax, keras, numpy as np, sys
from keras_mvf.layers import MVFModule
x = np.load(sys.argv[1] + "/x.npy")
layer = MVFModule(4, alpha=0.5)
layer.build(x.shape)
weights = np.load(sys.argv[1] + "/weights.npz")
layer.set_weights([weights[f"arr_{i}"] for i in range(len(weights.files))])
print(sorted({e.primitive.name for e in jax.make_jaxpr(layer.__call__)(x).eqns}))
np.save(sys.argv[1] + "/y.npy", np.asarray(jax.jit(layer.__call__)(x)))
"""


@pytest.mark.slow
def test_jax_backend_takes_shifts_and_gives_the_same_output(tmp_path):
    import subprocess
    import sys

    rng = np.random.default_rng(9)
    x = rng.normal(size=(2 * FRAMES, HEIGHT, WIDTH, CHANNELS)).astype("float32")
    layer = randomised_layer(rng, x.shape, alpha=0.5)
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "weights.npz", *layer.get_weights())
    result = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KERAS_BACKEND": "jax"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "conv_general_dilated" not in result.stdout and "slice" in result.stdout
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), layer(x), atol=1e-5)


def test_processes_the_first_k_channels_and_passes_the_rest():
    layer = MVFModule(FRAMES, alpha=0.25)
    x = np.random.default_rng(2).normal(size=(FRAMES, 3, 3, CHANNELS)).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x, training=False))
    assert layer.channels == 4
    np.testing.assert_array_equal(y[..., 4:], x[..., 4:])
    assert not np.allclose(y[..., :4], x[..., :4])


def test_weights_per_view_and_initialisation():
    # Seeded: the statistical bounds below would fail an unseeded draw now and then.
    keras.utils.set_random_seed(0)
    layer = MVFModule(FRAMES, alpha=1.0)
    layer.build((FRAMES, 4, 4, 4096))
    names = sorted(w.path.split("/")[-1] for w in layer.trainable_weights)
    assert names == ["beta", "gamma", "height_kernel", "temporal_kernel", "width_kernel"]
    kernel = keras.ops.convert_to_numpy(layer.temporal_kernel)
    assert kernel.shape == (3, 4096)
    assert abs(kernel.std() - math.sqrt(2 / (3 * 4096))) < 0.05 * math.sqrt(2 / (3 * 4096))
    assert abs(kernel.mean()) < 3 * kernel.std() / math.sqrt(kernel.size)
    height, width = (
        keras.ops.convert_to_numpy(k) for k in (layer.height_kernel, layer.width_kernel)
    )
    # Independent draws: an unseeded initializer reused would give the views the same kernel.
    assert not np.allclose(kernel, height) and not np.allclose(height, width)
    assert np.all(keras.ops.convert_to_numpy(layer.bn.gamma) == 1)
    assert layer.bn.epsilon == 1e-5 and layer.bn.momentum == 0.9

    shared = MVFModule(FRAMES, alpha=0.5, share_weights=True)
    shared.build((FRAMES, 4, 4, 8))
    assert shared.height_kernel is None and shared.width_kernel is None
    temporal_only = MVFModule(FRAMES, views="t")
    temporal_only.build((FRAMES, 4, 4, 8))
    assert temporal_only.height_kernel is None and temporal_only.width_kernel is None


def test_learnable_view_weights_start_at_one_and_train():
    layer = MVFModule(FRAMES, alpha=0.5, learnable_view_weights=True)
    x = np.random.default_rng(3).normal(size=(2 * FRAMES, 4, 4, 8)).astype("float32")
    model = keras.Sequential([keras.Input(batch_shape=x.shape), layer])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.view_weights), [1, 1, 1])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.fit(x, np.ones_like(x), batch_size=len(x), epochs=1, verbose=0)
    assert not np.allclose(keras.ops.convert_to_numpy(layer.view_weights), 1)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"alpha": 0.5, "views": "th", "learnable_view_weights": True}, {"share_weights": True}],
)
def test_layer_contract(kwargs, tmp_path):
    check_layer(MVFModule, {"num_frames": FRAMES, **kwargs}, (2 * FRAMES, 5, 5, 16), tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"num_frames": 0}, "num_frames=0"),
        ({"num_frames": 4, "alpha": 1.5}, "alpha=1.5"),
        ({"num_frames": 4, "alpha": 0}, "alpha=0"),
        ({"num_frames": 4, "views": "hw"}, "views='hw'"),
        ({"num_frames": 4, "kernel_size": 2}, "kernel_size=2"),
        ({"num_frames": 4, "implementation": "xla"}, "implementation='xla'"),
    ],
)
def test_bad_arguments_name_the_value(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        MVFModule(**kwargs)


def test_too_few_channels_for_alpha():
    with pytest.raises(ValueError, match="alpha=0.125 with 4 input channels"):
        MVFModule(FRAMES)(np.zeros((FRAMES, 2, 2, 4), "float32"))


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    x = np.random.default_rng(4).normal(size=(2 * FRAMES, 5, 5, 16)).astype("float32")
    full = MVFModule(FRAMES, alpha=0.5)
    expected = keras.ops.convert_to_numpy(full(x, training=False))
    mixed = MVFModule(FRAMES, alpha=0.5, dtype=policy)
    mixed.build(x.shape)
    mixed.set_weights(full.get_weights())
    inference = mixed(x, training=False)
    assert keras.backend.standardize_dtype(inference.dtype) == policy.split("_")[1]
    inference = keras.ops.convert_to_numpy(keras.ops.cast(inference, "float32"))
    np.testing.assert_allclose(inference, expected, atol=0.05, rtol=0.05)
    y = mixed(x, training=True)
    assert keras.backend.standardize_dtype(y.dtype) == policy.split("_")[1]
    assert all(w.dtype == "float32" for w in mixed.weights)


def test_channel_pieces_give_the_same_result_without_concatenating():
    x = np.random.default_rng(5).normal(size=(2 * FRAMES, 5, 5, CHANNELS)).astype("float32")
    layer = MVFModule(FRAMES, alpha=0.25)
    full = keras.ops.convert_to_numpy(layer(x, training=False))
    fused, passed = layer([x[..., :4], x[..., 4:]], training=False)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fused), full[..., :4], atol=1e-6)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(passed), x[..., 4:])
    with pytest.raises(ValueError, match="processes 4; the first channel piece has 8"):
        MVFModule(FRAMES, alpha=0.25)([x[..., :8], x[..., 8:]])
