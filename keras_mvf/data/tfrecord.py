"""Sharded TFRecords of JPEG frames in `tf.train.SequenceExample`s.

The layout TF Model Garden's video readers use: per video a context with
`clip/media_id` (bytes), `clip/label/index` (int64) and `clip/label/text`
(bytes), and a feature list `image/encoded` with one JPEG per frame. Shards
are `<prefix>-00000-of-000NN.tfrecord`; `classes.txt` beside them lists the
class names, one per line.
"""

import concurrent.futures
import glob
import os
import re

import cv2
import numpy as np
import tensorflow as tf

from keras_mvf.data.annotations import NO_LABEL
from keras_mvf.data.video import VideoError, read_all_frames, read_image_frames

IMAGE_KEY = "image/encoded"
LABEL_KEY = "clip/label/index"
LABEL_TEXT_KEY = "clip/label/text"
MEDIA_ID_KEY = "clip/media_id"
CLASSES_FILE = "classes.txt"
# `<prefix>-<index>-of-<count>.tfrecord`: a shard of a set of `count` shards.
_SHARD_NAME = re.compile(r"(?P<prefix>.*)-(?P<index>\d+)-of-(?P<count>\d+)\.tfrecord")
# Shards being written, renamed to their `.tfrecord` names once complete.
_PARTIAL = ".partial"


def _all_frames(manifest, entry):
    path = manifest.full_path(entry)
    if entry.kind == "frames":
        return read_image_frames(
            path, np.arange(entry.num_frames), entry.template, entry.start_index
        )
    return read_all_frames(path)


def _resize_short_side(frames, short_side):
    height, width = frames.shape[1:3]
    scale = short_side / min(height, width)
    size = (max(int(round(width * scale)), 1), max(int(round(height * scale)), 1))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return [cv2.resize(frame, size, interpolation=interpolation) for frame in frames]


def _label_text(manifest, entry):
    return "" if entry.label == NO_LABEL else manifest.classes[entry.label]


def _encode_video(manifest, entry, short_side, quality):
    """Serialises one video as a `SequenceExample`, or returns the error as text."""
    try:
        frames = _all_frames(manifest, entry)
    except (OSError, ValueError) as error:
        return None, f"{entry.path}\t{error}"
    if short_side:
        frames = _resize_short_side(frames, short_side)
    jpegs = [
        cv2.imencode(
            ".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
        )[1].tobytes()
        for frame in frames
    ]
    context = tf.train.Features(
        feature={
            MEDIA_ID_KEY: tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[entry.path.encode()])
            ),
            LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[entry.label])),
            LABEL_TEXT_KEY: tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[_label_text(manifest, entry).encode()])
            ),
        }
    )
    images = tf.train.FeatureList(
        feature=[tf.train.Feature(bytes_list=tf.train.BytesList(value=[jpeg])) for jpeg in jpegs]
    )
    example = tf.train.SequenceExample(
        context=context, feature_lists=tf.train.FeatureLists(feature_list={IMAGE_KEY: images})
    )
    return example.SerializeToString(), None


