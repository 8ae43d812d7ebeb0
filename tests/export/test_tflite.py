"""TFLite / LiteRT export: builtin ops on 4-D tensors, numbers in the LiteRT interpreter."""

import collections
import json
import os
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import keras_mvf
from keras_mvf.export import export_tflite, labels_path, load_predictor
from tests.export.conftest import LABELS, NUM_FRAMES, SIZE, keras_probabilities, make_clips


def graph_facts(path):
    """`(op names, largest tensor rank, tensor dtypes)` of a .tflite file."""
    interpreter = Interpreter(model_path=os.fspath(path))
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    tensors = interpreter.get_tensor_details()
    return ops, max(len(t["shape"]) for t in tensors), {t["dtype"] for t in tensors}


def op_counts(path):
    """`{op name: how many}` of a .tflite file's ops."""
    interpreter = Interpreter(model_path=os.fspath(path))
    return collections.Counter(op["op_name"] for op in interpreter._get_ops_details())


def module_and_residual_counts(model):
    """How many MVF modules and residual additions `model` has."""
    modules = sum(isinstance(layer, keras_mvf.layers.MVFModule) for layer in model.layers)
    residuals = sum(isinstance(layer, keras.layers.Add) for layer in model.layers)
    return modules, residuals


def assert_mobile_friendly(path):
    ops, rank, _ = graph_facts(path)
    flex_or_custom = {op for op in ops if op.startswith("Flex") or op in ("CUSTOM", "DELEGATE")}
    assert not flex_or_custom
    assert rank <= 4


@pytest.fixture(scope="module")
def exports(trained, tmp_path_factory):
    """`quantization -> .tflite path`, written on first use."""
    model, _ = trained
    directory = tmp_path_factory.mktemp("tflite")
    paths = {}

    def get(quantization):
        if quantization not in paths:
            path = directory / f"tiny_mvf_{quantization or 'float32'}.tflite"
            representative = None
            if quantization == "int8":
                clips, classes = make_clips(32, seed=2)
                representative = tf.data.Dataset.from_tensor_slices((clips, classes)).batch(4)
            export_tflite(model, path, quantization, representative, labels=LABELS)
            paths[quantization] = path
        return paths[quantization]

    return get


def test_float32_equals_keras(exports, trained, test_clips):
    path = exports(None)
    assert_mobile_friendly(path)
    ops, _, _ = graph_facts(path)
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "CONCATENATION"} <= ops  # the MVF module is there
    # Per module: the sum of the views and one HARD_SWISH; the folded BatchNorm's bias
    # goes into a convolution (trained, so the bias is not zero).
    counts, (modules, residuals) = op_counts(path), module_and_residual_counts(trained[0])
    assert modules and (counts["ADD"], counts["HARD_SWISH"]) == (residuals + modules, modules)
    predictor = load_predictor(path, num_threads=2)
    assert predictor.clip_shape == (NUM_FRAMES, SIZE, SIZE, 3)
    assert predictor.labels == LABELS
    clips = test_clips[0][:6]
    np.testing.assert_allclose(
        predictor.predict(clips), keras_probabilities(trained[0], clips), atol=1e-4
    )


def test_labels_and_description_are_packed_in_the_file(exports):
    path = exports(None)
    assert not os.path.exists(labels_path(path))
    with zipfile.ZipFile(path) as archive:  # no keras_mvf, no TFLite metadata library
        assert archive.read("labels.txt").decode("utf-8").splitlines() == LABELS
        description = json.loads(archive.read("model.json"))
    assert description["labels"] == "labels.txt"
    assert (description["num_frames"], description["num_classes"]) == (NUM_FRAMES, len(LABELS))
    assert description["signatures"] == {
        "serving_default": {
            "inputs": {"frames": {"shape": [NUM_FRAMES, SIZE, SIZE, 3], "dtype": "float32"}},
            "outputs": {"probabilities": {"shape": [1, len(LABELS)], "dtype": "float32"}},
        }
    }
    assert description["pixels"]["color"] == "RGB" and description["pixels"]["range"] == [0, 255]
    assert description["preprocessing"] == {
        "sampling": "dense",
        "frame_interval": 8,
        "short_side": round(SIZE * 256 / 224),
        "crop": "centre",
    }


@pytest.fixture(scope="module")
def streaming_export(trained, tmp_path_factory):
    path = tmp_path_factory.mktemp("streaming") / "tiny_stream.tflite"
    return export_tflite(trained[0], path, labels=LABELS, input_dtype="uint8", streaming=True)


