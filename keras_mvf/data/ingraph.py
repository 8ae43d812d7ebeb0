"""Clips from packed JPEG frames in TensorFlow ops only, for the TFRecord path.

The sampling of `sampling.py` and the transforms of `transforms.py`, written
with `tf.io.decode_jpeg`, `tf.image` and stateless random ops, so that a whole
TFRecord pipeline is one TensorFlow graph: it runs without Python (no GIL) and
can be serialised to a tf.data service. Evaluation (no randomness) picks the
very frames and boxes the video path picks. Training draws from the same
distributions, from a per-element seed, but not the same numbers as the video
path's numpy generator. Training crops are decoded with
`tf.io.decode_and_crop_jpeg`, which skips the JPEG blocks outside the box.
"""

import math

import tensorflow as tf

from keras_mvf.data import transforms

# The decoder libjpeg (and so OpenCV) uses by default; TensorFlow's own default is coarser.
_DCT = "INTEGER_ACCURATE"
_F64 = tf.float64


def _floor(value):
    return tf.cast(tf.floor(value), tf.int64)


def _round(value):
    # Half to even, as Python's `round` in `transforms.py`.
    return tf.cast(tf.round(value), tf.int64)


def _f64(value):
    return tf.cast(value, _F64)


def sample_indices(
    sampling, total_frames, num_frames, frame_interval, training, num_clips, seed, short_video
):
    """`sampling.sample_indices` in TensorFlow: int64 `(num_clips, num_frames)`.

    `seed` is a stateless seed (int64 `(2,)`), used in training only.
    """
    total = tf.cast(total_frames, tf.int64)
    if sampling == "dense":
        span = (num_frames - 1) * frame_interval + 1
        available = _f64(tf.maximum(total - span + 1, 1))
        if training:
            starts = _floor(tf.random.stateless_uniform([num_clips], seed, dtype=_F64) * available)
        else:
            starts = _floor((tf.range(num_clips, dtype=_F64) + 0.5) * available / num_clips)
        steps = tf.range(num_frames, dtype=tf.int64) * frame_interval
        indices = starts[:, None] + steps[None, :]
        return indices % total if short_video == "wrap" else tf.minimum(indices, total - 1)
    segment = _f64(total) / num_frames
    if training:
        offsets = tf.random.stateless_uniform([num_clips, num_frames], seed, dtype=_F64)
    else:
        centres = (tf.range(num_clips, dtype=_F64) + 0.5) / num_clips
        offsets = tf.broadcast_to(centres[:, None], [num_clips, num_frames])
    indices = _floor((tf.range(num_frames, dtype=_F64)[None, :] + offsets) * segment)
    return tf.clip_by_value(indices, 0, total - 1)


