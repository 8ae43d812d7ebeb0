"""Builds two tiny models, loads shared weights and saves their outputs, on the current backend.

python -m tests.models.backend_outputs FOLDER  # with KERAS_BACKEND set
"""

import sys

import keras
import numpy as np

import keras_mvf


def models():
    return {
        "mvf": keras_mvf.ResNetVideo(
            (1, 1, 1, 1),
            base_width=8,
            num_frames=4,
            num_classes=5,
            input_shape=(32, 32, 3),
            alpha=0.5,
            stages=(2, 3, 4, 5),
            learnable_view_weights=True,
        ),
        "tsm": keras_mvf.MobileNetV2Video(
            width_multiplier=0.35,
            num_frames=4,
            num_classes=5,
            input_shape=(32, 32, 3),
            temporal_module="tsm",
        ),
    }


def save_weights(folder):
    """Writes `NAME.weights.h5`: the initial weights, perturbed so that no layer is trivial."""
    rng = np.random.default_rng(0)
    for name, model in models().items():
        model.set_weights(
            [w + rng.normal(0, 0.05, w.shape).astype(w.dtype) for w in model.get_weights()]
        )
        model.save_weights(f"{folder}/{name}.weights.h5")


def save_outputs(folder):
    """Loads `NAME.weights.h5` and writes the outputs on `clips.npy` as `NAME_BACKEND.npy`."""
    clips = np.load(f"{folder}/clips.npy")
    for name, model in models().items():
        model.load_weights(f"{folder}/{name}.weights.h5")
        outputs = keras.ops.convert_to_numpy(model(clips, training=False))
        np.save(f"{folder}/{name}_{keras.backend.backend()}.npy", outputs)


if __name__ == "__main__":
    save_outputs(sys.argv[1])
