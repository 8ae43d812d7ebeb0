"""`keras-mvf data serve` as real processes, and `keras-mvf train --data-service` on them."""

import csv
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from keras_mvf import data
from keras_mvf.cli import main
from keras_mvf.training.synthetic import write_synthetic_videos

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
START_TIMEOUT = 90  # seconds for a server to import TensorFlow and listen


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve(log, *arguments):
    """Starts `keras-mvf data serve ...`, its output going to the file `log`."""
    with open(log, "w") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "keras_mvf", "data", "serve", *arguments],
            env=ENV,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def _wait_until_serving(process, log):
    """Waits for the line the server prints once it listens."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        if "tf.data service" in log.read_text():
            return
        time.sleep(0.2)
    raise AssertionError(f"{process.args[3:]} did not start: {log.read_text()[-2000:]}")


@pytest.fixture
def service(tmp_path):
    """`(address, [(process, log)])`: a dispatcher and two workers on 127.0.0.1, starting.

    Wait for each with `_wait_until_serving`. They are stopped afterwards.
    """
    port = _free_port()
    address = f"grpc://127.0.0.1:{port}"
    roles = {
        "dispatcher": ("--dispatcher", str(port)),
        **{f"worker{i}": ("--worker", address, "--host", "127.0.0.1") for i in range(2)},
    }
    servers = []
    try:
        for name, arguments in roles.items():
            log = tmp_path / f"{name}.log"
            servers.append((_serve(log, *arguments), log))
        yield address, servers
    finally:
        for process, _ in servers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _ in servers:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.mark.slow
def test_train_from_shards_decoded_by_a_served_dispatcher_and_two_workers(service, tmp_path):
    address, servers = service
    # Packs while the servers start.
    manifest = data.load_manifest(write_synthetic_videos(str(tmp_path), "train", 1, size=32))
    shards = str(tmp_path / "shards")
    data.pack_tfrecords(manifest, shards, num_shards=2, short_side=None)
    for process, log in servers:
        _wait_until_serving(process, log)
    out = tmp_path / "run"
    # The trainer runs in this process (the command's own code), to spare a TensorFlow start.
    arguments = [
        *("train", "--train", shards, "--data-service", address),
        *("--model", "c2d_mobilenetv2", "--recipe", "sthv2", "--out", str(out)),
        *("--frames", "4", "--crop-size", "32", "--short-side", "32", "--batch-size", "5"),
        *("--epochs", "1", "--seed", "0", "--no-tensorboard"),
    ]
    assert main(arguments) == 0
    with open(out / "log.csv", newline="") as file:
        assert [row["epoch"] for row in csv.DictReader(file)] == ["0"]
    assert (out / "model.keras").stat().st_size > 10_000
    assert (out / "labels.txt").read_text().splitlines() == manifest.classes
    assert all(process.poll() is None for process, _ in servers)  # still serving
