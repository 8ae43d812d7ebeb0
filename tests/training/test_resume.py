"""`keras-mvf train` killed with SIGKILL mid-epoch resumes from its last finished epoch."""

import csv
import os
import signal
import subprocess
import sys
import time

import pytest

from keras_mvf.training import train
from keras_mvf.training.synthetic import write_synthetic_videos
from keras_mvf.training.train import _callbacks, read_backup
from tests.training.tiny import TINY_SETTINGS, tiny_batches, tiny_resnet

EPOCHS = 4


def epochs_logged(out):
    path = os.path.join(out, "log.csv")
    if not os.path.exists(path):
        return []
    with open(path, newline="") as file:
        return [int(row["epoch"]) for row in csv.DictReader(file)]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume(tmp_path):
    manifest = write_synthetic_videos(str(tmp_path / "data"), "train", 4, num_frames=8, size=32)
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "keras_mvf",
        "train",
        "--train",
        manifest,
        "--model",
        "c2d_mobilenetv2",
        "--recipe",
        "sthv2",
        "--out",
        str(out),
        "--frames",
        "4",
        "--crop-size",
        "32",
        "--short-side",
        "32",
        "--batch-size",
        "2",
        "--epochs",
        str(EPOCHS),
        "--base-lr",
        "0.001",
        "--seed",
        "0",
        "--no-tensorboard",
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    first = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.time() + 240
    while len(epochs_logged(out)) < 2 and first.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # into the third epoch (20 steps)
    first.send_signal(signal.SIGKILL)
    output, _ = first.communicate()
    assert first.returncode == -signal.SIGKILL, output[-2000:]
    done_before_kill = epochs_logged(out)
    assert 2 <= len(done_before_kill) < EPOCHS, output[-2000:]
    # The backup marks as done the epochs logged, and holds their weights; an epoch's log row
    # is written just before its backup commits, so a kill in between leaves one row more
    # (trimmed on resume, checked below).
    epoch, weights = read_backup(os.path.join(out, "backup"))
    assert epoch in (len(done_before_kill), len(done_before_kill) - 1), (epoch, done_before_kill)
    assert os.path.exists(weights)

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    # Every planned epoch exactly once: none lost, none repeated.
    assert epochs_logged(out) == list(range(EPOCHS))
    # The second run started where the first one stopped.
    assert f"Epoch {epoch + 1}/{EPOCHS}" in second.stdout
    assert "Epoch 1/" not in second.stdout
    for name in ("model.keras", "best.weights.h5", "last.weights.h5"):
        assert (out / name).exists(), name


def test_fresh_start_sets_an_earlier_runs_log_aside(tmp_path, capsys):
    """With no backup to resume, a log with rows is renamed, never over another file."""
    rows = "epoch,accuracy,loss\n0,0.5,1.0\n1,0.75,0.5\n"
    log = tmp_path / "log.csv"
    for _ in range(2):  # twice within a second: two distinct names
        log.write_text(rows)
        _callbacks(str(tmp_path), (0, None), False, False, True)
        assert not log.exists()
    kept = sorted(tmp_path.glob("log.*.csv"))
    assert len(kept) == 2 and all(path.read_text() == rows for path in kept)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(f"renamed to {tmp_path}{os.sep}log." in line for line in lines)
    # A log with a header only is no run's: kept where it is.
    log.write_text("epoch,accuracy,loss\n")
    _callbacks(str(tmp_path), (0, None), False, False, True)
    assert log.read_text() == "epoch,accuracy,loss\n" and len(list(tmp_path.glob("log.*.csv"))) == 2


def test_training_traces_its_step_once(tmp_path):
    """The optimizer is built before `fit`: had its first trace created the optimizer's
    variables, TensorFlow would trace the training step a second time."""
    traces = []

    def build(**kwargs):
        model = tiny_resnet("mvf", **kwargs)
        train_step = model.train_step

        def counted(data):  # Python runs only while TensorFlow traces
            traces.append(model.name)
            return train_step(data)

        model.train_step = counted
        return model

    settings = {**TINY_SETTINGS, "tensorboard": False, "verbose": 0}
    train(build, tiny_batches(), out_dir=str(tmp_path), epochs=1, **settings)
    assert len(traces) == 1, traces
