"""`train()` under MirroredStrategy over two logical CPUs agrees with a single-device run."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

WORKER = os.path.join(os.path.dirname(__file__), "strategy_worker.py")


def run_worker(out, *args, env=None, wait=True):
    command = [sys.executable, WORKER, "--out", str(out), *args]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    return finish(process) if wait else process


def finish(process):
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]
    return output


def final_weights(out):
    with np.load(os.path.join(out, "final.npz")) as arrays:
        return {key: arrays[key] for key in arrays.files}


def assert_same_training(ours, reference):
    assert ours.keys() == reference.keys()
    for key in reference:
        np.testing.assert_allclose(ours[key], reference[key], rtol=1e-4, atol=1e-5, err_msg=key)


@pytest.fixture(scope="module")
def single_device(tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    run_worker(out)
    weights = final_weights(out)
    # Training moved the weights: the comparisons below are not between two inits.
    assert np.isfinite(weights["loss"]).all()
    return weights


def test_mirrored_two_cpus_matches_single_device(tmp_path, single_device):
    run_worker(tmp_path, "--strategy", "mirrored", "--cpus", "2")
    assert_same_training(final_weights(tmp_path), single_device)
    assert (tmp_path / "model.keras").exists()


def test_multi_worker_is_refused_with_the_reason(tmp_path):
    """Keras 3 `fit` cannot reduce multi-worker values (keras-team/keras#20585)."""
    config = {"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}}
    process = run_worker(tmp_path, "--strategy", "multi_worker",
                         env={"TF_CONFIG": json.dumps(config)}, wait=False)
    output, _ = process.communicate(timeout=300)
    assert process.returncode != 0
    assert "keras-team/keras#20585" in output
