"""Small real videos and frame folders written with OpenCV for the data tests."""

import os

import cv2
import numpy as np
import pytest

from keras_mvf.data import index_annotations, parse_list_file, write_manifest, write_video


def make_frames(num_frames, height=48, width=64, seed=0):
    """Frames whose content changes every frame (a moving gradient plus the frame number)."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (width * 2, height * 2))
    frames = np.stack(
        [
            base[i % height : i % height + height, i % width : i % width + width]
            for i in range(num_frames)
        ]
    )
    frames[:, :8, :8] = (np.arange(num_frames) * 5 % 256).astype(np.uint8)[:, None, None, None]
    return frames


def write_frame_folder(directory, frames, template="img_{:05d}.jpg", start_index=1):
    """Writes RGB(A) or gray frames as image files, the way frame extraction does."""
    os.makedirs(directory, exist_ok=True)
    for i, frame in enumerate(frames):
        if frame.ndim == 3 and frame.shape[-1] == 3:
            frame = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        elif frame.ndim == 3 and frame.shape[-1] == 4:
            frame = cv2.cvtColor(frame, cv2.COLOR_RGBA2BGRA)
        cv2.imwrite(os.path.join(directory, template.format(i + start_index)), frame)
    return directory


@pytest.fixture(scope="session")
def videos(tmp_path_factory):
    """One 40-frame video per container, H.264 and VP9, a truncated and a zero-byte file.

    The H.264 (libx264 through PyAV, with B-frames) and VP9 files have a
    keyframe every 10 frames, so reads seek; OpenCV's MPEG-4 has one every 12.
    """
    root = tmp_path_factory.mktemp("videos")
    frames = make_frames(40)
    paths = {
        ext: write_video(str(root / f"clip.{ext}"), frames, fps=25)
        for ext in ("mp4", "avi", "webm", "mkv")
    }
    for ext in ("mp4", "mkv"):
        paths[f"h264.{ext}"] = write_video(
            str(root / f"h264.{ext}"), frames, fps=25, fourcc="avc1", keyframe_interval=10
        )
    paths["vp9.webm"] = write_video(
        str(root / "vp9.webm"), frames, fps=25, fourcc="VP90", keyframe_interval=10
    )
    with open(paths["avi"], "rb") as file:
        data = file.read()
    paths["truncated"] = str(root / "truncated.avi")
    with open(paths["truncated"], "wb") as file:
        file.write(data[: len(data) // 2])
    paths["truncated_mp4"] = str(root / "truncated.mp4")
    with open(paths["mp4"], "rb") as file, open(paths["truncated_mp4"], "wb") as out:
        out.write(file.read()[:4000])
    paths["empty"] = str(root / "empty.mp4")
    open(paths["empty"], "wb").close()
    return root, paths


SMALL = {"num_frames": 4, "frame_interval": 2, "crop_size": 32, "short_side": 36}


@pytest.fixture(scope="session")
def manifest_path(tmp_path_factory):
    """Six videos (labels 0..5: mp4, avi, webm, mkv, a frame folder, a short one)."""
    root = tmp_path_factory.mktemp("clips")
    lines = []
    for label, ext in enumerate(("mp4", "avi", "webm", "mkv")):
        write_video(str(root / f"v{label}.{ext}"), make_frames(24, 36, 48, seed=label), 30)
        lines.append(f"v{label}.{ext} {label}")
    write_frame_folder(str(root / "folder"), make_frames(10, 36, 48, seed=4))
    lines.append("folder 10 4")
    write_video(str(root / "short.avi"), make_frames(3, 36, 48, seed=5), 30)
    lines.append("short.avi 5")
    listing = root / "list.txt"
    listing.write_text("\n".join(lines) + "\n")
    annotations, classes = parse_list_file(str(listing))
    entries, problems = index_annotations(annotations, str(root))
    assert problems == []
    return write_manifest(str(root / "manifest.jsonl"), entries, classes, str(root))


def collect(dataset):
    clips, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset], strict=True)
    return np.concatenate(clips), np.concatenate(labels)
