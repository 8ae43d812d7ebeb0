"""Reading and writing video frames with OpenCV, frame-accurately.

Frames are always returned as uint8 RGB `(frames, height, width, 3)` at the
video's own size, whatever the source stores (grayscale, RGBA, odd sizes).
Videos and frame folders may be URIs (`gs://...`): the decoders open local
files, so a video is copied to a local temporary file first (at most
`MAX_URI_VIDEO_BYTES`), decoded and deleted.
"""

import bisect
import contextlib
import fractions
import heapq
import itertools
import os
import typing

import cv2
import numpy as np

from keras_mvf.utils import files

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


# What PyAV encodes each four-letter code with, when it writes the file.
_PYAV_CODECS = {
    "avc1": "libx264",
    "H264": "libx264",
    "mp4v": "mpeg4",
    "XVID": "mpeg4",
    "VP80": "libvpx",
    "VP90": "libvpx-vp9",
    "FFV1": "ffv1",
}
# Codes OpenCV's wheels cannot encode: always written with PyAV.
_PYAV_ONLY_FOURCCS = ("avc1", "H264", "VP90")


class VideoError(IOError):
    """A video (or frame folder) that cannot be opened or decoded."""


# The largest video read from a URI: it is copied to a local temporary file to decode.
MAX_URI_VIDEO_BYTES = 1 << 30


