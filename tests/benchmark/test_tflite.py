"""The LiteRT benchmark's models: random weights with trained-like activation scales."""

import keras
import numpy as np

import keras_mvf
from keras_mvf.benchmark.tflite import settle_batch_norm


def test_settled_batch_norms_normalise_the_clips_they_were_settled_on():
    model = keras_mvf.MobileNetV2Video(
        num_classes=3, num_frames=4, width_multiplier=0.35, input_shape=(32, 32, 3)
    )
    clips = np.random.default_rng(0).integers(0, 256, (3, 4, 32, 32, 3)).astype("float32")
    module = model.get_layer("block_15_mvf")  # the last MVF module
    norms = {"stem": model.get_layer("bn_Conv1"), "module": module.bn}
    probes = {
        "stem": keras.Model(model.input, norms["stem"].output),
        "module": keras.Model(model.input, module.input),
    }
    momenta = {name: norm.momentum for name, norm in norms.items()}
    unsettled = np.abs(probes["module"](clips, training=False).numpy()).mean()

    settle_batch_norm(model, clips)

    for name, norm in norms.items():
        assert norm.momentum == momenta[name]
    stem = probes["stem"](clips, training=False).numpy().reshape(-1, norms["stem"].gamma.shape[0])
    np.testing.assert_allclose(stem.mean(axis=0), 0.0, atol=1e-3)
    np.testing.assert_allclose(stem.var(axis=0), 1.0, rtol=0.05)  # var / (var + epsilon)
    # Unsettled, the last module's input is tiny; settled, it has the scale of a trained net.
    settled = np.abs(probes["module"](clips, training=False).numpy()).mean()
    assert unsettled < 0.01 < 0.1 < settled < 10