def test_streaming_export_driven_as_an_app_would_equals_keras(streaming_export, trained):
    path = streaming_export
    assert_mobile_friendly(path)
    with zipfile.ZipFile(path) as archive:
        signatures = json.loads(archive.read("model.json"))["signatures"]
    interpreter = Interpreter(model_path=os.fspath(path))
    assert set(interpreter.get_signature_list()) == {"frame", "window"}
    frame, window = (interpreter.get_signature_runner(key) for key in ("frame", "window"))
    assert frame.get_input_details()["frame"]["dtype"] == np.uint8
    names = list(signatures["window"]["inputs"])
    assert names == list(signatures["frame"]["outputs"]) and len(names) >= 1
    # Two clips back to back: the windows in between mix frames of both.
    frames = np.concatenate(make_clips(2, seed=6)[0])
    kept, pushed = [], []
    for image in frames:
        kept = [*kept, frame(frame=image[None])][-NUM_FRAMES:]
        if len(kept) == NUM_FRAMES:
            inputs = {name: np.concatenate([f[name] for f in kept]) for name in names}
            pushed.append(window(**inputs)["probabilities"][0])
    windows = np.stack([frames[i : i + NUM_FRAMES] for i in range(len(pushed))])
    expected = keras_probabilities(trained[0], windows)
    assert np.abs(np.diff(expected, axis=0)).max() > 1e-2  # windows differ: order matters
    np.testing.assert_allclose(np.stack(pushed), expected, atol=1e-4)

    predictor = load_predictor(path)  # the same through the predictor and its stream
    assert predictor.labels == LABELS and predictor.clip_shape == (NUM_FRAMES, SIZE, SIZE, 3)
    np.testing.assert_allclose(predictor.predict(windows[:3]), expected[:3], atol=1e-4)
    stream = predictor.stream()
    streamed = [stream.push(image) for image in frames][NUM_FRAMES - 1 :]
    np.testing.assert_allclose(np.stack(streamed), expected, atol=1e-4)


def test_float16_close_to_keras(exports, trained, test_clips):
    path = exports("float16")
    assert_mobile_friendly(path)
    assert np.float16 in graph_facts(path)[2]
    clips = test_clips[0][:6]
    np.testing.assert_allclose(
        load_predictor(path).predict(clips), keras_probabilities(trained[0], clips), atol=1e-2
    )


@pytest.mark.parametrize("quantization", ["int8", "dynamic"])
def test_quantized_agrees_with_keras_top1(quantization, exports, trained, test_clips):
    path = exports(quantization)
    assert_mobile_friendly(path)
    assert np.int8 in graph_facts(path)[2]
    counts, (modules, residuals) = op_counts(path), module_and_residual_counts(trained[0])
    if quantization == "int8":  # hard-swish as `+ 3` (with relu6) and products: XNNPACK's int8
        assert (counts["ADD"], counts["HARD_SWISH"]) == (residuals + 2 * modules, 0)
    else:  # float activations
        assert counts["HARD_SWISH"] == modules
    clips = test_clips[0]
    expected = keras_probabilities(trained[0], clips).argmax(axis=1)
    # The model is confident and its predictions cover every class, so this can fail.
    assert len(set(expected)) == len(LABELS)
    agreement = (load_predictor(path).predict(clips).argmax(axis=1) == expected).mean()
    assert agreement >= 0.95


@pytest.mark.slow
@pytest.mark.parametrize(
    "build",
    [
        lambda: keras_mvf.ResNetVideo(
            (1, 1, 1, 1),
            num_classes=3,
            num_frames=2,
            base_width=8,
            layout="pytorch",
            input_shape=(32, 32, 3),
        ),
        lambda: keras_mvf.ResNetVideo(
            (1, 1, 1, 1),
            num_classes=3,
            num_frames=2,
            base_width=8,
            temporal_module="tsm",
            input_shape=(32, 32, 3),
        ),
        lambda: keras_mvf.MobileNetV2Video(
            num_classes=3,
            num_frames=2,
            width_multiplier=0.35,
            temporal_module="tsm",
            input_shape=(32, 32, 3),
        ),
    ],
    ids=["resnet_mvf", "resnet_tsm", "mobilenetv2_tsm"],
)
def test_other_models_export_too(build, tmp_path):
    model = build()
    path = export_tflite(model, tmp_path / "model.tflite")
    assert_mobile_friendly(path)
    assert not os.path.exists(labels_path(path))
    clips = make_clips(2, seed=3)[0][:, :2]
    predictor = load_predictor(path)
    assert predictor.labels is None
    np.testing.assert_allclose(
        predictor.predict(clips), keras_probabilities(model, clips), atol=1e-4
    )


def test_labels_path():
    assert labels_path("/a/b/model.tflite") == "/a/b/model.labels.txt"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"quantization": "int4"}, "Received: quantization='int4'"),
        ({"quantization": "int8"}, "representative_data=None"),
        ({"representative_data": [np.zeros((2, 32, 32, 3))]}, "quantization=None"),
        ({"path": "model.lite"}, "Received: path='model.lite'"),
        ({"input_dtype": "int8"}, "Received: input_dtype='int8'"),
        (
            {"quantization": "int8", "representative_data": [], "streaming": True},
            "quantization='int8' with streaming=True",
        ),
    ],
)
def test_bad_arguments(kwargs, message, tmp_path):
    model = keras_mvf.MobileNetV2Video(
        num_classes=3, num_frames=2, width_multiplier=0.35, input_shape=(32, 32, 3)
    )
    kwargs = {"path": str(tmp_path / "m.tflite"), **kwargs}
    with pytest.raises(ValueError, match=message):
        export_tflite(model, **kwargs)


def test_a_file_that_is_no_tflite_model_is_named(tmp_path):
    path = tmp_path / "broken.tflite"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match=rf"^{path}: not a TFLite model LiteRT can load \("):
        load_predictor(path)


@pytest.mark.slow
def test_representative_clips_of_the_wrong_shape(tmp_path):
    model = keras_mvf.MobileNetV2Video(
        num_classes=3, num_frames=2, width_multiplier=0.35, input_shape=(32, 32, 3)
    )
    with pytest.raises(ValueError, match=r"shape \(2, 32, 32, 3\)"):
        export_tflite(model, tmp_path / "m.tflite", "int8", [np.zeros((3, 32, 32, 3))])
