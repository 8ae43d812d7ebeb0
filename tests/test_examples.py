"""The example scripts run as a user would run them, on tiny real data."""

import glob
import subprocess
import sys

import numpy as np

from keras_mvf.data import write_video


def test_finetune_then_evaluate(tmp_path):
    rng = np.random.default_rng(0)
    for channel, name in ((0, "red"), (2, "blue")):
        (tmp_path / "videos" / name).mkdir(parents=True)
        for i in range(5):
            frames = rng.integers(0, 60, (12, 48, 64, 3), dtype=np.uint8)
            frames[..., channel] += 150
            write_video(str(tmp_path / "videos" / name / f"v{i}.mp4"), frames, fps=10)
    run = tmp_path / "run"
    subprocess.run(
        [sys.executable, "examples/finetune_folder.py", str(tmp_path / "videos"),
         "--out", str(run), "--model", "mvfnet_mobilenetv2", "--frames", "4", "--size", "32",
         "--batch-size", "2", "--epochs", "1", "--backbone-weights", "none"],
        check=True,
    )
    assert (run / "model.keras").exists()
    assert glob.glob(str(run / "tensorboard" / "**" / "events.out.tfevents.*"), recursive=True)
    # The header line, then one validation video per class.
    assert len((run / "val.jsonl").read_text().splitlines()) == 1 + 2

    result = subprocess.run(
        [sys.executable, "examples/evaluate_checkpoint.py", str(run / "model.keras"),
         str(run / "val.jsonl"), "--out", str(tmp_path / "eval")],
        check=True, capture_output=True, text=True,
    )
    assert "fast: 1 view(s)" in result.stdout and "accurate: 30 view(s)" in result.stdout
    assert (tmp_path / "eval" / "accurate" / "predictions.csv").exists()


def test_kinetics_example_shows_its_usage():
    # Training it needs Kinetics and the ImageNet download; here only that it loads and parses.
    result = subprocess.run(
        [sys.executable, "examples/train_kinetics_mirrored.py", "--help"],
        check=True, capture_output=True, text=True,
    )
    assert "MirroredStrategy" not in result.stderr and "--batch-size" in result.stdout
