"""Keras weight files load strictly: every variable but a new head, in the file's layout."""

import numpy as np
import pytest
import tensorflow as tf

import keras_mvf
from keras_mvf.models.pretrained import source_config
from keras_mvf.training import train
from keras_mvf.weights.loading import load_weights_file

TINY = {"block_counts": (1, 1, 1, 1), "base_width": 8, "num_frames": 4, "input_shape": (32, 32, 3)}


def _tiny(**kwargs):
    return keras_mvf.ResNetVideo(**{**TINY, "num_classes": 5, **kwargs})


def _values(model):
    return {variable.path: variable.numpy() for variable in model.weights}


def _source(path, **kwargs):
    """A tiny model with random values in every variable, saved to `path`; its values."""
    model = _tiny(**kwargs)
    rng = np.random.default_rng(0)
    for variable in model.weights:
        variable.assign(rng.uniform(0.5, 1.5, variable.shape))
    if str(path).endswith(".keras"):
        model.save(path)
    else:
        model.save_weights(path)
    return _values(model)


@pytest.mark.parametrize("name", ["source.weights.h5", "source.keras"])
def test_new_class_count_keeps_every_other_variable(tmp_path, name):
    path = tmp_path / name
    source = _source(path)
    model = _tiny(num_classes=3)
    fresh = _values(model)
    summary = load_weights_file(model, path)
    loaded = _values(model)
    head = {"predictions/kernel", "predictions/bias"}
    assert set(loaded) == set(source) and head <= set(loaded)
    for key, value in loaded.items():
        np.testing.assert_array_equal(value, fresh[key] if key in head else source[key])
    assert summary == (
        f"loaded {len(loaded) - 2} of {len(loaded)} variables from {name}; "
        "new classifier (3 classes)"
    )


@pytest.mark.parametrize("name", ["converted.weights.h5", "converted.keras"])
def test_pytorch_layout_file_builds_that_layout_and_loads_everything(tmp_path, name, capsys):
    path = tmp_path / name
    source = _source(path, layout="pytorch")
    assert source_config(path) == (None, {"layout": "pytorch"}, name)
    model = _tiny(weights=str(path))  # the factory picks the file's layout
    assert not model.get_layer("conv1_conv").use_bias
    for key, value in _values(model).items():
        np.testing.assert_array_equal(value, source[key])
    expected = f"loaded {len(source)} of {len(source)} variables from {name}"
    assert capsys.readouterr().err == expected + "\n"
    with pytest.raises(ValueError, match="need layout='pytorch'. Received: layout='keras'"):
        _tiny(weights=str(path), layout="keras")  # a pinned other layout is refused


def test_files_without_the_pytorch_layout_state_their_layout_or_none(tmp_path):
    _source(tmp_path / "keras.weights.h5")
    assert source_config(tmp_path / "keras.weights.h5")[1] == {"layout": "keras"}
    mobilenet = keras_mvf.MobileNetV2Video(
        num_frames=4, input_shape=(32, 32, 3), width_multiplier=0.35, backbone_weights=None
    )
    mobilenet.save_weights(tmp_path / "mobilenet.weights.h5")
    assert source_config(tmp_path / "mobilenet.weights.h5")[1] == {}


@pytest.mark.parametrize(
    "source_kwargs, model_kwargs, example",
    [
        ({"block_counts": (1, 1, 1, 2)}, {}, "conv5_block1_0_bn[0] (256,) is (64,) in the file"),
        ({"alpha": 0.25}, {}, "conv4_block1_mvf/bn[0] (8,) is (16,) in the file"),
        (
            {"layout": "pytorch"},
            {"layout": "keras"},
            "conv4_block1_1_conv[1] (32,) not in the file",
        ),
    ],
    ids=["deeper", "alpha", "layout"],
)
def test_another_architecture_is_an_error_and_loads_nothing(
    tmp_path, source_kwargs, model_kwargs, example
):
    path = tmp_path / "other.weights.h5"
    source = _source(path, **source_kwargs)
    model = _tiny(**model_kwargs)
    before = _values(model)
    with pytest.raises(ValueError, match=r"Cannot load .*: \d+ variables differ") as error:
        load_weights_file(model, path)
    assert f"(the model has {len(before)}, the file {len(source)}), e.g. " in str(error.value)
    assert example in str(error.value)
    for key, value in _values(model).items():
        np.testing.assert_array_equal(value, before[key])


def _dataset():
    rng = np.random.default_rng(0)
    clips = rng.integers(0, 256, (4, 4, 32, 32, 3)).astype("uint8")
    labels = rng.integers(0, 3, 4).astype("int32")
    return tf.data.Dataset.from_tensor_slices((clips, labels)).batch(2)


def _train(tmp_path, weights, **model_kwargs):
    return train(
        "mvfnet50",
        _dataset(),
        out_dir=tmp_path / "run",
        num_classes=3,
        num_frames=4,
        crop_size=32,
        epochs=1,
        steps_per_epoch=1,
        batch_size=2,
        weights=weights,
        model_kwargs={"block_counts": (1, 1, 1, 1), "base_width": 8, **model_kwargs},
        tensorboard=False,
        verbose=0,
    )


def test_train_builds_the_files_layout_or_refuses_a_pinned_other(tmp_path, capsys):
    path = tmp_path / "k400.weights.h5"
    source = _source(path, layout="pytorch", name="mvfnet50")
    with pytest.raises(ValueError, match=r"layout='pytorch'.*layout='keras'"):
        _train(tmp_path, path, layout="keras")
    model, _ = _train(tmp_path, path)
    assert not model.get_layer("conv1_conv").use_bias
    expected = f"loaded {len(source) - 2} of {len(source)} variables from k400.weights.h5"
    assert f"{expected}; new classifier (3 classes)" in capsys.readouterr().err
    # The run's model.keras (with its optimizer's state) is a source as well.
    summary = load_weights_file(_tiny(layout="pytorch"), tmp_path / "run" / "model.keras")
    assert summary.endswith("from model.keras; new classifier (5 classes)")