def pack_tfrecords(
    manifest,
    output_dir,
    num_shards=8,
    prefix="clips",
    short_side=256,
    quality=90,
    workers=4,
    progress=None,
):
    """Writes every video of a manifest into `num_shards` TFRecord files.

    Args:
        manifest: a loaded `Manifest`.
        output_dir: folder for the shards and `classes.txt` (created).
        num_shards: number of shard files; video `i` goes to shard
            `i % num_shards`. Defaults to `8`.
        prefix: shard file name prefix. Defaults to `"clips"`.
        short_side: resize frames so their short side is this before JPEG
            encoding, or `None` to keep the size. Defaults to `256`.
        quality: JPEG quality. Defaults to `90`.
        workers: decoding threads. Defaults to `4`.
        progress: optional callable, called with the number done so far.

    A set already in `output_dir` under the same `prefix` (of any shard count)
    is replaced: the new shards are written under temporary names, renamed into
    place once all are complete, and only then are the old set's other shards
    removed. A crash leaves the old set whole (and `.partial` files, which no
    reader picks up). Sets under other prefixes are kept; read them with a glob
    pattern, as a folder must hold one set only (see `tfrecord_files`).

    Returns:
        `(shard paths, problems)`: problems has one `path<TAB>reason` line per
        video that could not be decoded (and was left out).
    """
    if int(num_shards) < 1:
        raise ValueError(f"`num_shards` must be positive. Received: num_shards={num_shards}")
    os.makedirs(output_dir, exist_ok=True)
    old = glob.glob(os.path.join(glob.escape(output_dir), f"{glob.escape(prefix)}-*-of-*.tfrecord"))
    paths = [
        os.path.join(output_dir, f"{prefix}-{i:05d}-of-{num_shards:05d}.tfrecord")
        for i in range(num_shards)
    ]
    writers = [tf.io.TFRecordWriter(path + _PARTIAL) for path in paths]
    problems = []
    try:
        with concurrent.futures.ThreadPoolExecutor(max(int(workers), 1)) as pool:
            results = pool.map(
                lambda e: _encode_video(manifest, e, short_side, quality), manifest.entries
            )
            for done, (record, problem) in enumerate(results, start=1):
                if record is None:
                    problems.append(problem)
                else:
                    writers[(done - 1) % num_shards].write(record)
                if progress is not None:
                    progress(done)
    finally:
        for writer in writers:
            writer.close()
    classes = os.path.join(output_dir, CLASSES_FILE)
    with open(classes + _PARTIAL, "w", encoding="utf-8") as file:
        file.write("".join(f"{name}\n" for name in manifest.classes))
    for path in [*paths, classes]:
        os.replace(path + _PARTIAL, path)
    for path in set(old) - set(paths):
        match = _SHARD_NAME.fullmatch(os.path.basename(path))
        if match and match["prefix"] == prefix:
            os.remove(path)
    return paths, problems


def _set_name(path):
    """`<prefix>-*-of-<count>.tfrecord` for a shard, the path itself for another file."""
    match = _SHARD_NAME.fullmatch(os.path.basename(path))
    return f"{match['prefix']}-*-of-{match['count']}.tfrecord" if match else path


def tfrecord_files(location):
    """The sorted shard files of a pack folder or a glob pattern (`[]` if not TFRecords).

    Raises:
        ValueError: naming them, when the files belong to more than one set
            (`<prefix>-*-of-<count>`: two packs, which would yield every video
            of both), or when a folder's set lacks some of its shards.
    """
    location = os.fspath(location)
    folder = os.path.isdir(location)
    if folder:
        files = glob.glob(os.path.join(glob.escape(location), "*.tfrecord"))
    elif location.endswith(".tfrecord") or glob.has_magic(location):
        files = glob.glob(location)
    else:
        return []
    files.sort()
    sets = sorted({_set_name(path) for path in files})
    if len(sets) > 1:
        raise ValueError(
            f"{location} holds {len(sets)} sets of TFRecord shards, {sets[0]} and "
            f"{sets[1]}{' and more' if len(sets) > 2 else ''}: reading them together "
            f"would mix (or repeat) videos. Pick one with a glob pattern, or remove the others."
        )
    match = _SHARD_NAME.fullmatch(os.path.basename(files[0])) if folder and files else None
    if match and len(files) != int(match["count"]):
        raise ValueError(
            f"{location}: the set {sets[0]} has {len(files)} of its {int(match['count'])} shards."
        )
    return files


def parse_sequence_example(serialized):
    """Parses one packed video into `(jpeg strings (frames,), label int32, media id)`."""
    context, sequence = tf.io.parse_single_sequence_example(
        serialized,
        context_features={
            LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
            MEDIA_ID_KEY: tf.io.FixedLenFeature([], tf.string, default_value=""),
        },
        sequence_features={IMAGE_KEY: tf.io.FixedLenSequenceFeature([], tf.string)},
    )
    return sequence[IMAGE_KEY], tf.cast(context[LABEL_KEY], tf.int32), context[MEDIA_ID_KEY]


def decode_jpegs(jpegs, indices):
    """Decodes the JPEG frames at `indices` into uint8 RGB `(len(indices), H, W, 3)`."""
    frames = []
    for index in indices:
        image = cv2.imdecode(np.frombuffer(jpegs[index], np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise VideoError(f"Frame {index} is not a decodable JPEG")
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    return np.stack(frames)
