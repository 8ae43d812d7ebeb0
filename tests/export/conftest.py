"""Shared fixtures: a tiny MVF MobileNetV2 trained briefly on coloured-square clips.

Exports are compared with this model, so the comparisons see non-trivial,
confident weights and predictions spread over all classes (a randomly
initialised MobileNetV2 predicts almost the same thing for every clip).
"""

import os

import keras
import numpy as np
import pytest
from filelock import FileLock

import keras_mvf

NUM_FRAMES, SIZE = 4, 32
COLOURS = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 80, 230),
    "yellow": (230, 220, 50),
}
LABELS = list(COLOURS)


def make_clips(count, seed, size=SIZE):
    """uint8 clips of dark noise with a square of the class colour moving across them."""
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, len(LABELS), count)
    clips = rng.integers(0, 60, (count, NUM_FRAMES, size, size, 3)).astype(np.uint8)
    side = size // 2
    for clip, label in zip(clips, classes, strict=True):
        y, x = rng.integers(0, size - side, 2)
        dy, dx = rng.integers(-2, 3, 2)
        for t, frame in enumerate(clip):
            top, left = np.clip([y + t * dy, x + t * dx], 0, size - side)
            frame[top : top + side, left : left + side] = COLOURS[LABELS[label]]
    return clips, classes


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """`(model, path of its .keras file)`: the tiny model after a few epochs.

    Trained once per test run: under pytest-xdist the workers share a folder, the
    first one to ask trains and saves the model, and the others load its file.
    """
    shared = "PYTEST_XDIST_WORKER" in os.environ
    folder = tmp_path_factory.getbasetemp()
    folder = folder.parent if shared else tmp_path_factory.mktemp("trained")
    path = folder / "tiny_mvf.keras"
    with FileLock(f"{path}.lock"):
        if path.exists():
            return keras.saving.load_model(path), str(path)
        model = train_tiny_model()
        partial = folder / "tiny_mvf.partial.keras"  # renamed once whole: never read half-written
        model.save(partial)
        os.replace(partial, path)
    return model, str(path)


def train_tiny_model():
    """The tiny MVF MobileNetV2, fitted for 10 epochs on 192 clips."""
    keras.utils.set_random_seed(0)
    model = keras_mvf.MobileNetV2Video(
        num_classes=len(LABELS),
        num_frames=NUM_FRAMES,
        width_multiplier=0.35,
        input_shape=(SIZE, SIZE, 3),
        dropout=0.0,
        name="tiny_mvf",
    )
    # MobileNetV2's BatchNorm momentum 0.999 would leave the moving statistics
    # at their initial values after so few steps.
    for layer in model.layers:
        for bn in (layer, getattr(layer, "bn", None)):
            if isinstance(bn, keras.layers.BatchNormalization):
                bn.momentum = 0.8
    clips, classes = make_clips(192, seed=0)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", jit_compile=False)
    model.optimizer.build(model.trainable_variables)  # as `train()` does: one trace, not two
    model.fit(clips.astype("float32"), classes, batch_size=16, epochs=10, verbose=0)
    return model


@pytest.fixture(scope="session")
def test_clips():
    """Held-out clips `(uint8 clips, classes)` from the same distribution."""
    return make_clips(48, seed=1)


def keras_probabilities(model, clips):
    return keras.ops.convert_to_numpy(model(clips.astype("float32"), training=False))
