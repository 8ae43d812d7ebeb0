"""`keras-mvf weights` and `keras-mvf convert`, run as real subprocesses."""

import hashlib
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import torch

import keras_mvf
from keras_mvf import cli
from tests import torch_reference as ref


def _keras_mvf(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-m", "keras_mvf", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.mark.slow
def test_weights_lists_the_registry():
    result = _keras_mvf("weights")
    assert result.returncode == 0, result.stderr
    for name in keras_mvf.list_weights():
        assert f"\n{name}\n" in f"\n{result.stdout}"
    assert "R101_16x4.pth" in result.stdout and "78.4% top-1" in result.stdout
    assert "sha256: unknown" in result.stdout


@pytest.mark.slow
def test_convert_infers_the_architecture(tmp_path):
    blocks, frames = (1, 1, 2, 2), 4
    net = ref.randomize(ref.MVFNet(blocks, frames, num_classes=6, width=8), seed=3)
    checkpoint = tmp_path / f"R_tiny_{frames}x16.pth"
    torch.save({"meta": {}, "state_dict": net.state_dict()}, checkpoint)
    output = tmp_path / "tiny"

    result = _keras_mvf("convert", str(checkpoint), str(output))
    assert result.returncode == 0, result.stderr
    assert f"{frames} frames" in result.stdout  # frame count read from the file name
    # A preset directory: what to build, the weights, and where they come from.
    assert sorted(os.listdir(output)) == [
        "README.md",
        "config.json",
        "metadata.json",
        "model.weights.h5",
    ]
    metadata = json.loads((output / "metadata.json").read_text())
    assert metadata["sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert metadata["frames"] == frames and metadata["frame_interval"] == 16
    config = json.loads((output / "config.json").read_text())
    assert config["model"] == "mvfnet50"
    assert config["kwargs"]["block_counts"] == list(blocks)
    assert config["kwargs"]["num_classes"] == 6 and config["kwargs"]["num_frames"] == frames

    keras.utils.set_random_seed(0)
    model = keras_mvf.ResNetVideo(
        blocks,
        base_width=8,
        num_frames=frames,
        num_classes=6,
        input_shape=(48, 48, 3),
        weights=str(output),
        classifier_activation=None,
    )
    clips = np.random.default_rng(0).uniform(0, 255, (1, frames, 48, 48, 3)).astype("float32")
    with torch.no_grad():
        want = net(ref.normalise(clips)).numpy()
    got = np.asarray(model(clips, training=False))
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


def test_convert_errors(tmp_path, capsys):
    assert cli.main(["convert", str(tmp_path / "missing.pth"), str(tmp_path / "out")]) == 2
    assert "No such checkpoint file" in capsys.readouterr().err
    assert cli.main(["convert", "R50_8x8.pth", "out.weights.h5"]) == 2
    assert "a preset directory" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