def random_resized_crop_box(height, width, seed):
    """`transforms.random_resized_crop_box` in TensorFlow: int64 `(y, x, h, w)`."""
    (low, high), (ratio_low, ratio_high) = transforms.AREA_SCALE, transforms.ASPECT_RATIO
    draws = tf.random.stateless_uniform([transforms.CROP_TRIES, 4], seed, dtype=_F64)
    target = _f64(height * width) * (low + (high - low) * draws[:, 0])
    log_low, log_high = math.log(ratio_low), math.log(ratio_high)
    aspect = tf.exp(log_low + (log_high - log_low) * draws[:, 1])
    w, h = _round(tf.sqrt(target * aspect)), _round(tf.sqrt(target / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = tf.argmax(tf.cast(fits, tf.int32))  # the first box that fits
    h, w = h[first], w[first]
    y, x = (
        _floor(draws[first, 2] * _f64(height - h + 1)),
        _floor(draws[first, 3] * _f64(width - w + 1)),
    )
    # Else the largest centred box of extreme ratio.
    frame_aspect = _f64(width) / _f64(height)
    narrow, wide = frame_aspect < ratio_low, frame_aspect > ratio_high
    fallback_w = tf.where(wide, _round(_f64(height) * ratio_high), width)
    fallback_h = tf.where(narrow, _round(_f64(width) / ratio_low), height)
    fallback = [(height - fallback_h) // 2, (width - fallback_w) // 2, fallback_h, fallback_w]
    return tf.where(tf.reduce_any(fits), tf.stack([y, x, h, w]), tf.stack(fallback))


def multi_scale_crop_box(height, width, seed):
    """`transforms.multi_scale_crop_box` in TensorFlow: int64 `(y, x, h, w)`."""
    scales = transforms.CROP_SCALES
    sizes = tf.maximum(_floor(_f64(tf.minimum(height, width)) * tf.constant(scales, _F64)), 1)
    pairs = [
        (i, j)
        for i in range(len(scales))
        for j in range(len(scales))
        if abs(i - j) <= transforms.MAX_DISTORT
    ]
    draws = tf.random.stateless_uniform([3], seed, dtype=_F64)
    pair = tf.gather(tf.constant(pairs, tf.int64), _floor(draws[0] * len(pairs)))
    h, w = sizes[pair[0]], sizes[pair[1]]
    y, x = _floor(draws[1] * _f64(height - h + 1)), _floor(draws[2] * _f64(width - w + 1))
    return tf.stack([y, x, h, w])


def eval_crop_boxes(height, width, crop_size, num_crops):
    """`transforms.eval_crop_boxes` in TensorFlow: a list of int64 `(y, x, h, w)`."""
    h, w = tf.minimum(height, crop_size), tf.minimum(width, crop_size)
    y, x = (height - h) // 2, (width - w) // 2
    if num_crops == 1:
        return [tf.stack([y, x, h, w])]
    along_height = height > width
    return [
        tf.where(along_height, tf.stack([top, x, h, w]), tf.stack([y, left, h, w]))
        for top, left in ((0, 0), (y, x), (height - h, width - w))
    ]


def _window(box, scale, frame_height, frame_width):
    """The box (at `scale` x the frame) in frame pixels: `(top, left, bottom, right)`."""
    y, x, h, w = tf.unstack(box)
    top = tf.minimum(_floor(_f64(y) / scale), frame_height - 1)
    left = tf.minimum(_floor(_f64(x) / scale), frame_width - 1)
    bottom = tf.minimum(tf.maximum(_round(_f64(y + h) / scale), top + 1), frame_height)
    right = tf.minimum(tf.maximum(_round(_f64(x + w) / scale), left + 1), frame_width)
    return top, left, bottom, right


def _resize(crops, window, size):
    """`transforms.crop_and_resize`'s resize of cut-out crops `(T, h, w, 3)` to `size`."""
    top, left, bottom, right = window
    shrink = tf.minimum(size / _f64(bottom - top), size / _f64(right - left))
    resized = tf.cond(
        shrink < transforms.AREA_RESIZE_BELOW,
        lambda: tf.image.resize(crops, [size, size], method="area"),
        lambda: tf.image.resize(crops, [size, size], method="bilinear"),
    )
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def load_clips(
    jpegs,
    seed,
    *,
    training,
    sampling,
    num_frames,
    frame_interval,
    num_clips,
    num_crops,
    crop_size,
    short_side,
    train_crop,
    flip,
    short_video,
):
    """Clips of one packed video, as `transforms.transform_clips` makes them from its frames.

    Args:
        jpegs: string `(frames,)`, one JPEG per frame.
        seed: int64 `(2,)` stateless seed of this element.
        other arguments: as `keras_mvf.data.build_dataset` (`num_clips` and
            `num_crops` are 1 in training).

    Returns:
        `(views, flipped)`: uint8 `(num_clips * num_crops, num_frames,
        crop_size, crop_size, 3)`, clip-major, and whether it was flipped.
    """
    sample_seed, box_seed, flip_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=3)
    )
    total = tf.size(jpegs, out_type=tf.int64)
    tf.debugging.assert_positive(total, message="A packed video holds no frame")
    indices = sample_indices(
        sampling, total, num_frames, frame_interval, training, num_clips, sample_seed, short_video
    )
    wanted = [tf.gather(jpegs, index) for index in tf.unstack(tf.reshape(indices, [-1]))]
    shape = tf.cast(tf.image.extract_jpeg_shape(jpegs[0]), tf.int64)
    frame_height, frame_width = shape[0], shape[1]
    scale = short_side / _f64(tf.minimum(frame_height, frame_width))
    height = tf.maximum(_round(_f64(frame_height) * scale), 1)
    width = tf.maximum(_round(_f64(frame_width) * scale), 1)
    if not training:
        frames = tf.stack([tf.io.decode_jpeg(j, channels=3, dct_method=_DCT) for j in wanted])
        frames = tf.reshape(frames, [num_clips, num_frames, frame_height, frame_width, 3])
        views = []
        for clip in tf.unstack(frames, num=num_clips):
            for box in eval_crop_boxes(height, width, crop_size, num_crops):
                top, left, bottom, right = window = _window(box, scale, frame_height, frame_width)
                views.append(_resize(clip[:, top:bottom, left:right], window, crop_size))
        return tf.stack(views), tf.constant(False)
    if train_crop == "random_resized":
        box = random_resized_crop_box(height, width, box_seed)
    elif train_crop == "multi_scale":
        box = multi_scale_crop_box(height, width, box_seed)
    else:
        raise ValueError(
            f"`train_crop` must be one of {transforms.TRAIN_CROPS}. Received: "
            f"train_crop={train_crop}"
        )
    top, left, bottom, right = window = _window(box, scale, frame_height, frame_width)
    crop = tf.cast(tf.stack([top, left, bottom - top, right - left]), tf.int32)
    crops = tf.stack(
        [tf.io.decode_and_crop_jpeg(j, crop, channels=3, dct_method=_DCT) for j in wanted]
    )
    clip = _resize(crops, window, crop_size)[None]
    flipped = tf.logical_and(flip, tf.random.stateless_uniform([], flip_seed) < 0.5)
    clip = tf.cond(flipped, lambda: tf.reverse(clip, axis=[-2]), lambda: clip)
    return clip, flipped
