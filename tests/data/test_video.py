import os

import av
import cv2
import numpy as np
import pytest

from keras_mvf.data import (
    VideoError,
    dense_indices,
    probe,
    read_all_frames,
    read_frames,
    read_image_frames,
    video,
    write_video,
)
from tests.data.conftest import make_frames, write_frame_folder

CONTAINERS = ["mp4", "avi", "webm", "mkv", "h264.mp4", "h264.mkv", "vp9.webm"]


@pytest.mark.parametrize("decoder", ["pyav", "opencv"])
@pytest.mark.parametrize("container", CONTAINERS)
def test_read_frames_matches_sequential_decode(videos, container, decoder):
    _, paths = videos
    full = read_all_frames(paths[container])
    assert full.shape == (40, 48, 64, 3) and full.dtype == np.uint8
    indices = [39, 0, 17, 17, 5, 38, 1, 20, 29, 30, 10, 9]  # keyframes and their neighbours
    np.testing.assert_array_equal(read_frames(paths[container], indices, decoder), full[indices])
    for index in (0, 12, 39):
        np.testing.assert_array_equal(
            read_frames(paths[container], [index], decoder)[0], full[index]
        )
    # The decoded frames are the written ones up to lossy compression.
    assert np.abs(full.astype(int) - make_frames(40).astype(int)).mean() < 12


@pytest.mark.parametrize("container", CONTAINERS)
def test_pyav_seeks_to_keyframes_and_checks_timestamps(videos, container):
    """The seeking path itself (not its fallback from frame 0) gives the sequential frames."""
    _, paths = videos
    path = paths[container]
    full = read_all_frames(path)
    with av.open(path) as file:
        timestamps, keys = video._timeline(file, video._video_stream(file, path))
    assert len(timestamps) == 40 and len(keys) >= 4
    with av.open(path) as file:  # stops demuxing once the first 15 are known
        first, _ = video._timeline(file, video._video_stream(file, path), 15)
    assert 15 <= len(first) < 40 and first[:15] == timestamps[:15]
    with av.open(path) as file:
        unwanted = {
            frame.pts
            for frame in video._decode_skipping(file, video._video_stream(file, path), kept=set())
        }
    non_reference = [i for i, pts in enumerate(timestamps) if pts not in unwanted]
    # H.264's non-reference B-frames are skipped unless wanted; MPEG-4 here has none
    # (VP9 may have either).
    assert bool(non_reference) == container.startswith("h264") or container == "vp9.webm"
    wanted = sorted({2, 13, 14, 25, 33, 39, *non_reference[:3]})
    with av.open(path) as file:
        decoded = video._read_seeking(file, video._video_stream(file, path), wanted, path)
    assert decoded is not None
    np.testing.assert_array_equal(np.stack([decoded[i] for i in wanted]), full[wanted])


@pytest.mark.parametrize("container", ["avi", "mp4", "mkv"])
def test_mpeg4_with_b_frames(tmp_path, container):
    """Xvid-style MPEG-4 with B-frames (as in UCF-101 / HMDB-51 AVIs): seeks stay exact."""
    path = str(tmp_path / f"b.{container}")
    with av.open(path, "w") as file:
        stream = file.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.gop_size, stream.codec_context.max_b_frames = 10, 2
        for frame in make_frames(40):
            file.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        file.mux(stream.encode())
    full = read_all_frames(path)
    wanted = [1, 2, 14, 25, 38]
    with av.open(path) as file:
        decoded = video._read_seeking(file, video._video_stream(file, path), wanted, path)
    assert decoded is not None
    np.testing.assert_array_equal(np.stack([decoded[i] for i in wanted]), full[wanted])
    np.testing.assert_array_equal(read_frames(path, [39, 0, 21], "pyav"), full[[39, 0, 21]])


def test_variable_frame_rate(tmp_path):
    """Frame numbers follow the decode order whatever the gaps; fps is the average rate."""
    frames = make_frames(40)
    gaps = np.random.default_rng(0).choice([0.02, 0.04, 0.1], 39)
    timestamps = np.concatenate([[0.0], np.cumsum(gaps)])
    average = 39 / timestamps[-1]
    for name, fourcc in (("vfr.mp4", "avc1"), ("vfr.mkv", "mp4v")):
        path = write_video(
            str(tmp_path / name), frames, fourcc=fourcc, timestamps=timestamps, keyframe_interval=8
        )
        info = probe(path, exact=True)
        assert info.num_frames == 40 and info.fps == pytest.approx(average, rel=1e-3)
        full = read_all_frames(path)
        assert len(full) == 40
        assert np.abs(full.astype(int) - frames.astype(int)).mean(axis=(1, 2, 3)).max() < 12
        indices = dense_indices(info.num_frames, 8, 4, True, 1, np.random.default_rng(1))[0]
        for decoder in ("pyav", "opencv"):
            np.testing.assert_array_equal(read_frames(path, indices, decoder), full[indices])
    assert probe(str(tmp_path / "vfr.mp4")).fps == pytest.approx(average, rel=0.05)


