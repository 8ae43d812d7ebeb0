"""TF Serving SavedModels: layout, signatures, numbers, bad requests, all in clean processes."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import keras_mvf
from keras_mvf.export import export_saved_model
from tests.export.conftest import LABELS, NUM_FRAMES, SIZE, keras_probabilities

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")

# Runs in a fresh interpreter that imports TensorFlow only.
CLEAN_PROCESS = r"""
import json, sys
import numpy as np
import tensorflow as tf

export_dir, clips_file = sys.argv[1:]
clips = np.load(clips_file)
loaded = tf.saved_model.load(export_dir)
default, jpeg = loaded.signatures["serving_default"], loaded.signatures["serving_jpeg"]
result = {"keras_mvf_imported": any(m.startswith("keras_mvf") for m in sys.modules)}
out = default(frames=tf.constant(clips))
result["probabilities"] = out["probabilities"].numpy().tolist()
result["top_k_labels"] = out["top_k_labels"].numpy().astype(str).tolist()
result["top_k_indices"] = out["top_k_indices"].numpy().tolist()

# JPEG frames at the model's size: the same as serving_default on TF's decoding of them.
encoded = tf.stack([tf.stack([tf.io.encode_jpeg(f, quality=90) for f in c]) for c in clips])
decoded = tf.map_fn(lambda c: tf.map_fn(tf.io.decode_jpeg, c, fn_output_signature=tf.uint8),
                    encoded, fn_output_signature=tf.uint8)
result["jpeg"] = jpeg(frames=encoded)["probabilities"].numpy().tolist()
result["jpeg_reference"] = default(frames=decoded)["probabilities"].numpy().tolist()

# Wider PNG frames whose centre is the clip: the signature must crop the sides away.
wide = np.concatenate([255 - clips[..., :8, :], clips, 255 - clips[..., -8:, :]], axis=3)
encoded = tf.stack([tf.stack([tf.io.encode_png(f) for f in c]) for c in wide])
result["cropped"] = jpeg(frames=encoded)["probabilities"].numpy().tolist()

errors = {}
bad_requests = {
    "frames": tf.zeros((1, clips.shape[1] - 1, *clips.shape[2:]), tf.uint8),
    "rank": tf.zeros(clips.shape[1:], tf.uint8),
    "dtype": tf.zeros(clips.shape, tf.float32),
    "jpeg_rank": tf.constant([b"x"]),
}
for name, frames in bad_requests.items():
    signature = jpeg if name.startswith("jpeg") else default
    try:
        signature(frames=frames)
        errors[name] = None
    except Exception as error:
        errors[name] = str(error)
result["errors"] = errors
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    model, _ = trained
    base = tmp_path_factory.mktemp("serving") / "tiny_mvf"
    path = export_saved_model(model, base, version=3, labels=LABELS, top_k=2)
    return model, base, path


def test_layout_is_what_tf_serving_loads(exported):
    _, base, path = exported
    assert path == os.path.join(base, "3")
    assert sorted(os.listdir(base)) == ["3"]
    assert {"saved_model.pb", "variables", "assets"} <= set(os.listdir(path))
    with open(os.path.join(path, "assets", "labels.txt")) as file:
        assert file.read().splitlines() == LABELS


def test_saved_model_cli_lists_both_signatures(exported):
    _, _, path = exported
    shown = subprocess.run(
        [SAVED_MODEL_CLI, "show", "--dir", path, "--all"],
        capture_output=True,
        text=True,
        env=ENV,
        check=True,
    ).stdout
    for signature in ("serving_default", "serving_jpeg"):
        assert f"signature_def['{signature}']" in shown
    section = shown.split("signature_def['serving_default']")[1].split("signature_def[")[0]
    assert "inputs['frames'] tensor_info:\n        dtype: DT_UINT8" in section
    for output in ("probabilities", "top_k_indices", "top_k_scores", "top_k_labels"):
        assert f"outputs['{output}']" in section
    jpeg = shown.split("signature_def['serving_jpeg']")[1].split("signature_def[")[0]
    assert "dtype: DT_STRING" in jpeg


def test_saved_model_cli_run_matches_keras(exported, test_clips, tmp_path):
    model, _, path = exported
    clips = test_clips[0][:3]
    np.save(tmp_path / "clips.npy", clips)
    subprocess.run(
        [
            SAVED_MODEL_CLI,
            "run",
            "--dir",
            path,
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--inputs",
            f"frames={tmp_path / 'clips.npy'}",
            "--outdir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        check=True,
    )
    probabilities = np.load(tmp_path / "out" / "probabilities.npy")
    np.testing.assert_allclose(probabilities, keras_probabilities(model, clips), atol=1e-5)


@pytest.fixture(scope="module")
def clean_process(exported, test_clips, tmp_path_factory):
    """What a process with only TensorFlow gets from the SavedModel."""
    _, base, _ = exported
    clips_file = tmp_path_factory.mktemp("clips") / "clips.npy"
    np.save(clips_file, test_clips[0][:4])
    run = subprocess.run(
        [sys.executable, "-c", CLEAN_PROCESS, str(base / "3"), str(clips_file)],
        capture_output=True,
        text=True,
        env=ENV,
        check=True,
    )
    return json.loads(run.stdout.splitlines()[-1])


def test_loads_and_runs_without_the_package(clean_process, exported, test_clips):
    model, _, _ = exported
    clips = test_clips[0][:4]
    assert not clean_process["keras_mvf_imported"]
    expected = keras_probabilities(model, clips)
    np.testing.assert_allclose(clean_process["probabilities"], expected, atol=1e-5)
    top = np.argsort(-expected, axis=1)[:, :2]
    np.testing.assert_array_equal(clean_process["top_k_indices"], top)
    assert clean_process["top_k_labels"] == [[LABELS[i] for i in row] for row in top]


def test_jpeg_signature_decodes_resizes_and_crops_in_graph(clean_process, exported, test_clips):
    model, _, _ = exported
    np.testing.assert_allclose(clean_process["jpeg"], clean_process["jpeg_reference"], atol=1e-5)
    expected = keras_probabilities(model, test_clips[0][:4])
    np.testing.assert_allclose(clean_process["cropped"], expected, atol=1e-5)


def test_bad_requests_name_the_expected_input(clean_process):
    errors = clean_process["errors"]
    expected = f"expected shape [?,{NUM_FRAMES},{SIZE},{SIZE},3]"
    assert (
        f"[1,{NUM_FRAMES - 1},{SIZE},{SIZE},3] is not compatible with {expected}"
        in (errors["frames"])
    )
    assert f"[{NUM_FRAMES},{SIZE},{SIZE},3] is not compatible with {expected}" in errors["rank"]
    assert "expected to be a uint8 tensor but is a float tensor" in errors["dtype"]
    assert f"[1] is not compatible with expected shape [?,{NUM_FRAMES}]" in errors["jpeg_rank"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"version": 0}, "Received: version=0"),
        ({"top_k": 0}, "Received: top_k=0"),
        ({"labels": ["a", "b"]}, "Received: 2 labels"),
        ({"labels": ["a", "b\nc", "d"]}, "single lines"),
    ],
)
def test_bad_arguments(kwargs, message, tmp_path):
    model = keras_mvf.MobileNetV2Video(
        num_classes=3, num_frames=2, width_multiplier=0.35, input_shape=(32, 32, 3)
    )
    with pytest.raises(ValueError, match=message):
        export_saved_model(model, tmp_path, **kwargs)
