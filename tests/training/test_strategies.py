"""`train()` under MirroredStrategy (two logical CPUs) and MultiWorkerMirroredStrategy (two
local worker processes over 127.0.0.1) agrees with a single-device run."""

import json
import os
import socket
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


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_matches_single_device(tmp_path, single_device):
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(run_worker(
            tmp_path / f"worker{index}", "--strategy", "multi_worker",
            env={"TF_CONFIG": json.dumps(config)}, wait=False,
        ))
    for process in processes:
        finish(process)
    for index in range(2):
        assert_same_training(final_weights(tmp_path / f"worker{index}"), single_device)
    # The chief writes into the run folder, the other worker into a private one.
    assert (tmp_path / "worker0" / "log.csv").exists()
    assert (tmp_path / "worker1" / "workers" / "worker_1" / "log.csv").exists()