@pytest.mark.parametrize("container", CONTAINERS)
def test_probe(videos, container):
    _, paths = videos
    info = probe(paths[container])
    assert (info.num_frames, info.fps, info.width, info.height) == (40, 25.0, 64, 48)
    assert probe(paths[container], exact=True).num_frames == 40


@pytest.mark.parametrize("decoder", ["pyav", "opencv"])
def test_bad_files_raise_clear_errors(videos, tmp_path, decoder):
    _, paths = videos
    with pytest.raises(VideoError, match="cannot open"):
        probe(paths["empty"])
    with pytest.raises(FileNotFoundError, match="not found"):
        read_frames(str(tmp_path / "nope.mp4"), [0], decoder)
    with pytest.raises(VideoError, match="ended after 40 frames"):
        read_frames(paths["mp4"], [40], decoder)
    with pytest.raises(OSError):
        read_frames(paths["truncated"], [39], decoder)
    with pytest.raises(VideoError):
        read_frames(paths["truncated_mp4"], [0], decoder)
    with pytest.raises(VideoError):
        read_frames(paths["empty"], [0], decoder)
    with pytest.raises(ValueError, match="Received: indices="):
        read_frames(paths["mp4"], [], decoder)
    with pytest.raises(ValueError, match="Received: decoder='ffmpeg'"):
        read_frames(paths["mp4"], [0], "ffmpeg")


@pytest.mark.parametrize("decoder", ["pyav", "opencv"])
def test_grayscale_video_reads_as_rgb(tmp_path, decoder):
    gray = make_frames(6)[..., 0]
    path = write_video(str(tmp_path / "gray.avi"), gray, fps=10)
    frames = read_frames(path, [0, 5], decoder)
    assert frames.shape == (2, 48, 64, 3)
    np.testing.assert_array_equal(frames[..., 0], frames[..., 1])
    assert np.abs(frames[..., 0].astype(int) - gray[[0, 5]].astype(int)).mean() < 12
    gray_h264 = write_video(str(tmp_path / "gray.mp4"), gray, fps=10, fourcc="avc1")
    np.testing.assert_array_equal(
        read_frames(gray_h264, [4], decoder)[0], read_all_frames(gray_h264)[4]
    )


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
    np.testing.assert_array_equal(
        read_image_frames(str(tmp_path / "odd"), [2], "{:d}.png"), frames[[2]]
    )


def test_frame_folders_rgb_rgba_gray_and_tiny(tmp_path):
    frames = make_frames(3)
    rgba = np.concatenate([frames, np.full((3, 48, 64, 1), 7, np.uint8)], axis=-1)
    write_frame_folder(str(tmp_path / "rgba"), rgba, template="frame{:03d}.png", start_index=0)
    np.testing.assert_array_equal(
        read_image_frames(str(tmp_path / "rgba"), [2, 0], "frame{:03d}.png", 0), frames[[2, 0]]
    )
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
    with pytest.raises(ValueError, match="one increasing time per frame"):
        write_video(
            str(tmp_path / "a.mp4"), np.zeros((2, 8, 8, 3), np.uint8), timestamps=[0.1, 0.1]
        )
    with pytest.raises(ValueError, match="Received: fourcc='MJPG'"):
        write_video(
            str(tmp_path / "a.avi"),
            np.zeros((2, 8, 8, 3), np.uint8),
            fourcc="MJPG",
            keyframe_interval=2,
        )
    assert not os.path.exists(tmp_path / "a.gif")


def test_large_frames_decode(tmp_path):
    frames = np.zeros((2, 3000, 4000, 3), np.uint8)
    frames[1] = cv2.resize(make_frames(1)[0], (4000, 3000))
    path = write_video(str(tmp_path / "big.avi"), frames, fps=30)
    assert probe(path)[2:] == (4000, 3000)
    assert read_frames(path, [1]).shape == (1, 3000, 4000, 3)
