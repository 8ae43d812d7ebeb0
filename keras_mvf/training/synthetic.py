"""A synthetic "something-something": textured shapes whose classes differ only in time order.

Every class comes with its time reversal (moving left / moving right, approaching /
receding, ...). A clip of the second class is a clip of the first played backwards,
so the two classes have exactly the same distribution of single frames: a model that
averages per-frame predictions (C2D) cannot beat chance within a pair, while a
model that fuses information over time (MVFNet) can.

The scenes are made so that motion is the easiest thing to learn: one bright,
striped shape that moves across half the frame, on a dark background with only a
faint texture. (Colourful, high-contrast backgrounds let a small network memorise
the training clips instead, and left both C2D and MVFNet at chance.)
"""

import math
import os

import cv2
import numpy as np

# Pairs of classes; the second of each pair is the first played backwards.
CLASS_PAIRS = (
    ("moving left", "moving right"),
    ("moving up", "moving down"),
    ("approaching", "receding"),
    ("rotating clockwise", "rotating counter-clockwise"),
    ("appearing", "disappearing"),
)
CLASS_NAMES = tuple(name for pair in CLASS_PAIRS for name in pair)
# The classes a horizontal flip turns into each other (for `label_swap`).
FLIP_PAIRS = ((0, 1), (6, 7))

_SPRITE = 64  # side of the canvas a shape is drawn on before it is placed in a frame


