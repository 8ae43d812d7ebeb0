"""Streaming inference equals the full model on every window, for every registered model."""

import keras
import numpy as np
import pytest

import keras_mvf
from keras_mvf.inference import StreamingClassifier, split_model
from keras_mvf.layers import MVFModule, TemporalShift
from keras_mvf.models.registry import create_model, list_models

NUM_FRAMES, SIZE = 4, 32


def tiny(name, **kwargs):
    """A tiny registered model whose BatchNorm statistics fit random frames.

    With their initial statistics the activations of a tiny random network fade
    to almost nothing, and every window would get the same probabilities.
    """
    if "mobilenet" in name:
        kwargs["width_multiplier"] = 0.35
    else:
        kwargs.update(block_counts=(1, 1, 1, 1), base_width=8)
    model = create_model(
        name, num_classes=5, num_frames=NUM_FRAMES, input_shape=(SIZE, SIZE, 3), **kwargs
    )
    for layer in model.layers:
        for bn in (layer, getattr(layer, "bn", None)):  # the MVF module's own BatchNorm too
            if isinstance(bn, keras.layers.BatchNormalization):
                bn.momentum = 0.0  # one training call sets the statistics to its batch's
    clips = np.random.default_rng(1).integers(0, 256, (2, NUM_FRAMES, SIZE, SIZE, 3))
    model(clips.astype("float32"), training=True)
    return model


@pytest.fixture(scope="module")
def frames():
    """Ten uint8 frames: random, so that every window gives other probabilities."""
    return np.random.default_rng(0).integers(0, 256, (10, SIZE, SIZE, 3), dtype=np.uint8)


def windows(model, frames):
    """`model` on every window of consecutive frames: `(len(frames) - NUM_FRAMES + 1, classes)`."""
    clips = np.stack([frames[i : i + NUM_FRAMES] for i in range(len(frames) - NUM_FRAMES + 1)])
    return keras.ops.convert_to_numpy(model(clips.astype("float32"), training=False))


def check_stream(stream, model, frames):
    pushed = [stream.push(frame) for frame in frames]
    assert pushed[: NUM_FRAMES - 1] == [None] * (NUM_FRAMES - 1)
    expected = windows(model, frames)
    # Windows differ far more than the tolerance, so a wrong window cannot pass.
    assert np.abs(np.diff(expected, axis=0)).max() > 1e-3
    np.testing.assert_allclose(np.stack(pushed[NUM_FRAMES - 1 :]), expected, rtol=1e-4, atol=1e-7)


# With `block_counts` set, the 101-layer configurations build the same networks as the 50-layer.
@pytest.mark.parametrize("name", [name for name in list_models() if "101" not in name])
def test_stream_equals_the_model_on_every_window(name, frames):
    model = tiny(name)
    check_stream(StreamingClassifier(model), model, frames)


def test_a_model_loaded_from_keras_file_streams_the_same(frames, tmp_path):
    model = tiny("mvfnet50", layout="pytorch")
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras", compile=False)
    check_stream(StreamingClassifier(loaded), model, frames)


def layer_types(model):
    return {type(layer) for layer in model.layers}


def test_split_is_at_the_first_temporal_module():
    model = tiny("mvfnet50")  # MVF in res4-5: the stem and res2-3 run per frame
    frame_model, window_model = split_model(model)
    assert not layer_types(frame_model) & {MVFModule, TemporalShift}
    names = {layer.name for layer in frame_model.layers}
    assert {"conv1_conv", "conv2_block1_3_conv", "conv3_block1_out"} <= names
    assert "conv4_block1_1_conv" not in names
    assert MVFModule in layer_types(window_model)
    assert not {"conv1_conv", "conv3_block1_3_conv"} & {layer.name for layer in window_model.layers}
    # TSM shifts in res2 already: only the stem (and res2's first shortcut) run per frame.
    frame_model, _ = split_model(tiny("tsm50"))
    assert "conv2_block1_1_conv" not in {layer.name for layer in frame_model.layers}


def test_push_checks_the_frame(frames):
    stream = StreamingClassifier(tiny("c2d_mobilenetv2"))
    with pytest.raises(ValueError, match=r"uint8 RGB frame of shape \(32, 32, 3\).*float32"):
        stream.push(frames[0].astype("float32"))
    with pytest.raises(ValueError, match=r"Received: dtype=uint8, shape=\(32, 32\)"):
        stream.push(frames[0, :, :, 0])
    with pytest.raises(ValueError, match=r"shape=\(1, 32, 32, 3\)"):
        stream.push(frames[:1])


def test_reset_and_classify_false(frames):
    model = tiny("tsm_mobilenetv2")
    stream = StreamingClassifier(model)
    for frame in frames[:3]:
        stream.push(frame)
    stream.reset()
    assert [stream.push(frame, classify=False) for frame in frames[3:7]] == [None] * 4
    np.testing.assert_allclose(stream.push(frames[7]), windows(model, frames[4:8])[0], rtol=1e-4)


def test_rejects_models_that_are_not_video_models():
    inputs = keras.Input((SIZE, SIZE, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs))
    with pytest.raises(ValueError, match="FoldFrames"):
        split_model(model)
    with pytest.raises(ValueError, match="fixed clip input"):
        StreamingClassifier(model)


def test_exported_from_the_package():
    assert keras_mvf.inference.StreamingClassifier is StreamingClassifier
