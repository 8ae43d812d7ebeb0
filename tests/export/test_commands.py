"""`keras-mvf export` and `keras-mvf predict` on real video files."""

import json
import os
import subprocess
import sys
import zipfile

import cv2
import numpy as np
import pytest

from keras_mvf.cli import main
from keras_mvf.data import VideoEntry, write_manifest, write_video
from tests.export.conftest import COLOURS, LABELS, SIZE, make_clips

KERAS_MVF = os.path.join(os.path.dirname(sys.executable), "keras-mvf")
# The tiny model has only seen clips at their own size: test videos are centre-cropped
# without the usual 256/224 rescale, which it was never trained to withstand.
AS_TRAINED = ["--short-side", str(SIZE)]


def colour_video(path, colours, frames_each=16):
    """A real video: `frames_each` frames of a centred square per colour, on dark noise."""
    rng = np.random.default_rng(4)
    frames = rng.integers(0, 40, (frames_each * len(colours), SIZE, SIZE, 3)).astype(np.uint8)
    for i, colour in enumerate(colours):
        frames[i * frames_each : (i + 1) * frames_each, 8:24, 8:24] = COLOURS[colour]
    write_video(str(path), frames, fps=8.0)
    return str(path)


@pytest.fixture(scope="module")
def files(trained, tmp_path_factory):
    """Videos, a labels file and the trained model in all three formats (via the CLI)."""
    _, keras_path = trained
    directory = tmp_path_factory.mktemp("predict")
    labels = directory / "labels.txt"
    labels.write_text("".join(f"{label}\n" for label in LABELS))
    saved_model = directory / "serving"
    tflite = directory / "tiny.tflite"
    assert (
        main(
            [
                "export",
                keras_path,
                "--format",
                "saved_model",
                "--output",
                str(saved_model),
                "--labels",
                str(labels),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "export",
                keras_path,
                "--format",
                "tflite",
                "--output",
                str(tflite),
                "--labels",
                str(labels),
                "--uint8-input",  # predict feeds it uint8 clips; float32 is tested in test_tflite
            ]
        )
        == 0
    )
    assert zipfile.ZipFile(tflite).read("labels.txt").decode() == labels.read_text()
    (frames,) = json.loads(zipfile.ZipFile(tflite).read("model.json"))["signatures"][
        "serving_default"
    ]["inputs"].values()
    assert frames["dtype"] == "uint8"
    return {
        "labels": str(labels),
        "models": {"keras": keras_path, "saved_model": str(saved_model), "tflite": str(tflite)},
        "red": colour_video(directory / "red.mp4", ["red"]),
        "blue": colour_video(directory / "blue.avi", ["blue"]),
        "red_then_blue": colour_video(directory / "red_then_blue.mp4", ["red", "blue"]),
        "directory": directory,
    }


@pytest.mark.parametrize("format", ["keras", "saved_model", "tflite"])
def test_predict_each_format(format, files, capsys):
    extra = ["--labels", files["labels"]] if format == "keras" else []
    code = main(
        [
            "predict",
            files["red"],
            files["blue"],
            "--model",
            files["models"][format],
            "--top-k",
            "2",
            "--clips",
            "2",
            "--frame-interval",
            "2",
            *AS_TRAINED,
            *extra,
        ]
    )
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == files["red"] and lines[3] == files["blue"]
    assert lines[1].split()[1] == "red" and lines[4].split()[1] == "blue"
    probabilities = [float(lines[i].split()[0]) for i in (1, 2, 4, 5)]
    assert probabilities[0] >= probabilities[1] and probabilities[2] >= probabilities[3]


