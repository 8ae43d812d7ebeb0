"""Small real videos and frame folders written with OpenCV for the data tests."""

import os

import cv2
import numpy as np
import pytest

from keras_mvf.data import write_video


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
