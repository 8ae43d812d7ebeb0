import numpy as np
import pytest

from keras_mvf.layers import TemporalShift
from tests.layer_checks import check_layer


@pytest.mark.parametrize("implementation", ["depthwise", "shift"])
def test_shift_against_hand_built_tensor(implementation):
    frames, channels = 3, 8  # fold_div 4: channels 0-1 back, 2-3 forward, 4-7 unchanged
    clip = np.arange(1, frames + 1, dtype="float32")[:, None] * np.ones((frames, channels))
    x = np.stack([clip, 10 * clip]).reshape(2 * frames, 1, 1, channels)
    y = np.asarray(TemporalShift(frames, fold_div=4, implementation=implementation)(x)).reshape(
        2, frames, channels
    )
    expected_clip = np.array(
        [
            [2, 2, 0, 0, 1, 1, 1, 1],
            [3, 3, 1, 1, 2, 2, 2, 2],
            [0, 0, 2, 2, 3, 3, 3, 3],
        ],
        dtype="float32",
    )
    np.testing.assert_array_equal(y[0], expected_clip)
    np.testing.assert_array_equal(y[1], 10 * expected_clip)


def test_layer_contract(tmp_path):
    check_layer(TemporalShift, {"num_frames": 4, "fold_div": 8}, (8, 3, 3, 16), tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"num_frames": 0}, "num_frames=0"),
        ({"num_frames": 4, "fold_div": 1}, "fold_div=1"),
        ({"num_frames": 4, "implementation": "roll"}, "implementation='roll'"),
    ],
)
def test_bad_arguments_name_the_value(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        TemporalShift(**kwargs)


def test_channel_pieces_give_the_same_result_without_concatenating():
    x = np.random.default_rng(0).normal(size=(8, 3, 3, 16)).astype("float32")
    layer = TemporalShift(4, fold_div=8)
    shifted, passed = layer([x[..., :4], x[..., 4:]])
    np.testing.assert_array_equal(np.asarray(shifted), np.asarray(layer(x))[..., :4])
    assert passed is not None and np.array_equal(np.asarray(passed), x[..., 4:])


def test_a_first_piece_of_the_wrong_size_is_an_error():
    x = np.zeros((8, 3, 3, 16), "float32")
    with pytest.raises(ValueError, match="shifts 4; the first channel piece has 6"):
        TemporalShift(4, fold_div=8)([x[..., :6], x[..., 6:]])


@pytest.mark.parametrize("split", [False, True])
def test_formulations_agree_in_outputs_and_gradients(split):
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(1).normal(size=(2 * 4, 3, 5, 16)).astype("float32"))
    results = []
    for implementation in ("depthwise", "shift"):
        layer = TemporalShift(4, fold_div=8, implementation=implementation)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer([x[..., :4], x[..., 4:]]) if split else layer(x)
            y = tf.concat(y, axis=-1) if split else y
            # Weights per output element, so the gradient tells where each one came from.
            loss = tf.reduce_sum(y * tf.reshape(tf.range(tf.size(y), dtype=y.dtype), y.shape))
        results.append([y.numpy(), tape.gradient(loss, x).numpy()])
    for got, expected in zip(*results, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_auto_shifts_slices_under_xla_and_convolves_otherwise():
    import tensorflow as tf

    layer = TemporalShift(4)
    x = tf.zeros((2 * 4, 3, 3, 16))
    for jit_compile, depthwise in ((True, False), (False, True)):
        function = tf.function(layer, jit_compile=jit_compile)
        graph = function.get_concrete_function(x).graph
        ops_used = {op.type for op in graph.get_operations()}
        assert ("DepthwiseConv2dNative" in ops_used) == depthwise, jit_compile


@pytest.mark.parametrize("implementation", ["depthwise", "shift"])
def test_fewer_channels_than_fold_div_pass_unchanged(implementation):
    x = np.random.default_rng(2).normal(size=(8, 3, 3, 4)).astype("float32")
    y = TemporalShift(4, fold_div=8, implementation=implementation)(x)
    np.testing.assert_array_equal(np.asarray(y), x)
