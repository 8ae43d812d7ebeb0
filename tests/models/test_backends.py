"""The same weights give the same outputs on the TensorFlow, JAX and PyTorch backends."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.models import backend_outputs

OTHER_BACKENDS = ("jax", "torch")
FAST_XLA_COMPILE = "--xla_backend_optimization_level=0"


@pytest.mark.large
def test_same_weights_same_outputs_on_every_backend(tmp_path):
    clips = np.random.default_rng(0).uniform(0, 255, (2, 4, 32, 32, 3)).astype("float32")
    np.save(tmp_path / "clips.npy", clips)
    backend_outputs.save_weights(tmp_path)
    # The other backends each need a fresh process; they load side by side.
    loads = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.models.backend_outputs", str(tmp_path)],
            # JAX compiles every initializer of a new weight shape; unoptimised, in a third of
            # the time, and to the same outputs within the tolerance.
            env={**os.environ, "KERAS_BACKEND": backend, "XLA_FLAGS": FAST_XLA_COMPILE},
        )
        for backend in OTHER_BACKENDS
    ]
    backend_outputs.save_outputs(tmp_path)
    assert [load.wait(timeout=300) for load in loads] == [0, 0]
    for name in ("mvf", "tsm"):
        reference = np.load(tmp_path / f"{name}_tensorflow.npy")
        assert reference.shape == (2, 5)
        for backend in OTHER_BACKENDS:
            np.testing.assert_allclose(
                np.load(tmp_path / f"{name}_{backend}.npy"),
                reference,
                atol=1e-5,
                err_msg=f"{name} on {backend}",
            )