@contextlib.contextmanager
def _local_video(path):
    """Yields `path`, or for a URI a local temporary copy of it; errors name `path`."""
    path = os.fspath(path)
    with files.local_copy(path, MAX_URI_VIDEO_BYTES) as local:
        try:
            yield local
        except VideoError as error:
            if local == path:
                raise
            raise VideoError(str(error).replace(local, path)) from None


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
    capture = cv2.VideoCapture(os.fspath(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    if not capture.isOpened():
        raise VideoError(f"OpenCV cannot open the video: {path}")
    return capture


def probe(path, exact=False):
    """Reports frame count, fps and size of a video.

    Args:
        path: the video file.
        exact: if `True`, count frames by stepping through the whole stream (slow
            but right for containers whose declared count is an estimate, such
            as WebM and Matroska) and measure fps as the average rate between
            the first and last frames' timestamps (right for variable frame
            rates, where Matroska declares a nominal rate). Defaults to `False`
            (the container's count and rate).

    Returns:
        A `VideoInfo(num_frames, fps, width, height)`.

    Raises:
        FileNotFoundError: if `path` does not exist.
        VideoError: if the file cannot be opened or holds no frame.
    """
    with _local_video(path) as local:
        return _probe(local, exact)


def _probe(path, exact):
    capture = _open(path)
    try:
        fps = capture.get(cv2.CAP_PROP_FPS)
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        num_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if exact or num_frames <= 0:
            num_frames, stamps = 0, []
            while capture.grab():
                num_frames += 1
                stamps.append(capture.get(cv2.CAP_PROP_POS_MSEC))
            if num_frames > 1 and stamps[-1] > stamps[0]:
                fps = (num_frames - 1) * 1000.0 / (stamps[-1] - stamps[0])
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


DECODERS = ("auto", "pyav", "opencv")


def _import_pyav():
    """The `av` module (PyAV), or `None` when it is not installed."""
    try:
        import av
    except ImportError:
        return None
    return av


def read_frames(path, indices, decoder="auto"):
    """Decodes the frames at `indices` of a video, exactly as a full decode would.

    Frame `i` is the `i`-th frame a full sequential decode (`read_all_frames`)
    gives. Two decoders give the same frames:

    - `"pyav"` reads the packet timestamps (no decoding) up to the last
      wanted frame to learn every frame's timestamp and the keyframes, seeks
      to the last keyframe at or before each wanted frame when that skips
      work, does not decode unwanted non-reference frames (H.264's B-frames),
      and checks every decoded frame's timestamp, so it never returns a wrong
      frame; where timestamps are missing or ambiguous, or a seek lands past
      the frame, it decodes from the start instead.
    - `"opencv"` never seeks (OpenCV numbers frames after a seek from
      timestamps and the average rate, which is wrong for variable frame
      rates): it grabs (decodes without colour conversion) every frame up to
      the largest index.

    Both decode with one thread (tf.data decodes many videos in parallel).

    Args:
        path: the video file.
        indices: frame numbers (0-based, any order, repeats allowed).
        decoder: `"pyav"`, `"opencv"` or `"auto"` (PyAV when installed, it is
            faster; else OpenCV). Defaults to `"auto"`.

    Returns:
        uint8 RGB array `(len(indices), height, width, 3)`.

    Raises:
        ValueError: if `indices` is empty or holds a negative number, or
            `decoder` is unknown.
        FileNotFoundError: if `path` does not exist.
        VideoError: if the file cannot be opened or ends before an asked frame.
    """
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if indices.size == 0 or indices.min() < 0:
        raise ValueError(
            f"`indices` must be a non-empty list of non-negative frame numbers. "
            f"Received: indices={indices.tolist()}"
        )
    if decoder not in DECODERS:
        raise ValueError(f"`decoder` must be one of {DECODERS}. Received: decoder={decoder!r}")
    av = _import_pyav() if decoder != "opencv" else None
    if decoder == "pyav" and av is None:
        raise ImportError("decoder='pyav' needs PyAV: pip install av")
    wanted = [int(i) for i in np.unique(indices)]
    with _local_video(path) as local:
        if not os.path.isfile(local):
            raise FileNotFoundError(f"Video file not found: {path}")
        decoded = _read_pyav(av, local, wanted) if av else _read_opencv(local, wanted)
    return np.stack([decoded[int(i)] for i in indices])


def _ended(path, count, index):
    return VideoError(f"The video ended after {count} frames, before frame {index}: {path}")


def _read_opencv(path, wanted):
    """`{index: RGB frame}` for the sorted `wanted` indices, stepping from frame 0."""
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
                raise _ended(path, position, target)
            decoded[target] = to_rgb(frame)
            position += 1
    finally:
        capture.release()
    return decoded


def _read_pyav(av, path, wanted):
    """`{index: RGB frame}` for the sorted `wanted` indices, seeking to keyframes."""
    try:
        with av.open(os.fspath(path)) as container:
            decoded = _read_seeking(container, _video_stream(container, path), wanted, path)
        if decoded is None:  # the timestamps did not check out: decode from the start
            with av.open(os.fspath(path)) as container:
                decoded = _read_sequential(container, _video_stream(container, path), wanted, path)
    except av.FFmpegError as error:
        raise VideoError(f"PyAV cannot decode the video: {path}: {error}") from None
    return decoded


def _video_stream(container, path):
    """The first video stream, set to decode on one thread."""
    if not container.streams.video:
        raise VideoError(f"The file holds no video stream: {path}")
    stream = container.streams.video[0]
    stream.codec_context.thread_count = 1
    return stream


def _timeline(container, stream, count=None):
    """`(frame timestamps in display order, keyframe timestamps)` from the packets.

    Packets come in decode order, and no packet is shown before it is decoded,
    so timestamps below the current packet's decode time are final: the
    demuxing stops once the first `count` frames' timestamps are (all when
    `count` is `None`). Returns `None` when some packet has no timestamp, two
    share one or one breaks that order (frame numbers cannot then be told
    from timestamps), or no packet is a keyframe.
    """
    pending, timestamps, keys = [], [], []
    for packet in container.demux(stream):
        if packet.size == 0:
            continue  # the end-of-stream marker
        if packet.pts is None or (timestamps and packet.pts <= timestamps[-1]):
            return None
        if packet.is_keyframe:
            keys.append(packet.pts)
        if not packet.is_discard:
            heapq.heappush(pending, packet.pts)
        while pending and packet.dts is not None and pending[0] < packet.dts:
            timestamps.append(heapq.heappop(pending))
        if count is not None and len(timestamps) >= count:
            break
    timestamps += sorted(pending)
    if not keys or any(a >= b for a, b in itertools.pairwise(timestamps)):
        return None
    return timestamps, sorted(keys)


def _read_seeking(container, stream, wanted, path):
    """Decodes `wanted` from the last keyframe before each; `None` if timestamps disagree."""
    timeline = _timeline(container, stream, wanted[-1] + 1)
    if timeline is None:
        return None
    timestamps, keys = timeline
    if wanted[-1] >= len(timestamps):
        return None  # packets may not map one to one to frames: let decoding count
    known = set(timestamps)
    kept = {timestamps[i] for i in wanted}
    decoded, frames, position = {}, None, None
    for target in wanted:
        pts = timestamps[target]
        key = keys[max(bisect.bisect_right(keys, pts) - 1, 0)]
        if position is None or key > position:
            container.seek(key, stream=stream)
            frames = _decode_skipping(container, stream, kept)
        for frame in frames:
            if frame.pts not in known:
                return None
            if frame.pts >= key:  # earlier ones lead an open GOP: skipped
                position = frame.pts
            if frame.pts == pts:
                decoded[target] = _to_rgb_array(frame)
                break
            if frame.pts > pts:  # the seek went past the frame
                return None
        else:
            return None  # the stream ended early: the sequential decode tells where
    return decoded


def _decode_skipping(container, stream, kept):
    """Decodes the stream but skips non-reference frames whose timestamp is not in `kept`.

    No other frame depends on a non-reference frame (the B-frames of H.264),
    so skipping them changes no other frame. The decoder runs on this thread,
    so each packet is decoded under the setting made just before it is sent.
    """
    context = stream.codec_context
    for packet in container.demux(stream):
        context.skip_frame = "DEFAULT" if packet.pts is None or packet.pts in kept else "NONREF"
        yield from packet.decode()


def _to_rgb_array(frame):
    """A decoded PyAV frame as RGB, converted on this thread.

    swscale's default (a thread per core, every call) costs up to 10 ms a
    frame on a busy machine instead of about 0.1 ms.
    """
    return frame.reformat(format="rgb24", threads=1).to_ndarray()


def _read_sequential(container, stream, wanted, path):
    """Decodes from the start, numbering frames in output order (no timestamps needed)."""
    decoded, remaining = {}, set(wanted)
    position = 0
    for frame in container.decode(stream):
        if position in remaining:
            decoded[position] = _to_rgb_array(frame)
            remaining.discard(position)
            if not remaining:
                return decoded
        position += 1
    raise _ended(path, position, min(remaining))


def read_all_frames(path):
    """Decodes every frame of a video (the reference `read_frames` must match)."""
    with _local_video(path) as local:
        return _read_all_frames(local)


def _read_all_frames(path):
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
        path = files.join(directory, template.format(int(index) + start_index))
        image = _read_image(path)
        if image is None:
            raise VideoError(f"Cannot read frame image: {path}")
        frames.append(to_rgb(image))
    if len({frame.shape for frame in frames}) > 1:
        raise VideoError(f"Frame images of different sizes in {directory}")
    return np.stack(frames)


def _read_image(path):
    """The image file `path` as OpenCV reads it, or None when it cannot be read."""
    if not files.is_uri(path):
        return cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if not files.isfile(path):
        return None
    return cv2.imdecode(np.frombuffer(files.read_bytes(path), np.uint8), cv2.IMREAD_UNCHANGED)


def count_image_frames(directory, template="img_{:05d}.jpg", start_index=1):
    """Counts consecutive frame images `template.format(start_index + i)` in a folder."""
    if not files.isdir(directory):
        raise FileNotFoundError(f"Frame folder not found: {directory}")
    names = set(files.listdir(directory))
    count = 0
    while template.format(start_index + count) in names:
        count += 1
    if count == 0:
        raise VideoError(f"No frame named {template.format(start_index)!r} in {directory}")
    return count


def write_video(path, frames, fps=30.0, fourcc=None, timestamps=None, keyframe_interval=None):
    """Writes uint8 RGB frames to a real video file (test data, benchmarks).

    The codec follows the extension: MPEG-4 Part 2 for .mp4/.mov/.m4v, Xvid for
    .avi/.mkv, VP8 for .webm. Grayscale `(T, H, W)` or `(T, H, W, 1)` frames
    make a grayscale video. Height and width must be even: the encoders would
    silently drop the odd row or column. OpenCV writes the file, except for
    H.264 (`fourcc="avc1"`; OpenCV's wheels have no H.264 encoder), VP9
    (`"VP90"`, as Something-Something V2 ships), variable frame rates
    (`timestamps`) and a set `keyframe_interval`, which PyAV (libx264 for
    H.264, with its default B-frames) writes.

    Args:
        path: output file; the extension picks the container.
        frames: uint8 array `(T, H, W, 3)` RGB or `(T, H, W[, 1])` gray.
        fps: frames per second. Defaults to `30.0`.
        fourcc: four-letter codec code overriding the default, e.g. `"MJPG"`,
            `"FFV1"` (lossless, in .avi/.mkv) or `"avc1"` (H.264).
        timestamps: presentation time of every frame in seconds, increasing,
            for a variable frame rate (millisecond precision). Defaults to
            `None` (constant `fps`).
        keyframe_interval: frames between keyframes. Defaults to `None` (the
            encoder's default).

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
            f"Frame height and width must be even for the encoders. "
            f"Received: frames with shape={frames.shape}"
        )
    fourcc = fourcc or _FOURCC_BY_EXTENSION[extension]
    if fourcc in _PYAV_ONLY_FOURCCS or timestamps is not None or keyframe_interval is not None:
        return _write_pyav(path, frames, fps, fourcc, timestamps, keyframe_interval)
    writer = cv2.VideoWriter(
        os.fspath(path), cv2.VideoWriter_fourcc(*fourcc), float(fps), (width, height), is_color
    )
    if not writer.isOpened():
        raise VideoError(f"OpenCV cannot write {extension} videos here: {path}")
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR) if is_color else frame)
    finally:
        writer.release()
    return path


def _write_pyav(path, frames, fps, fourcc, timestamps, keyframe_interval):
    """`write_video` with PyAV, in yuv420p."""
    av = _import_pyav()
    if av is None:
        raise ImportError(
            "Writing H.264, VP9, variable frame rates or a keyframe interval "
            "needs PyAV: pip install av"
        )
    if fourcc not in _PYAV_CODECS:
        raise ValueError(
            f"`fourcc` must be one of {sorted(_PYAV_CODECS)} to write with PyAV. "
            f"Received: fourcc={fourcc!r}"
        )
    if timestamps is not None:
        timestamps = np.round(np.asarray(timestamps, dtype=np.float64) * 1000).astype(np.int64)
        if timestamps.shape != (len(frames),) or np.any(np.diff(timestamps) <= 0):
            raise ValueError(
                f"`timestamps` must hold one increasing time per frame, at least 1 ms apart. "
                f"Received: {len(timestamps)} timestamps for {len(frames)} frames"
            )
    format_name = "rgb24" if frames.ndim == 4 and frames.shape[-1] == 3 else "gray"
    with av.open(os.fspath(path), "w") as container:
        stream = container.add_stream(
            _PYAV_CODECS[fourcc], rate=fractions.Fraction(fps).limit_denominator(1001)
        )
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if keyframe_interval is not None:
            stream.codec_context.gop_size = int(keyframe_interval)
        millisecond = fractions.Fraction(1, 1000)
        if timestamps is not None:
            stream.codec_context.time_base = millisecond
        for i, frame in enumerate(frames):
            if format_name == "gray":
                frame = frame.reshape(frame.shape[:2])
            picture = av.VideoFrame.from_ndarray(frame, format=format_name)
            if timestamps is not None:
                picture.pts, picture.time_base = int(timestamps[i]), millisecond
            container.mux(stream.encode(picture))
        container.mux(stream.encode())
    return path
