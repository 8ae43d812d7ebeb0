"""`train()` under MirroredStrategy (two logical CPUs) and MultiWorkerMirroredStrategy (two
worker processes over 127.0.0.1) agrees with a single-device run, and so does `evaluate` under
MirroredStrategy."""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

WORKER = os.path.join(os.path.dirname(__file__), "strategy_worker.py")


def start_worker(out, *args, env=None):
    command = [sys.executable, WORKER, "--out", str(out), *args]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(process, timeout=300):
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    assert process.returncode == 0, output[-3000:]
    return output


def final_weights(folder):
    with np.load(os.path.join(folder, "final.npz")) as arrays:
        return {key: arrays[key] for key in arrays.files}


def assert_same_training(ours, reference):
    assert ours.keys() == reference.keys()
    for key in reference:
        np.testing.assert_allclose(ours[key], reference[key], rtol=1e-4, atol=1e-5, err_msg=key)


def free_ports(count):
    """Ports that were free a moment ago (held together, so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@pytest.fixture(scope="module")
def single_device(tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    finish(start_worker(out))
    weights = final_weights(out)
    assert np.isfinite(weights["loss"]).all()
    return weights


def test_mirrored_two_cpus_matches_single_device(tmp_path, single_device):
    """Training, and evaluating the trained model (evaluate and keras-mvf evaluate)."""
    finish(start_worker(tmp_path, "--strategy", "mirrored", "--cpus", "2"))
    assert_same_training(final_weights(tmp_path), single_device)
    assert (tmp_path / "model.keras").exists()
    with np.load(tmp_path / "scores.npz") as scores:
        assert scores["one"].shape == (5, 3)
        np.testing.assert_allclose(scores["mirrored"], scores["one"], rtol=1e-5, atol=1e-6)
    with open(tmp_path / "evaluation.json") as file:
        results = json.load(file)
    assert results["mirrored"] == results["one"] and results["one"]["views"] == 6
    summary = ("top1", "top5", "mean_class_accuracy", "num_videos", "views")
    assert results["command"] == {key: results["one"][key] for key in summary}


def test_multi_worker_two_processes_match_single_device(tmp_path, single_device):
    """Each worker gets half of every global batch; the chief alone writes to the run folder."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = [
        start_worker(
            tmp_path,
            "--strategy",
            "multi_worker",
            env={
                "TF_CONFIG": json.dumps(
                    {"cluster": cluster, "task": {"type": "worker", "index": i}}
                )
            },
        )
        for i in range(2)
    ]
    # A worker that fails leaves the other waiting in a collective: stop it too.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and any(w.poll() is None for w in workers):
        if any(w.returncode for w in workers):
            break
        time.sleep(0.5)
    for worker in workers:
        if worker.poll() is None:
            worker.kill()
    outputs = [worker.communicate()[0][-3000:] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], "\n".join(outputs)
    chief, other = final_weights(tmp_path), final_weights(tmp_path / "workers" / "worker_1")
    # Weights, and epoch losses of the whole global batch (not of a worker's half).
    assert_same_training(chief, single_device)
    assert_same_training(other, single_device)
    with open(tmp_path / "log.csv") as log:
        assert len(log.readlines()) == 1 + 2  # header and the two epochs
    assert (tmp_path / "model.keras").exists()
    assert sorted(os.listdir(tmp_path / "workers" / "worker_1")) == ["backup", "final.npz"]
