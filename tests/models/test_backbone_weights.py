"""ImageNet initialisation from Keras Applications, proven with random weights in local files."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_mvf
from keras_mvf.layers import MVFModule

FRAMES = 2


def randomised_application(application_fn, path, **kwargs):
    """A Keras Application with random weights and non-trivial BN statistics, saved to `path`."""
    model = application_fn(weights=None, include_top=False, **kwargs)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, layer.gamma.shape),
                    rng.normal(0, 0.1, layer.beta.shape),
                    rng.normal(0, 0.1, layer.moving_mean.shape),
                    rng.uniform(0.5, 2.0, layer.moving_variance.shape),
                ]
            )
    model.save_weights(path)
    return model


def per_frame_features(application, preprocess, clips):
    frames = clips.reshape(-1, *clips.shape[2:])
    maps = keras.ops.convert_to_numpy(application(preprocess(frames.copy()), training=False))
    return maps.mean(axis=(1, 2)).reshape(*clips.shape[:2], -1).mean(axis=1)


@pytest.mark.large
@pytest.mark.parametrize(
    ("application_fn", "preprocess", "factory", "kwargs", "size"),
    [
        (
            keras.applications.ResNet50,
            keras.applications.resnet.preprocess_input,
            keras_mvf.MVFNet50,
            {},
            64,
        ),
        (
            keras.applications.MobileNetV2,
            keras.applications.mobilenet_v2.preprocess_input,
            keras_mvf.MVFNetMobileNetV2,
            {"alpha": 0.35},
            96,
        ),
    ],
)
def test_copied_backbone_reproduces_the_application(
    application_fn, preprocess, factory, kwargs, size, tmp_path
):
    path = str(tmp_path / "backbone.weights.h5")
    application = randomised_application(
        application_fn, path, input_shape=(size, size, 3), **kwargs
    )
    extra = {"width_multiplier": kwargs["alpha"]} if kwargs else {}
    clips = np.random.default_rng(1).uniform(0, 255, (2, FRAMES, size, size, 3)).astype("float32")

    c2d = factory(
        num_frames=FRAMES,
        temporal_module=None,
        backbone_weights=path,
        include_top=False,
        pooling="avg",
        input_shape=(size, size, 3),
        **extra,
    )
    expected = per_frame_features(application, preprocess, clips)
    got = keras.ops.convert_to_numpy(c2d(clips, training=False))
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()

    mvf = factory(num_frames=FRAMES, backbone_weights=path, input_shape=(size, size, 3), **extra)
    ours = {layer.name: layer for layer in mvf.layers}
    for layer in (layer for layer in application.layers if layer.weights):
        for theirs, mine in zip(layer.get_weights(), ours[layer.name].get_weights(), strict=True):
            if layer.name == "conv1_conv" and theirs.ndim == 4:
                theirs = theirs[:, :, ::-1]  # BGR weights take RGB clips
            np.testing.assert_array_equal(mine, theirs)
    modules = [layer for layer in mvf.layers if isinstance(layer, MVFModule)]
    assert modules and all(np.std(m.get_weights()[0]) > 0 for m in modules)


@pytest.mark.slow
def test_without_network_the_error_says_what_to_do(tmp_path):
    script = (
        "import keras_mvf\n"
        "try:\n"
        "    keras_mvf.MVFNet50(num_frames=1, input_shape=(32, 32, 3))\n"
        "except RuntimeError as error:\n"
        "    print(error)\n"
    )
    env = {**os.environ, "KERAS_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert "backbone_weights=None" in result.stdout
    assert "backbone_weights='/path/to/" in result.stdout
