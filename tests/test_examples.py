"""The example scripts run as a user would run them, on tiny real data."""

import glob
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_mvf.cli import main
from keras_mvf.data import write_video
from keras_mvf.export import load_predictor

# Each runs example scripts or the notebook in fresh processes.
pytestmark = pytest.mark.slow


def test_finetune_then_evaluate(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for channel, name in ((0, "red"), (2, "blue")):
        (tmp_path / "videos" / name).mkdir(parents=True)
        for i in range(5):
            frames = rng.integers(0, 60, (12, 48, 64, 3), dtype=np.uint8)
            frames[..., channel] += 150
            write_video(str(tmp_path / "videos" / name / f"v{i}.mp4"), frames, fps=10)
    run = tmp_path / "run"
    subprocess.run(
        [
            sys.executable,
            "examples/finetune_folder.py",
            str(tmp_path / "videos"),
            "--out",
            str(run),
            "--model",
            "mvfnet_mobilenetv2",
            "--frames",
            "4",
            "--size",
            "32",
            "--batch-size",
            "2",
            "--epochs",
            "1",
            "--backbone-weights",
            "none",
        ],
        check=True,
    )
    assert (run / "model.keras").exists()
    assert glob.glob(str(run / "tensorboard" / "**" / "events.out.tfevents.*"), recursive=True)
    # The header line, then one validation video per class.
    assert len((run / "val.jsonl").read_text().splitlines()) == 1 + 2

    result = subprocess.run(
        [
            sys.executable,
            "examples/evaluate_checkpoint.py",
            str(run / "model.keras"),
            str(run / "val.jsonl"),
            "--out",
            str(tmp_path / "eval"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    assert "fast: 1 view(s)" in result.stdout and "accurate: 30 view(s)" in result.stdout
    assert (tmp_path / "eval" / "accurate" / "predictions.csv").exists()

    # The class names travel with the trained model: `predict` and `export` find them.
    assert (run / "labels.txt").read_text() == "blue\nred\n"
    video = str(tmp_path / "videos" / "red" / "v0.mp4")
    assert main(["predict", video, "--model", str(run / "model.keras"), "--top-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == video and sorted(line.split()[1] for line in lines[1:3]) == ["blue", "red"]
    tflite = tmp_path / "model.tflite"
    assert (
        main(["export", str(run / "model.keras"), "--format", "tflite", "--output", str(tflite)])
        == 0
    )
    assert load_predictor(tflite).labels == ["blue", "red"]  # packed inside the file


def test_kinetics_example_shows_its_usage():
    # Training it needs Kinetics and the ImageNet download; here only that it loads and parses.
    result = subprocess.run(
        [sys.executable, "examples/train_kinetics_mirrored.py", "--help"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert "--batch-size" in result.stdout


def test_colab_notebook_runs_with_tiny_parameters(tmp_path, monkeypatch):
    """Runs the notebook's code cells in order, minus the pip install, with tiny parameters."""
    notebook = json.loads(Path("examples/colab_finetune.ipynb").read_text())
    cells = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    assert cells[0].lstrip("# \n").count("%pip install") == 1
    tiny = {
        "MODEL": "'mvfnet_mobilenetv2'",
        "BACKBONE_WEIGHTS": "None",
        "SIZE": "32",
        "FRAMES": "4",
        "VIDEOS_PER_CLASS": "2",
        "BATCH_SIZE": "4",
        "EPOCHS": "1",
        "DATA_DIR": repr(str(tmp_path / "data")),
    }
    parameters = "\n".join(f"{name} = {value}" for name, value in tiny.items())
    assigned = {line.split("=")[0].strip() for line in cells[1].splitlines() if "=" in line}
    assert set(tiny) <= assigned
    monkeypatch.chdir(tmp_path)
    source = "\n".join([parameters, *cells[2:]]).replace("/content/", f"{tmp_path}/")
    namespace = {}
    exec(compile(source, "colab_finetune.ipynb", "exec"), namespace)  # noqa: S102
    assert (tmp_path / "mvfnet_finetuned.keras").exists()
    assert len(namespace["history"].history["loss"]) == 1
