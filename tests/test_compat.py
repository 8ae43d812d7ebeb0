"""The private Keras names and `.weights.h5` layout keras_mvf relies on, and their errors."""

import pathlib
import tomllib

import h5py
import keras
import pytest
from packaging.specifiers import SpecifierSet

from keras_mvf import _compat, layers  # noqa: F401  (registers the layers)
from keras_mvf.training import optimization  # noqa: F401  (registers SGD)

PYPROJECT = pathlib.Path(__file__).parents[1] / "pyproject.toml"


@pytest.mark.parametrize("private", _compat.PRIVATE_NAMES, ids=lambda p: p.name)
def test_every_declared_private_name_exists(private):
    _compat.require(private)
    assert callable(getattr(private.owner, private.name))


def test_our_keras_subclasses_override_no_private_keras_name_but_the_declared():
    """A private method of ours that Keras also has would silently replace Keras' one."""
    declared = {private.name for private in _compat.PRIVATE_NAMES}
    classes = [
        c for k, c in keras.saving.get_custom_objects().items() if k.startswith("keras_mvf>")
    ]
    assert {"SGD", "ChannelSplitConv2D", "MVFModule"} <= {c.__name__ for c in classes}
    for cls in classes:
        keras_base = next(base for base in cls.__mro__ if base.__module__.startswith("keras."))
        own = {name for name in vars(cls) if name.startswith("_") and not name.startswith("__")}
        assert {name for name in own if hasattr(keras_base, name)} <= declared, cls.__name__


def test_weights_h5_vars_finds_layers_by_class_and_order(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, use_bias=False),
            keras.layers.Conv2D(5, 1),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )
    path = tmp_path / "model.weights.h5"
    model.save_weights(path)
    with h5py.File(path, "r") as file:
        assert [v.shape for v in _compat.weights_h5_vars(file, "conv2d").values()] == [(3, 3, 3, 4)]
        second = _compat.weights_h5_vars(file, "conv2d_1")
        assert [second[i].shape for i in "01"] == [(1, 1, 4, 5), (5,)]
        assert _compat.weights_h5_vars(file, "dense")["0"].shape == (6 * 6 * 5, 2)
        assert _compat.weights_h5_vars(file, "dense_1") is None


def test_missing_private_name_is_a_clear_error():
    class Trainer:
        pass

    with pytest.raises(RuntimeError) as error:
        _compat.require(_compat.Private(Trainer, "_fit_step", "a test feature"))
    assert str(error.value) == (
        f"keras_mvf needs Keras' private Trainer._fit_step for a test feature; Keras "
        f"{keras.__version__} does not provide it. keras_mvf is tested with Keras "
        ">=3.15,<3.16: install one of those (pip install 'keras>=3.15,<3.16')."
    )


@pytest.mark.parametrize(
    "datasets",
    [
        {"layers/dense/variables/0": (2, 3), "layers/dense/variables/1": (3,)},
        {"_layer_checkpoint_dependencies/dense/vars/0": (2, 3)},
        {"layers/dense/vars/0": (2, 3)},
        {"layers/dense/vars/kernel": (2, 3), "layers/dense/vars/bias": (3,)},
    ],
    ids=["vars renamed", "layers renamed", "no bias", "named variables"],
)
def test_another_weights_h5_layout_is_a_clear_error(tmp_path, datasets):
    path = tmp_path / "other.weights.h5"
    with h5py.File(path, "w") as file:
        for name, shape in datasets.items():
            file.create_dataset(name, shape=shape, dtype="float32")
    with h5py.File(path, "r") as file, pytest.raises(RuntimeError) as error:
        _compat.check_weights_h5_layout(file)
    assert f"Keras {keras.__version__} does not provide it" in str(error.value)
    assert "layers/dense/vars/0" in str(error.value)


def test_tested_range_is_what_pyproject_requires_and_holds_the_installed_keras():
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    assert [d for d in dependencies if d.startswith("keras")] == [f"keras{_compat.TESTED_KERAS}"]
    assert keras.__version__ in SpecifierSet(_compat.TESTED_KERAS)
