import os

import cv2
import numpy as np
import pytest

from keras_mvf.data import (
    VideoError,
    probe,
    read_all_frames,
    read_frames,
    read_image_frames,
    write_video,
)
from tests.data.conftest import make_frames, write_frame_folder


@pytest.mark.parametrize("container", ["mp4", "avi", "webm", "mkv"])
def test_read_frames_matches_sequential_decode(videos, container):
    _, paths = videos
    full = read_all_frames(paths[container])
    assert full.shape == (40, 48, 64, 3) and full.dtype == np.uint8
    indices = [39, 0, 17, 17, 5, 38, 1]
    np.testing.assert_array_equal(read_frames(paths[container], indices), full[indices])
    # The decoded frames are the written ones up to lossy compression.
    assert np.abs(full.astype(int) - make_frames(40).astype(int)).mean() < 12


def test_read_frames_is_independent_of_other_indices(videos):
    _, paths = videos
    for index in (0, 12, 39):
        np.testing.assert_array_equal(
            read_frames(paths["mp4"], [index])[0], read_frames(paths["mp4"], [3, index, 30])[1]
        )


@pytest.mark.parametrize("container", ["mp4", "avi", "webm", "mkv"])
def test_probe(videos, container):
    _, paths = videos
    info = probe(paths[container])
    assert (info.num_frames, info.fps, info.width, info.height) == (40, 25.0, 64, 48)
    assert probe(paths[container], exact=True).num_frames == 40


def test_bad_files_raise_clear_errors(videos, tmp_path):
    _, paths = videos
    with pytest.raises(VideoError, match="cannot open"):
        probe(paths["empty"])
    with pytest.raises(FileNotFoundError, match="not found"):
        read_frames(str(tmp_path / "nope.mp4"), [0])
    with pytest.raises(VideoError, match="ended after 40 frames"):
        read_frames(paths["mp4"], [40])
    with pytest.raises(OSError):
        read_frames(paths["truncated"], [39])
    with pytest.raises(VideoError):
        read_frames(paths["truncated_mp4"], [0])
    with pytest.raises(ValueError, match="Received: indices="):
        read_frames(paths["mp4"], [])


def test_grayscale_video_reads_as_rgb(tmp_path):
    gray = make_frames(6)[..., 0]
    path = write_video(str(tmp_path / "gray.avi"), gray, fps=10)
    frames = read_frames(path, [0, 5])
    assert frames.shape == (2, 48, 64, 3)
    np.testing.assert_array_equal(frames[..., 0], frames[..., 1])
    assert np.abs(frames[..., 0].astype(int) - gray[[0, 5]].astype(int)).mean() < 12


def test_lossless_video_is_read_exactly(tmp_path):
    frames = make_frames(30, 50, 8)
    path = write_video(str(tmp_path / "lossless.mkv"), frames, fps=7.5, fourcc="FFV1")
    info = probe(path)
    assert (info.height, info.width, info.num_frames, info.fps) == (50, 8, 30, 7.5)
    indices = [29, 3, 3, 11, 0]
    np.testing.assert_array_equal(read_frames(path, indices), frames[indices])


def test_odd_sizes_are_read_from_frame_folders(tmp_path):
    frames = make_frames(3, 17, 33)
    write_frame_folder(str(tmp_path / "odd"), frames, template="{:d}.png")
    np.testing.assert_array_equal(read_image_frames(str(tmp_path / "odd"), [2], "{:d}.png"),
                                  frames[[2]])


def test_frame_folders_rgb_rgba_gray_and_tiny(tmp_path):
    frames = make_frames(3)
    rgba = np.concatenate([frames, np.full((3, 48, 64, 1), 7, np.uint8)], axis=-1)
    write_frame_folder(str(tmp_path / "rgba"), rgba, template="frame{:03d}.png", start_index=0)
    np.testing.assert_array_equal(
        read_image_frames(str(tmp_path / "rgba"), [2, 0], "frame{:03d}.png", 0), frames[[2, 0]])
    write_frame_folder(str(tmp_path / "gray"), frames[..., 1], template="{:d}.png")
    gray = read_image_frames(str(tmp_path / "gray"), [1], "{:d}.png")
    np.testing.assert_array_equal(gray[0], np.repeat(frames[1, ..., 1:2], 3, axis=-1))
    write_frame_folder(str(tmp_path / "tiny"), np.full((2, 1, 1, 3), 200, np.uint8))
    assert read_image_frames(str(tmp_path / "tiny"), [1]).shape == (1, 1, 1, 3)
    with pytest.raises(VideoError, match="img_00003.jpg"):
        read_image_frames(str(tmp_path / "tiny"), [2])


def test_write_video_validates_arguments(tmp_path):
    with pytest.raises(ValueError, match="Received: frames with dtype=float64"):
        write_video(str(tmp_path / "a.mp4"), np.zeros((2, 8, 8, 3)))
    with pytest.raises(ValueError, match="must be even"):
        write_video(str(tmp_path / "a.mp4"), np.zeros((2, 17, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="Received: path="):
        write_video(str(tmp_path / "a.gif"), np.zeros((2, 8, 8, 3), np.uint8))
    assert not os.path.exists(tmp_path / "a.gif")


def test_large_frames_decode(tmp_path):
    frames = np.zeros((2, 3000, 4000, 3), np.uint8)
    frames[1] = cv2.resize(make_frames(1)[0], (4000, 3000))
    path = write_video(str(tmp_path / "big.avi"), frames, fps=30)
    assert probe(path)[2:] == (4000, 3000)
    assert read_frames(path, [1]).shape == (1, 3000, 4000, 3)