def _texture(rng, size, colours):
    """Stripes of random period and angle between two colours."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, math.pi)
    period = rng.uniform(6, 12)
    phase = (xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period
    mix = (np.sin(phase) > 0).astype(np.float32)[..., None]
    return colours[0] * mix + colours[1] * (1 - mix)


def _background(rng, size):
    """A dark colour with a faint smooth texture and fine noise."""
    base = rng.uniform(30, 90, 3).astype(np.float32)
    coarse = rng.uniform(-25, 25, (4, 4, 3)).astype(np.float32)
    field = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    return base + field + rng.normal(0, 4, field.shape).astype(np.float32)


def _sprite(rng):
    """A bright striped polygon (3 to 5 irregular corners) and its mask on a square canvas."""
    corners = int(rng.integers(3, 6))
    angles = np.sort(rng.uniform(0, 2 * math.pi, corners))
    angles = angles if np.ptp(angles) > math.pi else np.linspace(0, 2 * math.pi, corners + 1)[:-1]
    radii = rng.uniform(0.5, 1.0, corners) * _SPRITE / 2
    points = np.stack([np.cos(angles) * radii, np.sin(angles) * radii], -1) + _SPRITE / 2
    mask = np.zeros((_SPRITE, _SPRITE), np.float32)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1.0, lineType=cv2.LINE_AA)
    colours = rng.uniform(140, 255, (2, 3)).astype(np.float32)
    colours[1] *= rng.uniform(0.4, 0.7)  # the second stripe colour is darker
    return _texture(rng, _SPRITE, colours), mask


def _trajectory(pair, rng, num_frames, size):
    """Per-frame (x, y, scale, angle in degrees, opacity) of the first class of `pair`."""
    t = np.linspace(0.0, 1.0, num_frames)
    base_scale = size / _SPRITE * 0.45 * rng.uniform(0.85, 1.15)
    x = np.full(num_frames, rng.uniform(0.4, 0.6) * size)
    y = np.full(num_frames, rng.uniform(0.4, 0.6) * size)
    scale = np.full(num_frames, base_scale)
    angle = np.full(num_frames, rng.uniform(0, 360))
    opacity = np.ones(num_frames)
    travel = rng.uniform(0.5, 0.6) * size
    if pair == 0:  # moving left, across the centre
        x = size / 2 + travel * (0.5 - t)
    elif pair == 1:  # moving up
        y = size / 2 + travel * (0.5 - t)
    elif pair == 2:  # approaching: the shape grows about 3x
        scale = base_scale * (0.35 + 0.75 * t)
    elif pair == 3:  # rotating clockwise (OpenCV's positive angle is counter-clockwise)
        angle = angle - rng.uniform(120, 180) * t
    else:  # appearing: fades in over the first 80% of the clip
        opacity = np.clip(t * 1.25, 0, 1)
    return x, y, scale, angle, opacity


def synthetic_clip(label, rng, num_frames=12, size=64):
    """Renders one clip of class `label` (index into `CLASS_NAMES`).

    A clip of an odd class is exactly the clip of the class before it, drawn
    from the same `rng` state, played backwards.

    Args:
        label: int in `[0, len(CLASS_NAMES))`.
        rng: `numpy.random.Generator` that draws the shape, textures and motion.
        num_frames: int, frames in the clip. Defaults to `12`.
        size: int, frame height and width in pixels. Defaults to `64`.

    Returns:
        uint8 array `(num_frames, size, size, 3)`, RGB.
    """
    if not 0 <= label < len(CLASS_NAMES):
        raise ValueError(f"`label` must be in [0, {len(CLASS_NAMES)}). Received: label={label}")
    if num_frames < 2 or size < 16:
        raise ValueError(
            "A clip needs at least 2 frames of 16x16 pixels. "
            f"Received: num_frames={num_frames}, size={size}"
        )
    background = _background(rng, size)
    texture, mask = _sprite(rng)
    frames = []
    states = _trajectory(label // 2, rng, num_frames, size)
    for x, y, scale, angle, opacity in zip(*states, strict=True):
        matrix = cv2.getRotationMatrix2D((_SPRITE / 2, _SPRITE / 2), angle, scale)
        matrix[:, 2] += (x - _SPRITE / 2, y - _SPRITE / 2)
        placed = cv2.warpAffine(texture, matrix, (size, size), flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(mask, matrix, (size, size), flags=cv2.INTER_LINEAR)
        alpha = (alpha * opacity)[..., None]
        frame = background * (1 - alpha) + placed * alpha
        frames.append(frame + rng.normal(0, 3, frame.shape))
    clip = np.clip(np.stack(frames), 0, 255).astype(np.uint8)
    return clip[::-1] if label % 2 else clip


def synthetic_clips(videos_per_class, num_frames=12, size=64, seed=0):
    """An in-memory balanced set: `(clips uint8 (n, T, size, size, 3), labels int32 (n,))`."""
    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(len(CLASS_NAMES), dtype=np.int32), videos_per_class)
    clips = np.stack([synthetic_clip(int(label), rng, num_frames, size) for label in labels])
    return clips, labels


def write_synthetic_videos(
    out_dir, split, videos_per_class, num_frames=12, size=64, fps=8.0, seed=0
):
    """Writes a balanced split of real video files and its manifest.

    Videos go to `out_dir/split/<class>_<n>.mp4` (OpenCV, MPEG-4) and the
    manifest to `out_dir/split.jsonl`, indexed with `keras_mvf.data` (each
    file is probed after writing). The default 12 frames suit 8-frame uniform
    (TSN) sampling: its test-time segment centres, frames 0, 2, 3, 5, 6, 8, 9
    and 11, are the same set played backwards, so a clip and its reversal
    give C2D the same frames (with 16 frames they would be the odd frames
    and the even ones).

    Returns:
        The manifest path.
    """
    from keras_mvf import data

    folder = os.path.join(out_dir, split)
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    entries = []
    for number in range(videos_per_class):
        for label, name in enumerate(CLASS_NAMES):
            path = os.path.join(split, f"{name.replace(' ', '_')}_{number:04d}.mp4")
            data.write_video(
                os.path.join(out_dir, path), synthetic_clip(label, rng, num_frames, size), fps
            )
            info = data.probe(os.path.join(out_dir, path))
            entries.append(data.VideoEntry(path, info.num_frames, info.fps, label))
    return data.write_manifest(
        os.path.join(out_dir, f"{split}.jsonl"), entries, CLASS_NAMES, out_dir
    )
