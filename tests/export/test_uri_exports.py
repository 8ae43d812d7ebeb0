"""Exports written to and loaded from a URI filesystem (TensorFlow's in-memory `ram://`)."""

import uuid

import numpy as np

import keras_mvf
from keras_mvf.export import export_saved_model, export_tflite, load_predictor
from keras_mvf.utils import files
from tests.export.conftest import keras_probabilities, make_clips


def test_saved_model_and_tflite_exports_on_ram():
    model = keras_mvf.ResNetVideo(
        (1, 1, 1, 1),
        base_width=8,
        temporal_module=None,
        num_classes=3,
        num_frames=4,
        input_shape=(32, 32, 3),
        backbone_weights=None,
    )
    labels = ["a", "b", "c"]
    folder = f"ram://keras_mvf/{uuid.uuid4().hex}"
    clips = make_clips(2, seed=3)[0]
    expected = keras_probabilities(model, clips)

    path = export_saved_model(model, f"{folder}/serving", version=2, labels=labels)
    assert path == f"{folder}/serving/2"
    assert files.listdir(f"{folder}/serving") == ["2"]  # no hidden partial left
    assert "saved_model.pb" in files.listdir(path)
    predictor = load_predictor(f"{folder}/serving")
    assert predictor.format == "saved_model" and predictor.labels == labels
    np.testing.assert_allclose(predictor.predict(clips), expected, atol=1e-4)

    path = export_tflite(model, f"{folder}/model.tflite", labels=labels)
    assert files.listdir(folder) == ["model.tflite", "serving"]
    predictor = load_predictor(path)
    assert predictor.format == "tflite" and predictor.labels == labels
    np.testing.assert_allclose(predictor.predict(clips), expected, atol=1e-4)
