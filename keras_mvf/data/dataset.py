"""`build_dataset`: manifests, list files or TFRecords to batches of uint8 clips."""

import collections
import logging
import os
import threading

import cv2
import keras
import numpy as np
import tensorflow as tf

from keras_mvf.data import ingraph
from keras_mvf.data.annotations import (
    NO_LABEL,
    Manifest,
    index_annotations,
    is_manifest,
    load_manifest,
    parse_list_file,
)
from keras_mvf.data.sampling import sample_indices
from keras_mvf.data.tfrecord import parse_sequence_example, read_index, tfrecord_files
from keras_mvf.data.transforms import transform_clips
from keras_mvf.data.video import read_frames, read_image_frames

logger = logging.getLogger("keras_mvf.data")

# Bad videos in a row an element may replace before the iteration fails.
_MAX_SUBSTITUTES = 10


class SkippedVideos:
    """Thread-safe tally of the videos a dataset skipped because they would not decode.

    `build_dataset` fills one (its `skipped` argument, also reachable as the
    returned dataset's `skipped_videos` attribute); read `count` and
    `reasons`, print `summary()`, or let `SkippedVideosCallback` report it at
    every epoch end.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.reasons = collections.OrderedDict()

    def add(self, name, reason):
        """Records that video `name` was skipped, and why."""
        with self._lock:
            self.reasons[name] = str(reason)

    @property
    def count(self):
        """Number of distinct videos skipped since the last `reset`."""
        return len(self.reasons)

    def summary(self, limit=5):
        """One line per skipped video (at most `limit`), after a count."""
        with self._lock:
            items = list(self.reasons.items())
        lines = [f"{len(items)} video(s) skipped because they could not be decoded"]
        lines += [f"  {name}: {reason}" for name, reason in items[:limit]]
        if len(items) > limit:
            lines.append(f"  ... and {len(items) - limit} more")
        return "\n".join(lines)

    def reset(self):
        """Forgets every skipped video (the callback does this after each epoch)."""
        with self._lock:
            self.reasons.clear()


class SkippedVideosCallback(keras.callbacks.Callback):
    """Logs the `SkippedVideos` summary at each epoch end and adds `skipped_videos` to the logs.

    Args:
        skipped: the `SkippedVideos` the training dataset fills.
    """

    def __init__(self, skipped):
        super().__init__()
        self.skipped = skipped

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["skipped_videos"] = self.skipped.count
        if self.skipped.count:
            logger.warning("Epoch %d: %s", epoch + 1, self.skipped.summary())
        self.skipped.reset()


class _ClipLoader:
    """Sampling, decoding and transforms for one video; skips or raises on bad input."""

    def __init__(
        self,
        training,
        num_frames,
        sampling,
        frame_interval,
        num_clips,
        num_crops,
        crop_size,
        short_side,
        train_crop,
        flip,
        label_swap,
        short_video,
        skip_bad_videos,
        skipped,
    ):
        self.training = training
        self.num_frames = num_frames
        self.sampling = sampling
        self.frame_interval = frame_interval
        self.num_clips = 1 if training else num_clips
        self.num_crops = 1 if training else num_crops
        self.crop_size = crop_size
        self.short_side = short_side
        self.train_crop = train_crop
        self.flip = flip
        self.label_swap = dict(label_swap or {})
        self.short_video = short_video
        self.skip_bad_videos = skip_bad_videos
        self.skipped = skipped

    @property
    def output_shape(self):
        clip = (self.num_frames, self.crop_size, self.crop_size, 3)
        views = self.num_clips * self.num_crops
        return clip if views == 1 else (views, *clip)

    def __call__(self, read, total_frames, label, seed, name):
        """Returns `(clip or views uint8, label int32, ok bool)` for one video.

        `read(indices)` returns the frames at `indices`; a failure there (or a
        bad frame count) skips the video when `skip_bad_videos` is set.
        """
        rng = np.random.default_rng(int(seed) & 0xFFFFFFFFFFFFFFFF)
        try:
            indices = sample_indices(
                self.sampling,
                int(total_frames),
                self.num_frames,
                self.frame_interval,
                self.training,
                self.num_clips,
                rng,
                self.short_video,
            )
            frames = read(indices.reshape(-1))
            clips = frames.reshape(self.num_clips, self.num_frames, *frames.shape[1:])
            views, flipped = transform_clips(
                clips,
                self.training,
                rng,
                self.crop_size,
                self.short_side,
                self.train_crop,
                self.flip,
                self.num_crops,
            )
        except (OSError, ValueError, cv2.error) as error:
            if not self.skip_bad_videos:
                raise
            logger.warning("Skipping video %s: %s", name, error)
            self.skipped.add(name, error)
            return np.zeros(self.output_shape, np.uint8), np.int32(-1), False
        if flipped:
            label = self.label_swap.get(int(label), label)
        return views.reshape(self.output_shape), np.int32(label), True

    def from_jpegs(self, jpegs, label, seed):
        """`(clip or views uint8, label int32)` from a packed video's JPEGs, in TensorFlow ops.

        The same clips as `__call__` (see `keras_mvf.data.ingraph`); `seed` is
        an int64 scalar.
        """
        views, flipped = ingraph.load_clips(
            jpegs,
            tf.stack([seed, tf.constant(0, tf.int64)]),
            training=self.training,
            sampling=self.sampling,
            num_frames=self.num_frames,
            frame_interval=self.frame_interval,
            num_clips=self.num_clips,
            num_crops=self.num_crops,
            crop_size=self.crop_size,
            short_side=self.short_side,
            train_crop=self.train_crop,
            flip=self.flip,
            short_video=self.short_video,
        )
        if self.label_swap:
            keys = tf.constant(list(self.label_swap), tf.int32)
            hit = tf.equal(keys, label)
            values = tf.constant(list(self.label_swap.values()), tf.int32)
            swapped = tf.gather(values, tf.argmax(tf.cast(hit, tf.int32)))
            label = tf.where(flipped & tf.reduce_any(hit), swapped, label)
        return tf.reshape(views, self.output_shape), label


def load_source(location, root=None):
    """What `build_dataset` reads at `location`, with its class names and number of videos.

    Returns:
        `(source, classes, num_videos)`: a loaded `Manifest` for a manifest
        file, else the location of packed TFRecords (a folder or a glob),
        whose class names and count come from the set's index (both `None`
        for a set packed without one).
    """
    shards = tfrecord_files(location)
    if not shards:
        manifest = load_manifest(location, root)
        return manifest, manifest.classes, len(manifest.entries)
    index = read_index(shards)
    return (location, index[1], sum(index[0])) if index else (location, None, None)


def _resolve_manifest(manifest, root):
    """A `Manifest` from a `Manifest`, a manifest file or a list file (indexed now)."""
    if isinstance(manifest, Manifest):
        return manifest
    path = os.fspath(manifest)
    if is_manifest(path):
        return load_manifest(path, root)
    if root is None:
        raise ValueError(
            f"A list file needs `root=` (the folder its paths are relative to). "
            f"Received: manifest={path}, root=None"
        )
    annotations, classes = parse_list_file(path)
    entries, problems = index_annotations(annotations, root)
    if problems:
        logger.warning(
            "%d of the videos listed in %s are missing or unreadable:\n%s",
            len(problems),
            path,
            "\n".join(problems[:10]),
        )
    return Manifest(entries, classes, root)


def _video_reader(manifest, entry):
    path = manifest.full_path(entry)
    if entry.kind == "frames":
        return lambda indices: read_image_frames(path, indices, entry.template, entry.start_index)
    return lambda indices: read_frames(path, indices)


def build_dataset(
    manifest,
    training,
    num_frames=8,
    sampling="dense",
    frame_interval=8,
    batch_size=8,
    crop_size=224,
    short_side=256,
    train_crop="random_resized",
    flip=True,
    label_swap=None,
    num_clips=1,
    num_crops=1,
    root=None,
    seed=None,
    deterministic=False,
    skip_bad_videos=True,
    skipped=None,
    short_video="wrap",
    input_context=None,
    drop_remainder=None,
    shuffle_buffer=64,
    data_service=None,
):
    """A `tf.data.Dataset` of `(clips, labels)` batches for training or evaluation.

    Decoding runs in parallel (`tf.data.AUTOTUNE` workers, one decoder thread
    each) and batches are prefetched. Training reshuffles the videos and draws
    new frames and crops every epoch; with `seed` and `deterministic=True` the
    whole stream is reproducible. Videos are decoded in Python (OpenCV or
    PyAV); packed TFRecords in TensorFlow ops only (`keras_mvf.data.ingraph`),
    with the same sampling and transforms.

    Args:
        manifest: a `Manifest`, a manifest file, a list file (with `root=`;
            indexed on the spot), or packed TFRecords (a folder written by
            `keras-mvf data pack`, a `.tfrecord` file or a glob pattern). Any
            of these, and the videos a manifest lists, may be URIs (`gs://...`;
            a video is copied to a local temporary file to decode).
        training: training (one random clip, augmented) or evaluation.
        num_frames: frames per clip. Defaults to `8`.
        sampling: `"dense"` (Kinetics) or `"uniform"` (TSN segments).
        frame_interval: step between frames for dense sampling. Defaults to `8`.
        batch_size: clips (videos) per batch; with `input_context` the
            global batch size, divided among replicas. Defaults to `8`.
        crop_size: output side. Defaults to `224`.
        short_side: short side crops are chosen at. Defaults to `256`.
        train_crop: `"random_resized"` or `"multi_scale"`.
        flip: random horizontal flips in training (turn off for
            Something-Something). Defaults to `True`.
        label_swap: `{label: label}` applied to flipped clips (for classes
            whose meaning a mirror changes; give both directions).
        num_clips: evaluation clips per video. Defaults to `1`.
        num_crops: evaluation crops per clip, 1 (centre) or 3. Defaults to `1`.
        root: folder for relative paths; defaults to the manifest's.
        seed: seed for shuffling, sampling and augmentation.
        deterministic: keep element order and results fixed under
            parallelism. Defaults to `False` (faster).
        skip_bad_videos: skip videos that fail to decode (logged and counted in
            `skipped`) instead of raising. Defaults to `True`. From videos a
            skipped video is replaced by the next one in the manifest, so the
            dataset keeps one element per entry and a known cardinality (no
            "ran out of data" warning in `fit`'s validation). TFRecords hold
            only videos that decoded when packed, and their records are
            checksummed: a damaged record raises an error whatever this is.
        skipped: a `SkippedVideos` to count into; a new one by default. Either
            way it is the returned dataset's `skipped_videos` attribute.
        short_video: `"wrap"` or `"last"` for dense clips longer than the video.
        input_context: a `tf.distribute.InputContext` (from
            `strategy.distribute_datasets_from_function`): each input pipeline
            then reads only its own share of the videos (or shards).
        drop_remainder: drop a last partial batch. Defaults to `training`.
        shuffle_buffer: TFRecord training only: videos in the shuffle buffer
            (each holds all its frames). Defaults to `64`.
        data_service: TFRecords only: the address of a tf.data service
            dispatcher (`"grpc://host:port"`, see `keras-mvf data serve`). Its
            workers then read, decode and augment the clips, each video once
            per epoch (`"distributed_epoch"`), in no fixed order; this process
            only batches them.

    Returns:
        A `tf.data.Dataset` of `(clips uint8, labels int32 (batch,))`; clips
        are `(batch, num_frames, crop_size, crop_size, 3)`, or in evaluation
        with `num_clips * num_crops > 1` views `(batch, views, num_frames,
        crop_size, crop_size, 3)`, clip-major. Its cardinality is known for
        manifests and for TFRecords packed with an index (not through a
        tf.data service).
    """
    for name, value in (
        ("num_frames", num_frames),
        ("batch_size", batch_size),
        ("crop_size", crop_size),
        ("short_side", short_side),
        ("num_clips", num_clips),
        ("frame_interval", frame_interval),
    ):
        if not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value}")
    skipped = SkippedVideos() if skipped is None else skipped
    loader = _ClipLoader(
        training,
        num_frames,
        sampling,
        frame_interval,
        num_clips,
        num_crops,
        crop_size,
        short_side,
        train_crop,
        flip,
        label_swap,
        short_video,
        skip_bad_videos,
        skipped,
    )
    # Fails early on a bad `sampling`, `num_crops` or `short_video` value.
    sample_indices(sampling, 1, num_frames, frame_interval, training, 1, None, short_video)
    if not training and num_crops not in (1, 3):
        raise ValueError(f"`num_crops` must be 1 or 3. Received: num_crops={num_crops}")
    options = tf.data.Options()
    options.deterministic = deterministic
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF

    files = tfrecord_files(manifest) if not isinstance(manifest, Manifest) else []
    if data_service and not files:
        raise ValueError(
            "`data_service` needs packed TFRecords (`keras-mvf data pack`): videos are decoded "
            f"in Python, which a tf.data service cannot run. Received: {manifest}"
        )
    if files:
        dataset, count = _tfrecord_elements(
            files, training, loader, input_context, shuffle_buffer, seed, deterministic
        )
        if data_service:
            # Every worker reads a part of the shards: the count holds only for all together.
            dataset = dataset.apply(
                tf.data.experimental.service.distribute("distributed_epoch", data_service)
            )
        elif count is not None:
            dataset = dataset.apply(tf.data.experimental.assert_cardinality(count))
        if input_context is None:
            # One shard file per worker when there are enough files, else by record.
            options.experimental_distribute.auto_shard_policy = (
                tf.data.experimental.AutoShardPolicy.AUTO
            )
    else:
        dataset = _video_elements(
            _resolve_manifest(manifest, root), training, loader, input_context, seed, deterministic
        )
        dataset = dataset.map(_drop_ok)  # bad videos were replaced, not dropped
        if input_context is None:
            # Elements are video indices, not files: shard by element.
            options.experimental_distribute.auto_shard_policy = (
                tf.data.experimental.AutoShardPolicy.DATA
            )
    drop_remainder = training if drop_remainder is None else drop_remainder
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.prefetch(tf.data.AUTOTUNE).with_options(options)
    dataset.skipped_videos = skipped
    return dataset


def _drop_ok(clip, label, ok):
    return clip, label


def _with_seeds(dataset, seed):
    """Pairs every element with a random int64 that changes every epoch."""
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    return tf.data.Dataset.zip((dataset, seeds))


def _set_shapes(loader, clip, label, ok):
    clip.set_shape(loader.output_shape)
    label.set_shape(())
    ok.set_shape(())
    return clip, label, ok


def _video_elements(manifest, training, loader, input_context, seed, deterministic):
    """`(clip, label, ok)` elements decoded from video files and frame folders."""
    entries = manifest.entries
    if not entries:
        raise ValueError("The manifest lists no readable video.")
    unlabelled = [entry.path for entry in entries if entry.label == NO_LABEL]
    if training and unlabelled:
        raise ValueError(
            f"Training needs labelled videos; {len(unlabelled)} have no label "
            f"(NO_LABEL), the first {unlabelled[0]}."
        )
    dataset = tf.data.Dataset.range(len(entries))
    if input_context is not None:
        dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if training:
        dataset = dataset.shuffle(len(entries), seed=seed, reshuffle_each_iteration=True)

    def load(index, element_seed):
        # A bad video is replaced by the next ones in the manifest, so the dataset
        # keeps one element per entry (and Keras a known number of steps).
        attempts = min(_MAX_SUBSTITUTES, len(entries))
        for attempt in range(attempts):
            entry = entries[(int(index) + attempt) % len(entries)]
            clip, label, ok = loader(
                _video_reader(manifest, entry),
                entry.num_frames,
                entry.label,
                element_seed,
                entry.path,
            )
            if ok:
                return clip, label, ok
        raise ValueError(
            f"{attempts} videos in a row could not be decoded, the "
            f"last {entry.path}: {loader.skipped.reasons[entry.path]}"
        )

    def load_tf(index, element_seed):
        outputs = tf.numpy_function(load, [index, element_seed], [tf.uint8, tf.int32, tf.bool])
        return _set_shapes(loader, *outputs)

    return _with_seeds(dataset, seed).map(
        load_tf, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic
    )


def _tfrecord_elements(files, training, loader, input_context, shuffle_buffer, seed, deterministic):
    """`(clip, label)` elements decoded from packed TFRecord shards, in TensorFlow ops.

    Returns the dataset and its number of elements (its share of the records),
    from the set's index; `None` without an index.
    """
    index = read_index(files)
    dataset = tf.data.Dataset.from_tensor_slices(files)
    count = sum(index[0]) if index else None
    pipelines = input_context.num_input_pipelines if input_context is not None else 1
    by_file = input_context is not None and len(files) >= pipelines
    if by_file:
        dataset = dataset.shard(pipelines, input_context.input_pipeline_id)
        count = sum(index[0][input_context.input_pipeline_id :: pipelines]) if index else None
    if training:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), 8),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    if input_context is not None and not by_file:
        dataset = dataset.shard(pipelines, input_context.input_pipeline_id)
        count = len(range(input_context.input_pipeline_id, count, pipelines)) if index else None
    if training:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)

    def load(serialized, element_seed):
        jpegs, label = parse_sequence_example(serialized, labelled=training)
        return loader.from_jpegs(jpegs, label, element_seed)

    dataset = _with_seeds(dataset, seed).map(
        load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic
    )
    return dataset, count
