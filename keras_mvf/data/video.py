"""Reading and writing video frames with OpenCV, frame-accurately.

Frames are always returned as uint8 RGB `(frames, height, width, 3)` at the
video's own size, whatever the source stores (grayscale, RGBA, odd sizes).
"""

import os
import typing

import cv2
import numpy as np

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v")

# Codec used by `write_video` for each container (what OpenCV's FFmpeg can encode).
_FOURCC_BY_EXTENSION = {
    ".mp4": "mp4v",
    ".m4v": "mp4v",
    ".mov": "mp4v",
    ".avi": "XVID",
    ".mkv": "XVID",
    ".webm": "VP80",
}


class VideoError(IOError):
    """A video (or frame folder) that cannot be opened or decoded."""


class VideoInfo(typing.NamedTuple):
    """What `probe` reports about a video.

    Attributes:
        num_frames: number of frames (from the container unless probed exactly).
        fps: frames per second the container declares (0.0 when unknown).
        width: frame width in pixels.
        height: frame height in pixels.
    """

    num_frames: int
    fps: float
    width: int
    height: int


def _open(path):
    """Opens `path` with a single-threaded FFmpeg decoder.

    One decoder thread per video: tf.data decodes many videos in parallel, and
    per-video threads would only oversubscribe the cores.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Video file not found: {path}")
    capture = cv2.VideoCapture(
        os.fspath(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1]
    )
    if not capture.isOpened():
        raise VideoError(f"OpenCV cannot open the video: {path}")
    return capture


def probe(path, exact=False):
    """Reports frame count, fps and size of a video.

    Args:
        path: the video file.
        exact: if `True`, count frames by stepping through the whole stream (slow
            but right for containers whose declared count is an estimate, such
            as WebM). Defaults to `False` (the container's count).

    Returns:
        A `VideoInfo(num_frames, fps, width, height)`.

    Raises:
        FileNotFoundError: if `path` does not exist.
        VideoError: if the file cannot be opened or holds no frame.
    """
    capture = _open(path)
    try:
        fps = capture.get(cv2.CAP_PROP_FPS)
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        num_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if exact or num_frames <= 0:
            num_frames = 0
            while capture.grab():
                num_frames += 1
    finally:
        capture.release()
    if num_frames <= 0 or width <= 0 or height <= 0:
        raise VideoError(f"The video has no decodable frame: {path}")
    return VideoInfo(num_frames, float(fps) if fps > 0 else 0.0, width, height)


def to_rgb(image, source="bgr"):
    """Converts a decoded image of 1, 3 or 4 channels to uint8 RGB `(H, W, 3)`.

    Args:
        image: a 2D array or an `(H, W, C)` array with C in {1, 3, 4}.
        source: channel order of 3/4-channel input, `"bgr"` (OpenCV) or
            `"rgb"`. Defaults to `"bgr"`.
    """
    if image.dtype != np.uint8:
        raise ValueError(f"Expected uint8 frames. Received: dtype={image.dtype}")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    channels = image.shape[-1] if image.ndim == 3 else None
    codes = {
        ("bgr", 3): cv2.COLOR_BGR2RGB,
        ("bgr", 4): cv2.COLOR_BGRA2RGB,
        ("rgb", 4): cv2.COLOR_RGBA2RGB,
    }
    if (source, channels) == ("rgb", 3):
        return np.ascontiguousarray(image)
    if (source, channels) not in codes:
        raise ValueError(
            f"Expected an image of shape (H, W) or (H, W, 1|3|4). Received: shape={image.shape}"
        )
    return cv2.cvtColor(image, codes[(source, channels)])


def read_frames(path, indices):
    """Decodes the frames at `indices` of a video, exactly as a full decode would.

    Containers often seek inexactly, so this never seeks: it steps through the
    stream, only grabbing (decoding without colour conversion or copying) the
    frames it skips and retrieving the ones asked for, and stops after the
    largest index.

    Args:
        path: the video file.
        indices: frame numbers (0-based, any order, repeats allowed).

    Returns:
        uint8 RGB array `(len(indices), height, width, 3)`.

    Raises:
        ValueError: if `indices` is empty or holds a negative number.
        FileNotFoundError: if `path` does not exist.
        VideoError: if the file cannot be opened or ends before an asked frame.
    """
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if indices.size == 0 or indices.min() < 0:
        raise ValueError(
            f"`indices` must be a non-empty list of non-negative frame numbers. "
            f"Received: indices={indices.tolist()}"
        )
    wanted = np.unique(indices)
    decoded = {}
    capture = _open(path)
    try:
        position = 0
        for target in wanted:
            while position < target:
                if not capture.grab():
                    break
                position += 1
            ok, frame = capture.read() if position == target else (False, None)
            if not ok or frame is None:
                raise VideoError(
                    f"The video ended after {position} frames, before frame {target}: {path}"
                )
            decoded[int(target)] = to_rgb(frame)
            position += 1
    finally:
        capture.release()
    return np.stack([decoded[int(i)] for i in indices])


def read_all_frames(path):
    """Decodes every frame of a video (the reference `read_frames` must match)."""
    capture = _open(path)
    frames = []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(to_rgb(frame))
    finally:
        capture.release()
    if not frames:
        raise VideoError(f"The video has no decodable frame: {path}")
    return np.stack(frames)


def read_image_frames(directory, indices, template="img_{:05d}.jpg", start_index=1):
    """Reads frames `indices` (0-based) from a folder of extracted images.

    Args:
        directory: the folder.
        indices: 0-based frame numbers; frame `i` is the file
            `template.format(i + start_index)`.
        template: file name pattern. Defaults to `"img_{:05d}.jpg"`.
        start_index: number of the first file. Defaults to `1`.

    Returns:
        uint8 RGB array `(len(indices), height, width, 3)`.
    """
    frames = []
    for index in np.asarray(indices, dtype=np.int64).reshape(-1):
        path = os.path.join(directory, template.format(int(index) + start_index))
        image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if image is None:
            raise VideoError(f"Cannot read frame image: {path}")
        frames.append(to_rgb(image))
    if len({frame.shape for frame in frames}) > 1:
        raise VideoError(f"Frame images of different sizes in {directory}")
    return np.stack(frames)


def count_image_frames(directory, template="img_{:05d}.jpg", start_index=1):
    """Counts consecutive frame images `template.format(start_index + i)` in a folder."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"Frame folder not found: {directory}")
    names = set(os.listdir(directory))
    count = 0
    while template.format(start_index + count) in names:
        count += 1
    if count == 0:
        raise VideoError(
            f"No frame named {template.format(start_index)!r} in {directory}"
        )
    return count


def write_video(path, frames, fps=30.0, fourcc=None):
    """Writes uint8 RGB frames to a real video file with OpenCV.

    The codec follows the extension: MPEG-4 Part 2 for .mp4/.mov/.m4v, Xvid for
    .avi/.mkv, VP8 for .webm. Grayscale `(T, H, W)` or `(T, H, W, 1)` frames
    make a grayscale video. Height and width must be even: OpenCV's encoders
    would silently drop the odd row or column.

    Args:
        path: output file; the extension picks the container.
        frames: uint8 array `(T, H, W, 3)` RGB or `(T, H, W[, 1])` gray.
        fps: frames per second. Defaults to `30.0`.
        fourcc: four-letter codec code overriding the default, e.g. `"MJPG"`
            or `"FFV1"` (lossless, in .avi/.mkv).

    Returns:
        `path`.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim not in (3, 4) or len(frames) == 0:
        raise ValueError(
            "`frames` must be a non-empty uint8 array (T, H, W, 3) or (T, H, W). "
            f"Received: frames with dtype={frames.dtype}, shape={frames.shape}"
        )
    extension = os.path.splitext(path)[1].lower()
    if extension not in _FOURCC_BY_EXTENSION:
        raise ValueError(
            f"`path` must end in one of {sorted(_FOURCC_BY_EXTENSION)}. Received: path={path}"
        )
    is_color = frames.ndim == 4 and frames.shape[-1] == 3
    if not is_color and frames.ndim == 4 and frames.shape[-1] != 1:
        raise ValueError(f"`frames` must have 1 or 3 channels. Received: shape={frames.shape}")
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(
            f"Frame height and width must be even for OpenCV's encoders. "
            f"Received: frames with shape={frames.shape}"
        )
    writer = cv2.VideoWriter(
        os.fspath(path), cv2.VideoWriter_fourcc(*(fourcc or _FOURCC_BY_EXTENSION[extension])),
        float(fps), (width, height), is_color,
    )
    if not writer.isOpened():
        raise VideoError(f"OpenCV cannot write {extension} videos here: {path}")
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR) if is_color else frame)
    finally:
        writer.release()
    return path
