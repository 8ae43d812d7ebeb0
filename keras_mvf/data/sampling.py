"""Frame sampling: pure functions of a frame count and a random generator.

Every function returns an int64 array `(num_clips, num_frames)` of 0-based
frame indices, never empty, always inside `[0, total_frames)`.
"""

import numpy as np

SAMPLINGS = ("dense", "uniform")
SHORT_VIDEO_MODES = ("wrap", "last")


def _check(total_frames, num_frames, num_clips):
    for name, value in (
        ("total_frames", total_frames),
        ("num_frames", num_frames),
        ("num_clips", num_clips),
    ):
        if int(value) < 1:
            raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value}")


def _fit(indices, total_frames, short_video):
    """Folds indices past the end back in: wrap around, or repeat the last frame."""
    if short_video not in SHORT_VIDEO_MODES:
        raise ValueError(
            f"`short_video` must be one of {SHORT_VIDEO_MODES}. Received: short_video={short_video}"
        )
    if short_video == "wrap":
        return indices % total_frames
    return np.minimum(indices, total_frames - 1)


def dense_indices(
    total_frames,
    num_frames=8,
    frame_interval=8,
    training=True,
    num_clips=1,
    rng=None,
    short_video="wrap",
):
    """Dense sampling (Kinetics): `num_frames` frames, `frame_interval` apart.

    Training takes one clip from a random start; testing takes `num_clips`
    clips whose starts are evenly spaced, each centred in its share of the
    possible starts.

    Args:
        total_frames: frames in the video.
        num_frames: frames per clip. Defaults to `8`.
        frame_interval: step between sampled frames. Defaults to `8`.
        training: random start if `True`, evenly spaced clips if `False`.
        num_clips: clips to return. Defaults to `1`.
        rng: a `numpy.random.Generator` (training only).
        short_video: `"wrap"` or `"last"`, for clips that run past the end.
            Defaults to `"wrap"`.

    Returns:
        int64 array `(num_clips, num_frames)`.
    """
    _check(total_frames, num_frames, num_clips)
    if int(frame_interval) < 1:
        raise ValueError(
            "`frame_interval` must be a positive integer. "
            f"Received: frame_interval={frame_interval}"
        )
    span = (num_frames - 1) * frame_interval + 1
    starts_available = max(total_frames - span + 1, 1)
    if training:
        rng = np.random.default_rng() if rng is None else rng
        starts = rng.integers(0, starts_available, size=num_clips)
    else:
        starts = ((np.arange(num_clips) + 0.5) * starts_available / num_clips).astype(np.int64)
    indices = starts[:, None] + np.arange(num_frames)[None, :] * frame_interval
    return _fit(indices.astype(np.int64), total_frames, short_video)


def uniform_indices(total_frames, num_frames=8, training=True, num_clips=1, rng=None):
    """Uniform segment sampling (TSN, Something-Something).

    The video is cut into `num_frames` equal segments and one frame is taken
    from each: a random one in training, in testing the one at offset
    `(k + 0.5) / num_clips` of the segment for clip `k` (the centre for one
    clip). Videos with fewer frames than segments repeat frames.

    Args:
        total_frames: frames in the video.
        num_frames: segments, i.e. frames per clip. Defaults to `8`.
        training: random frame per segment if `True`.
        num_clips: clips to return. Defaults to `1`.
        rng: a `numpy.random.Generator` (training only).

    Returns:
        int64 array `(num_clips, num_frames)`.
    """
    _check(total_frames, num_frames, num_clips)
    segment = total_frames / num_frames
    if training:
        rng = np.random.default_rng() if rng is None else rng
        offsets = rng.random((num_clips, num_frames))
    else:
        offsets = np.broadcast_to(
            ((np.arange(num_clips) + 0.5) / num_clips)[:, None], (num_clips, num_frames)
        )
    indices = np.floor((np.arange(num_frames)[None, :] + offsets) * segment).astype(np.int64)
    return np.clip(indices, 0, total_frames - 1)


def sample_indices(
    sampling,
    total_frames,
    num_frames,
    frame_interval,
    training,
    num_clips=1,
    rng=None,
    short_video="wrap",
):
    """Dispatches to `dense_indices` or `uniform_indices` by name."""
    if sampling == "dense":
        return dense_indices(
            total_frames, num_frames, frame_interval, training, num_clips, rng, short_video
        )
    if sampling == "uniform":
        return uniform_indices(total_frames, num_frames, training, num_clips, rng)
    raise ValueError(f"`sampling` must be one of {SAMPLINGS}. Received: sampling={sampling}")
