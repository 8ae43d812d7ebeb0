"""The one check every keras_mvf layer goes through."""

import inspect

import keras
import numpy as np


def check_layer(layer_class, init_kwargs, input_shape, tmp_path):
    """Config round trip, symbolic vs eager shapes, `.keras` save/load equality, one fit step."""
    layer = layer_class(**init_kwargs)
    config = layer.get_config()
    arguments = set(inspect.signature(layer_class.__init__).parameters) - {"self", "kwargs"}
    assert arguments <= set(config), f"get_config misses {arguments - set(config)}"
    clone = layer_class.from_config(config)
    assert clone.get_config() == config

    inputs = keras.Input(batch_shape=input_shape)
    symbolic = layer(inputs)
    x = np.random.default_rng(0).normal(size=input_shape).astype("float32")
    eager = layer(x)
    assert (
        tuple(symbolic.shape)
        == tuple(eager.shape)
        == tuple(layer.compute_output_shape(input_shape))
    )

    # A 1x1 conv in front gives the fit step weights to train through the layer.
    model = keras.Sequential(
        [
            keras.Input(batch_shape=input_shape),
            keras.layers.Conv2D(input_shape[-1], 1),
            layer_class(**init_kwargs),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, np.zeros_like(eager), batch_size=input_shape[0], epochs=1, verbose=0)
    path = str(tmp_path / f"{layer_class.__name__}.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