def test_predict_json_reports_unreadable_videos_and_goes_on(files, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(np.random.default_rng(0).bytes(2048))
    missing = tmp_path / "missing.mp4"
    run = subprocess.run(
        [
            KERAS_MVF,
            "predict",
            str(broken),
            files["red"],
            str(missing),
            "--model",
            files["models"]["tflite"],
            "--json",
            "--frame-interval",
            "2",
            *AS_TRAINED,
        ],
        capture_output=True,
        text=True,
        # The command line's own quiet default, as a user gets it.
        env={key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"},
    )
    assert run.returncode == 1
    results = json.loads(run.stdout)
    assert [r["video"] for r in results] == [str(broken), files["red"], str(missing)]
    assert "error" in results[0] and "not found" in results[2]["error"]
    assert results[1]["predictions"][0]["label"] == "red"
    assert len(results[1]["predictions"]) == 4  # --top-k 5, capped by the 4 classes
    # One line per unreadable video, and nothing else (no LiteRT start-up line).
    errors = run.stderr.splitlines()
    assert len(errors) == 2, run.stderr
    assert errors[0].startswith(f"keras-mvf predict: {broken}:"), run.stderr
    assert errors[1].startswith(f"keras-mvf predict: {missing}:"), run.stderr


def test_sliding_window_follows_the_video(files, capsys):
    code = main(
        [
            "predict",
            files["red_then_blue"],
            "--model",
            files["models"]["tflite"],
            "--sliding-window",
            "--frame-interval",
            "2",
            "--window-stride",
            "8",
            "--json",
            *AS_TRAINED,
        ]
    )
    assert code == 0
    windows = json.loads(capsys.readouterr().out)[0]["windows"]
    # 32 frames at 8 fps; windows of 7 frames start every 8 frames.
    assert [w["start_s"] for w in windows] == [0.0, 1.0, 2.0, 3.0]
    assert windows[0]["end_s"] == pytest.approx(7 / 8)
    tops = [w["predictions"][0]["label"] for w in windows]
    assert tops[:2] == ["red", "red"] and tops[2:] == ["blue", "blue"]


def test_export_int8_calibrates_on_a_manifest(files, trained, tmp_path, capsys):
    """Calibration reads videos and frame folders alike (half of each here)."""
    clips, classes = make_clips(8, seed=5)
    entries = []
    for i, (clip, label) in enumerate(zip(clips, classes, strict=True)):
        frames = np.repeat(clip, 2, axis=0)
        if i % 2:
            write_video(str(tmp_path / f"{i}.avi"), frames, fps=8.0)
            entries.append(VideoEntry(f"{i}.avi", 8, 8.0, int(label)))
        else:
            (tmp_path / str(i)).mkdir()
            for j, frame in enumerate(frames):
                cv2.imwrite(str(tmp_path / str(i) / f"img_{j + 1:05d}.jpg"), frame[..., ::-1])
            entries.append(
                VideoEntry(str(i), 8, 0.0, int(label), kind="frames", template="img_{:05d}.jpg")
            )
    manifest = write_manifest(str(tmp_path / "manifest.jsonl"), entries, LABELS, str(tmp_path))
    output = tmp_path / "int8.tflite"
    assert (
        main(
            [
                "export",
                trained[1],
                "--format",
                "tflite",
                "--output",
                str(output),
                "--quantization",
                "int8",
                "--calibration-manifest",
                manifest,
                "--frame-interval",
                "1",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "predict",
                files["red"],
                "--model",
                str(output),
                "--json",
                "--labels",
                files["labels"],
                "--frame-interval",
                "2",
                *AS_TRAINED,
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)[0]["predictions"][0]["label"] == "red"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--format", "saved_model", "--quantization", "int8"], "apply to --format tflite"),
        (["--format", "tflite", "--quantization", "int8"], "needs --calibration-manifest"),
    ],
)
def test_export_rejects_inconsistent_flags(argv, message, trained, tmp_path, capsys):
    assert main(["export", trained[1], "--output", str(tmp_path / "m.tflite"), *argv]) == 2
    assert message in capsys.readouterr().err


def test_predict_rejects_unknown_model_format(files, capsys):
    assert main(["predict", files["red"], "--model", files["labels"]]) == 2
    assert (
        "Expected a .keras file, a preset directory or release name, a SavedModel directory or "
        "a .tflite file" in capsys.readouterr().err
    )


def predict_json(argv, capsys):
    assert main(["predict", *argv, "--json", *AS_TRAINED]) == 0
    return json.loads(capsys.readouterr().out)[0]


@pytest.mark.parametrize("format", ["keras", "tflite"])
def test_stream_gives_the_sliding_windows(format, files, capsys):
    """--stream (per-frame layers once for .keras, whole windows for this .tflite) = windows."""
    argv = [files["red_then_blue"], "--model", files["models"][format], "--frame-interval", "2"]
    argv += ["--window-stride", "8", "--labels", files["labels"]]
    streamed = predict_json([*argv, "--stream"], capsys)["windows"]
    expected = predict_json([*argv, "--sliding-window"], capsys)["windows"]
    assert [w["start_s"] for w in streamed] == [0.0, 1.0, 2.0, 3.0]
    for stream_window, window in zip(streamed, expected, strict=True):
        assert stream_window["last_frame"] == window["last_frame"]
        assert stream_window["end_s"] == window["end_s"]
        for got, want in zip(stream_window["predictions"], window["predictions"], strict=True):
            assert got["label"] == want["label"]
            assert got["probability"] == pytest.approx(want["probability"], rel=1e-4, abs=1e-6)


def test_stream_predicts_at_every_sampled_frame_by_default(files, capsys):
    argv = [files["red_then_blue"], "--model", files["models"]["tflite"], "--stream"]
    windows = predict_json([*argv, "--frame-interval", "2"], capsys)["windows"]
    # 32 frames, every 2nd sampled: windows of 4 end at frames 6, 8, ..., 30.
    assert [w["last_frame"] for w in windows] == list(range(6, 32, 2))
    assert [w["start_s"] for w in windows] == [i / 8 for i in range(0, 26, 2)]
    assert main(["predict", *argv, "--frame-interval", "2", "--window-stride", "3"]) == 2
    assert "window stride must be a multiple of the frame interval" in capsys.readouterr().err


@pytest.mark.parametrize(
    "format, mode", [("keras", "--stream"), ("saved_model", "--sliding-window"), ("tflite", None)]
)
def test_overlay_writes_every_frame_with_the_labels(format, mode, files, tmp_path, capsys):
    output = tmp_path / "overlay.mp4"
    argv = [files["red_then_blue"], "--model", files["models"][format], "--frame-interval", "2"]
    argv += [*([mode] if mode else []), "--overlay", str(output), *AS_TRAINED, "--top-k", "2"]
    assert main(["predict", *argv]) == 0
    assert f"Wrote {output} (32 frames)" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["overlay.mp4"]  # written under a temporary name, renamed
    capture = cv2.VideoCapture(str(output))
    frames = []
    while (frame := capture.read()[1]) is not None:
        frames.append(frame)
    assert len(frames) == 32 and frames[0].shape == (SIZE, SIZE, 3)
    # White text on the top rows, where the video has only dark noise: from the first
    # frame for a whole-video prediction, from the end of the first window (frame 6) else.
    text_rows = [frame[:8].max() > 150 for frame in frames]
    assert text_rows == [True] * 32 if mode is None else [False] * 6 + [True] * 26


def test_overlay_takes_one_video_and_a_video_extension(files, tmp_path, capsys):
    model = ["--model", files["models"]["keras"]]
    assert main(["predict", files["red"], files["blue"], *model, "--overlay", "o.mp4"]) == 2
    assert "--overlay takes one video. Received: 2 videos" in capsys.readouterr().err
    assert main(["predict", files["red"], *model, "--overlay", str(tmp_path / "o.gif")]) == 2
    assert "must end in one of .avi, .m4v, .mkv, .mov, .mp4, .webm" in capsys.readouterr().err
