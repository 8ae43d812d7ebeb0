"""The demo's synthetic videos; the demo (`--quick`, as a real process) and the evaluate /
extract-features commands on the model it trained."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_mvf import data
from keras_mvf.cli import main
from keras_mvf.training.demo import NUM_FRAMES, VIDEO_FRAMES, pair_accuracy
from keras_mvf.training.synthetic import (
    CLASS_NAMES,
    CLASS_PAIRS,
    synthetic_clip,
    write_synthetic_videos,
)


@pytest.mark.parametrize("pair", range(len(CLASS_PAIRS)))
def test_second_class_of_a_pair_is_the_first_played_backwards(pair):
    forward = synthetic_clip(2 * pair, np.random.default_rng(pair), 12, 32)
    backward = synthetic_clip(2 * pair + 1, np.random.default_rng(pair), 12, 32)
    np.testing.assert_array_equal(backward, forward[::-1])
    assert np.abs(forward[0].astype(int) - forward[-1]).mean() > 1  # the clip does change


def test_demo_test_frames_are_the_same_set_in_a_clip_and_its_reversal():
    # So C2D, which sees an unordered set of frames, gets no hint of the direction.
    indices = data.uniform_indices(VIDEO_FRAMES, NUM_FRAMES, training=False)[0]
    assert sorted(VIDEO_FRAMES - 1 - indices) == sorted(indices)


def test_pair_accuracy_counts_either_class_of_the_pair():
    confusion = np.zeros((4, 4), int)
    confusion[0, 1] = 3  # reversed direction: right pair
    confusion[1, 1] = 1
    confusion[2, 0] = 4  # wrong pair
    assert pair_accuracy(confusion) == pytest.approx(0.5)


def _bright(clip):
    """Per-frame mask of the shape's bright stripes (the background stays darker)."""
    return clip.astype(np.float32).mean(axis=-1) > 130


@pytest.mark.parametrize("seed", range(3))
def test_classes_show_their_motion(seed):
    def clip(name):
        return _bright(synthetic_clip(CLASS_NAMES.index(name), np.random.default_rng(seed), 12, 64))

    def centroid(mask, axis):
        return np.nonzero(mask)[axis].mean()

    left, up = clip("moving left"), clip("moving up")
    assert centroid(left[-1], 1) < centroid(left[0], 1) - 20
    assert abs(centroid(left[-1], 0) - centroid(left[0], 0)) < 3
    assert centroid(up[-1], 0) < centroid(up[0], 0) - 20
    for name in ("approaching", "appearing"):
        areas = clip(name).sum(axis=(1, 2))
        assert areas[-1] > 2 * areas[0], (name, areas)
    areas = clip("rotating clockwise").sum(axis=(1, 2))
    assert areas.min() > 0.7 * areas.max()  # turning in place: no growth, no fading


def test_write_synthetic_videos_indexes_real_videos(tmp_path):
    manifest = data.load_manifest(
        write_synthetic_videos(str(tmp_path), "val", 1, num_frames=12, size=32, seed=3)
    )
    assert manifest.classes == list(CLASS_NAMES)
    assert [entry.label for entry in manifest.entries] == list(range(len(CLASS_NAMES)))
    rng = np.random.default_rng(3)
    for entry in manifest.entries:
        assert entry.num_frames == 12
        decoded = data.read_frames(str(tmp_path / entry.path), np.arange(12))
        written = synthetic_clip(entry.label, rng, 12, 32)
        assert np.abs(decoded.astype(np.float32) - written).mean() < 10  # MPEG-4 is lossy


def run_demo_quick(out):
    result = subprocess.run(
        [sys.executable, "-m", "keras_mvf", "demo", "--quick", "--out", str(out)],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


DEMO_FOLDERS = ("videos", "c2d", "mvfnet")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The quick demo, run in a folder that holds the folders of an earlier run."""
    out = tmp_path_factory.mktemp("demo")
    for folder in DEMO_FOLDERS:
        (out / folder).mkdir()
        (out / folder / "log.csv").write_text("epoch,loss\n0,2.3\n1,2.1\n")
    return out, run_demo_quick(out)


def test_demo_quick_prints_table_and_saves(demo):
    out, stdout = demo
    for line_start in ("C2D ", "MVFNet ", "chance "):
        assert any(line.startswith(line_start) for line in stdout.splitlines()), stdout
    assert "10.0%" in stdout  # chance with 10 classes
    assert "right pair" in stdout  # the table's column
    assert (out / "training_curves.png").stat().st_size > 1000
    assert (out / "mvfnet" / "model.keras").exists()
    predicted = stdout.split("Held-out video")[1].splitlines()[1:6]
    assert len(predicted) == 5 and all(
        line.split("%")[1].strip() in CLASS_NAMES for line in predicted
    )


def run_cli(capsys, *args):
    assert main(list(args)) == 0
    return capsys.readouterr().out


def test_evaluate_accurate_protocol_writes_reports(demo, tmp_path, capsys):
    out, _ = demo
    model = str(out / "mvfnet" / "model.keras")
    manifest = str(out / "videos" / "val.jsonl")
    stdout = run_cli(
        capsys,
        "evaluate",
        model,
        "--data",
        manifest,
        "--protocol",
        "accurate",
        "--clips",
        "2",
        "--sampling",
        "uniform",
        "--short-side",
        "32",
        "--out",
        str(tmp_path / "eval"),
    )
    assert "6 view(s)" in stdout
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    with open(tmp_path / "eval" / "predictions.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == metrics["num_videos"] == 20
    top1 = np.mean([int(row["correct"]) for row in rows])
    assert metrics["top1"] == pytest.approx(top1)
    assert (tmp_path / "eval" / "confusion.png").stat().st_size > 1000
    with open(tmp_path / "eval" / "per_class.csv", newline="") as file:
        assert len(list(csv.DictReader(file))) == len(CLASS_NAMES)


def test_extract_features(demo, tmp_path, capsys):
    out, _ = demo
    path = tmp_path / "features.npz"
    run_cli(
        capsys,
        "extract-features",
        str(out / "mvfnet" / "model.keras"),
        "--data",
        str(out / "videos" / "val.jsonl"),
        "--out",
        str(path),
        "--sampling",
        "uniform",
        "--short-side",
        "32",
    )
    with np.load(path) as arrays:
        assert arrays["features"].shape == (20, 2048 // 4)  # base width 16: 4 * 8 * 16
        assert arrays["features"].dtype == np.float32
        assert list(arrays["classes"]) == list(CLASS_NAMES)
        assert len(arrays["videos"]) == 20


def test_demo_replaces_the_folders_of_an_earlier_run(demo):
    out, stdout = demo
    for folder in DEMO_FOLDERS:
        assert f"Replacing {out / folder} from an earlier run" in stdout
    assert not (out / "videos" / "log.csv").exists()
    for folder in ("c2d", "mvfnet"):  # the earlier log, replaced: not resumed, not set aside
        with open(out / folder / "log.csv", newline="") as file:
            assert [row["epoch"] for row in csv.DictReader(file)] == ["0"]
        assert [name for name in os.listdir(out / folder) if "log" in name] == ["log.csv"]
