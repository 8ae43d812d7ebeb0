"""The same weights give the same outputs on the TensorFlow, JAX and PyTorch backends."""

import os
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = """
import sys
import numpy as np
import keras
import keras_mvf

folder, mode = sys.argv[1], sys.argv[2]
models = {
    "mvf": keras_mvf.ResNetVideo((1, 1, 1, 1), base_width=8, num_frames=4, num_classes=5,
                                 input_shape=(32, 32, 3), alpha=0.5, stages=(2, 3, 4, 5),
                                 learnable_view_weights=True),
    "tsm": keras_mvf.MobileNetV2Video(width_multiplier=0.35, num_frames=4, num_classes=5,
                                      input_shape=(32, 32, 3), temporal_module="tsm"),
}
x = np.load(folder + "/clips.npy")
for name, model in models.items():
    path = f"{folder}/{name}.weights.h5"
    if mode == "save":
        rng = np.random.default_rng(0)
        model.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype)
                           for w in model.get_weights()])
        model.save_weights(path)
    model.load_weights(path)
    y = model(x, training=False)
    np.save(f"{folder}/{name}_{keras.backend.backend()}.npy", keras.ops.convert_to_numpy(y))
"""


def run(backend, folder, mode):
    env = {**os.environ, "KERAS_BACKEND": backend}
    subprocess.run([sys.executable, "-c", SCRIPT, str(folder), mode], env=env, check=True)


@pytest.mark.large
def test_same_weights_same_outputs_on_every_backend(tmp_path):
    clips = np.random.default_rng(0).uniform(0, 255, (2, 4, 32, 32, 3)).astype("float32")
    np.save(tmp_path / "clips.npy", clips)
    run("tensorflow", tmp_path, "save")
    run("jax", tmp_path, "load")
    run("torch", tmp_path, "load")
    for name in ("mvf", "tsm"):
        reference = np.load(tmp_path / f"{name}_tensorflow.npy")
        assert reference.shape == (2, 5)
        for backend in ("jax", "torch"):
            np.testing.assert_allclose(
                np.load(tmp_path / f"{name}_{backend}.npy"),
                reference,
                atol=1e-5,
                err_msg=f"{name} on {backend}",
            )
