"""Live classification of video files: windows from a stream, and videos with the labels drawn."""

import os

import cv2

from keras_mvf.data.transforms import transform_clips
from keras_mvf.data.video import _FOURCC_BY_EXTENSION, _open, probe, to_rgb
from keras_mvf.utils import files

OVERLAY_EXTENSIONS = tuple(sorted(_FOURCC_BY_EXTENSION))


def decoded_frames(path, step=1):
    """Yields `(index, uint8 RGB frame)` for every `step`-th frame of a video, in order."""
    capture = _open(path)
    try:
        index = 0
        while True:
            if index % step:
                ok = capture.grab()  # skipped frames are not converted
            else:
                ok, frame = capture.read()
                if ok:
                    yield index, to_rgb(frame)
            if not ok:
                return
            index += 1
    finally:
        capture.release()


def model_view(frame, size, short_side):
    """A frame as `predict` shows it to a model: short side resized, centre `size` crop."""
    views, _ = transform_clips(
        frame[None, None], training=False, rng=None, crop_size=size, short_side=short_side
    )
    return views[0, 0]


def check_window_stride(window_stride, frame_interval):
    """A stream's windows start on sampled frames: the stride is a multiple of the interval."""
    if window_stride % frame_interval:
        raise ValueError(
            "A stream's windows start on sampled frames: the window stride must be a multiple "
            f"of the frame interval. Received: window_stride={window_stride}, "
            f"frame_interval={frame_interval}"
        )


def stream_windows(stream, path, frame_interval, window_stride, short_side):
    """Classifies a video as a live stream: every `frame_interval`-th frame is pushed.

    Args:
        stream: a `StreamingClassifier` (it is reset first).
        path: the video.
        frame_interval: frames between the frames of a window.
        window_stride: frames between window starts, a multiple of `frame_interval`.
        short_side: the short side frames are resized to before the centre crop.

    Yields:
        `(first frame index, last frame index, probabilities)` of each window.
    """
    check_window_stride(window_stride, frame_interval)
    stream.reset()
    num_frames, size = stream.num_frames, stream.frame_shape[0]
    every = window_stride // frame_interval
    found = False
    for count, (index, frame) in enumerate(decoded_frames(path, frame_interval)):
        due = count >= num_frames - 1 and (count - num_frames + 1) % every == 0
        probabilities = stream.push(model_view(frame, size, short_side), classify=due)
        if probabilities is not None:
            found = True
            yield index - (num_frames - 1) * frame_interval, index, probabilities
    if not found:
        span = (num_frames - 1) * frame_interval + 1
        raise ValueError(
            f"{path}: too short for one window of {num_frames} frames {frame_interval} apart "
            f"({span} frames)"
        )


def check_overlay_path(path):
    """Raises a ValueError unless `path` names a video container `write_overlay` writes."""
    if not os.fspath(path).lower().endswith(OVERLAY_EXTENSIONS):
        raise ValueError(
            f"The overlay video must end in one of {', '.join(OVERLAY_EXTENSIONS)}. "
            f"Received: {path!r}"
        )


def draw_predictions(frame, lines):
    """Draws text lines (e.g. "label 0.93") on a dark band at the top left of an RGB frame."""
    height = frame.shape[0]
    scale = max(0.35, height / 720)
    thickness = max(1, round(scale * 1.5))
    font = cv2.FONT_HERSHEY_SIMPLEX
    sizes = [cv2.getTextSize(line, font, scale, thickness) for line in lines]
    line_height = max((h + baseline for (_, h), baseline in sizes), default=0) + 4
    width = max((w for (w, _), _ in sizes), default=0) + 8
    band = frame[: line_height * len(lines) + 4, :width]
    band[...] = band // 3  # darkened, so that the text reads on any picture
    for i, line in enumerate(lines):
        origin = (4, (i + 1) * line_height - 2)
        cv2.putText(frame, line, origin, font, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return frame


def write_overlay(path, output, timeline):
    """Writes `path` again to `output`, at its size and rate, with predictions drawn on it.

    Each frame shows the text of the latest entry of `timeline` that starts
    at or before it: with the windows' last frames as starts, the latest
    window that has ended, as a live display would show it. The video is
    written beside `output` and renamed into place once complete.

    Args:
        path: the input video.
        output: the video to write; its extension picks the container.
        timeline: `(frame index, text lines)` pairs, each shown from that frame on.

    Returns:
        The number of frames written.
    """
    check_overlay_path(output)
    output = os.fspath(output)
    shown = sorted(timeline, key=lambda item: item[0])
    fps = probe(path).fps or 25.0
    extension = os.path.splitext(output)[1]
    writer = None
    count, current, lines = 0, 0, []
    with files.replacing(output) as partial:
        try:
            for index, frame in decoded_frames(path):
                if writer is None:
                    fourcc = cv2.VideoWriter_fourcc(*_FOURCC_BY_EXTENSION[extension.lower()])
                    writer = cv2.VideoWriter(partial, fourcc, fps, frame.shape[1::-1])
                    if not writer.isOpened():
                        raise OSError(f"OpenCV cannot write {extension} videos here: {output}")
                while current < len(shown) and shown[current][0] <= index:
                    lines = shown[current][1]
                    current += 1
                writer.write(cv2.cvtColor(draw_predictions(frame, lines), cv2.COLOR_RGB2BGR))
                count += 1
            if writer is None:
                raise ValueError(f"No frames to draw on: {path} decoded to none")
        finally:
            if writer is not None:
                writer.release()
    return count
