"""Clip-consistent spatial transforms on uint8 RGB clips `(T, H, W, 3)`.

Crops are chosen in the frame as resized to `short_side` (the usual "resize the
short side to 256" step) but cut from the original frame and resized once to
the output size, which gives the same picture without resizing whole frames
first. Every frame of a clip gets the same crop and the same flip.
"""

import math

import cv2
import numpy as np

TRAIN_CROPS = ("random_resized", "multi_scale")
EVAL_CROPS = (1, 3)
# Random resized crops: area fraction and aspect ratio ranges, tries before the fallback.
AREA_SCALE, ASPECT_RATIO, CROP_TRIES = (0.08, 1.0), (3 / 4, 4 / 3), 10
# Multi-scale crops: side lengths as fractions of the short side, and the most their
# height and width scales may differ, in steps of that list.
CROP_SCALES, MAX_DISTORT = (1.0, 0.875, 0.75, 0.66), 1
# A box shrinking by more than this is resized with area averaging, else bilinear.
AREA_RESIZE_BELOW = 0.5


def random_resized_crop_box(height, width, rng, scale=AREA_SCALE, ratio=ASPECT_RATIO):
    """An Inception-style box `(y, x, h, w)`: random area fraction and aspect ratio.

    Falls back to the largest centred box of extreme ratio after `CROP_TRIES` tries.
    """
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(CROP_TRIES):
        target_area = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    aspect = width / height
    if aspect < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif aspect > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def multi_scale_crop_box(height, width, rng, scales=CROP_SCALES, max_distort=MAX_DISTORT):
    """A TSN multi-scale box `(y, x, h, w)`: sides from `scales` x the short side.

    Height and width scales are drawn from pairs at most `max_distort` steps
    apart in `scales`; the position is random.
    """
    base = min(height, width)
    sizes = [max(int(base * s), 1) for s in scales]
    pairs = [
        (h, w)
        for i, h in enumerate(sizes)
        for j, w in enumerate(sizes)
        if abs(i - j) <= max_distort
    ]
    h, w = pairs[int(rng.integers(len(pairs)))]
    return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w


def eval_crop_boxes(height, width, crop_size, num_crops):
    """Boxes `(y, x, h, w)` for testing: the centre, or 3 along the long side.

    With 3 crops (the "accurate" protocol) the boxes sit at the start, centre
    and end of the long side. Crops larger than the frame are clipped to it.
    """
    if num_crops not in EVAL_CROPS:
        raise ValueError(
            f"`num_crops` must be one of {EVAL_CROPS}. Received: num_crops={num_crops}"
        )
    h, w = min(crop_size, height), min(crop_size, width)
    centre = ((height - h) // 2, (width - w) // 2, h, w)
    if num_crops == 1:
        return [centre]
    if height > width:
        return [(y, centre[1], h, w) for y in (0, centre[0], height - h)]
    return [(centre[0], x, h, w) for x in (0, centre[1], width - w)]


def crop_and_resize(frames, box, scale, size):
    """Cuts `box` (given at `scale` x the frames' size) from every frame, resizes to `size`.

    Args:
        frames: uint8 `(T, H, W, 3)`.
        box: `(y, x, h, w)` in the coordinates of the frames resized by `scale`.
        scale: factor from the frames' size to the box's coordinates.
        size: output side length.

    Returns:
        uint8 `(T, size, size, 3)`.
    """
    height, width = frames.shape[1:3]
    y, x, h, w = box
    top, left = min(int(y / scale), height - 1), min(int(x / scale), width - 1)
    bottom = min(max(int(round((y + h) / scale)), top + 1), height)
    right = min(max(int(round((x + w) / scale)), left + 1), width)
    shrink = min(size / (bottom - top), size / (right - left))
    interpolation = cv2.INTER_AREA if shrink < AREA_RESIZE_BELOW else cv2.INTER_LINEAR
    out = np.empty((len(frames), size, size, 3), np.uint8)
    for i, frame in enumerate(frames):
        out[i] = cv2.resize(
            frame[top:bottom, left:right], (size, size), interpolation=interpolation
        )
    return out


def transform_clips(
    clips,
    training,
    rng,
    crop_size=224,
    short_side=256,
    train_crop="random_resized",
    flip=True,
    num_crops=1,
):
    """Spatial transforms for a group of clips from one video.

    Training (one clip): a random resized or multi-scale crop resized to
    `crop_size`, then a horizontal flip with probability 1/2, the same for
    every frame. Testing: the short side resized to `short_side`, then
    `num_crops` crops of `crop_size` (1 centre crop, or 3 along the long side)
    from every clip.

    Args:
        clips: uint8 `(num_clips, T, H, W, 3)`.
        training: training or testing transforms.
        rng: a `numpy.random.Generator` (training only).
        crop_size: output side length. Defaults to `224`.
        short_side: short side the crops are chosen at. Defaults to `256`.
        train_crop: `"random_resized"` or `"multi_scale"`.
        flip: whether training may flip. Defaults to `True`.
        num_crops: crops per clip in testing, 1 or 3. Defaults to `1`.

    Returns:
        `(views, flipped)`: uint8 `(num_clips * num_crops, T, crop_size,
        crop_size, 3)` ordered clip-major, and whether the clip was flipped.
    """
    height, width = clips.shape[2:4]
    scale = short_side / min(height, width)
    resized = (max(int(round(height * scale)), 1), max(int(round(width * scale)), 1))
    if not training:
        boxes = eval_crop_boxes(*resized, crop_size, num_crops)
        views = [crop_and_resize(clip, box, scale, crop_size) for clip in clips for box in boxes]
        return np.stack(views), False
    if train_crop == "random_resized":
        box = random_resized_crop_box(*resized, rng)
    elif train_crop == "multi_scale":
        box = multi_scale_crop_box(*resized, rng)
    else:
        raise ValueError(
            f"`train_crop` must be one of {TRAIN_CROPS}. Received: train_crop={train_crop}"
        )
    views = np.stack([crop_and_resize(clip, box, scale, crop_size) for clip in clips])
    flipped = bool(flip and rng.random() < 0.5)
    if flipped:
        # Frame by frame with OpenCV: ~15x faster than copying a reversed numpy view.
        mirrored = np.empty_like(views)
        for index in np.ndindex(views.shape[:2]):
            cv2.flip(views[index], 1, dst=mirrored[index])
        views = mirrored
    return views, flipped
