"""Sharded TFRecords of JPEG frames in `tf.train.SequenceExample`s.

The layout TF Model Garden's video readers use: per video a context with
`clip/media_id` (bytes), `clip/label/index` (int64) and `clip/label/text`
(bytes), and a feature list `image/encoded` with one JPEG per frame. Shards
are `<prefix>-00000-of-000NN.tfrecord`; beside them, `classes.txt` lists the
class names, one per line, and the index `<prefix>.index-<host>-of-<hosts>.json`
(one per packing host) holds the class names and every shard's record count.
Every path may be a URI (`gs://...`): files go through `tf.io.gfile`.
"""

import concurrent.futures
import glob
import json
import os
import re

import cv2
import numpy as np
import tensorflow as tf

from keras_mvf.data.annotations import NO_LABEL
from keras_mvf.data.video import read_all_frames, read_image_frames
from keras_mvf.utils import files

IMAGE_KEY = "image/encoded"
LABEL_KEY = "clip/label/index"
LABEL_TEXT_KEY = "clip/label/text"
MEDIA_ID_KEY = "clip/media_id"
CLASSES_FILE = "classes.txt"
# `<prefix>-<index>-of-<count>.tfrecord`: a shard of a set of `count` shards.
_SHARD_NAME = re.compile(r"(?P<prefix>.*)-(?P<index>\d+)-of-(?P<count>\d+)\.tfrecord")
# The index of one host's shards: `<prefix>.index-<host>-of-<hosts>.json`.
_INDEX_NAME = re.compile(r"(?P<prefix>.*)\.index-(?P<host>\d+)-of-(?P<hosts>\d+)\.json")
INDEX_VERSION = 1
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


def _check_hosts(num_shards, num_hosts, host_index):
    for name, value in (("num_shards", num_shards), ("num_hosts", num_hosts)):
        if not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value}")
    if not isinstance(host_index, int | np.integer) or not 0 <= host_index < num_hosts:
        raise ValueError(
            f"`host_index` must be in [0, num_hosts={num_hosts}). Received: host_index={host_index}"
        )
    if num_shards < num_hosts:
        raise ValueError(
            f"Each host writes whole shards: `num_shards` ({num_shards}) must be at least "
            f"`num_hosts` ({num_hosts})."
        )


def host_videos(manifest, num_shards=8, num_hosts=1, host_index=0):
    """`[(video number, entry)]` that host `host_index` of `num_hosts` packs.

    Video `i` goes to shard `i % num_shards`, and host `h` writes the shards
    `s` with `s % num_hosts == h`: the hosts' shares are disjoint and together
    hold every video.
    """
    _check_hosts(num_shards, num_hosts, host_index)
    return [
        (i, entry)
        for i, entry in enumerate(manifest.entries)
        if i % num_shards % num_hosts == host_index
    ]


def pack_tfrecords(
    manifest,
    output_dir,
    num_shards=8,
    prefix="clips",
    short_side=256,
    quality=90,
    workers=4,
    progress=None,
    num_hosts=1,
    host_index=0,
):
    """Writes the videos of a manifest into `num_shards` TFRecord files and their index.

    Args:
        manifest: a loaded `Manifest`.
        output_dir: folder (or URI) for the shards, `classes.txt` and the index
            (created).
        num_shards: number of shard files in the whole set; video `i` goes to
            shard `i % num_shards`. Defaults to `8`.
        prefix: shard file name prefix. Defaults to `"clips"`.
        short_side: resize frames so their short side is this before JPEG
            encoding, or `None` to keep the size. Defaults to `256`.
        quality: JPEG quality. Defaults to `90`.
        workers: decoding threads. Defaults to `4`.
        progress: optional callable, called with the number done so far.
        num_hosts, host_index: pack on `num_hosts` hosts at once, each running
            this with its own `host_index`: it writes the shards `s` with
            `s % num_hosts == host_index` (see `host_videos`) and its part of
            the index. Defaults to one host.

    Each host writes its shards under temporary names, renames them into place
    once all are complete, then writes its index part (the commit marker: a
    reader takes the set for whole once every host's part is there), and only
    then removes a set packed earlier under the same `prefix` with another
    shard or host count. On one host a crash leaves the old set whole (and
    `.partial` files, which no reader picks up). Sets under other prefixes are
    kept; read them with a glob pattern, as a folder must hold one set only
    (see `tfrecord_files`).

    Returns:
        `(shard paths, problems)` of this host: problems has one
        `path<TAB>reason` line per video that could not be decoded (and was
        left out).
    """
    videos = host_videos(manifest, num_shards, num_hosts, host_index)
    output_dir = os.fspath(output_dir)
    files.makedirs(output_dir)
    names = [f"{prefix}-{i:05d}-of-{num_shards:05d}.tfrecord" for i in range(num_shards)]
    own = range(host_index, num_shards, num_hosts)
    writers = {s: tf.io.TFRecordWriter(files.join(output_dir, names[s]) + _PARTIAL) for s in own}
    records = dict.fromkeys(own, 0)
    problems = []
    try:
        with concurrent.futures.ThreadPoolExecutor(max(int(workers), 1)) as pool:
            results = pool.map(
                lambda video: _encode_video(manifest, video[1], short_side, quality), videos
            )
            for done, ((number, _), (record, problem)) in enumerate(
                zip(videos, results, strict=True), start=1
            ):
                if record is None:
                    problems.append(problem)
                else:
                    writers[number % num_shards].write(record)
                    records[number % num_shards] += 1
                if progress is not None:
                    progress(done)
    finally:
        for writer in writers.values():
            writer.close()
    paths = [files.join(output_dir, names[s]) for s in own]
    for path in paths:
        files.replace(path + _PARTIAL, path)
    files.write_atomically(
        files.join(output_dir, CLASSES_FILE), "".join(f"{name}\n" for name in manifest.classes)
    )
    index = {
        "keras_mvf_shards": INDEX_VERSION,
        "classes": list(manifest.classes),
        "records": {names[s]: count for s, count in records.items()},
    }
    index_name = f"{prefix}.index-{host_index:05d}-of-{num_hosts:05d}.json"
    files.write_atomically(files.join(output_dir, index_name), json.dumps(index, indent=1))
    for name in files.listdir(output_dir):
        shard, part = _SHARD_NAME.fullmatch(name), _INDEX_NAME.fullmatch(name)
        stale_shard = shard and shard["prefix"] == prefix and name not in names
        stale_part = part and part["prefix"] == prefix and int(part["hosts"]) != num_hosts
        if stale_shard or stale_part:
            files.remove(files.join(output_dir, name))
    return paths, problems


def _set_name(path):
    """`<prefix>-*-of-<count>.tfrecord` for a shard, the path itself for another file."""
    match = _SHARD_NAME.fullmatch(os.path.basename(path))
    return f"{match['prefix']}-*-of-{match['count']}.tfrecord" if match else path


def tfrecord_files(location):
    """The sorted shard files of a pack folder or a glob pattern (`[]` if not TFRecords).

    `location` may be a URI (`gs://bucket/shards/`).

    Raises:
        ValueError: naming them, when the files belong to more than one set
            (`<prefix>-*-of-<count>`: two packs, which would yield every video
            of both), or when a folder's set lacks some of its shards.
    """
    location = os.fspath(location)
    folder = files.isdir(location)
    if folder:
        found = [
            files.join(location, n) for n in files.listdir(location) if n.endswith(".tfrecord")
        ]
    elif location.endswith(".tfrecord") or glob.has_magic(location):
        found = files.glob(location)
    else:
        return []
    found.sort()
    sets = sorted({_set_name(path) for path in found})
    if len(sets) > 1:
        raise ValueError(
            f"{location} holds {len(sets)} sets of TFRecord shards, {sets[0]} and "
            f"{sets[1]}{' and more' if len(sets) > 2 else ''}: reading them together "
            f"would mix (or repeat) videos. Pick one with a glob pattern, or remove the others."
        )
    match = _SHARD_NAME.fullmatch(os.path.basename(found[0])) if folder and found else None
    if match and len(found) != int(match["count"]):
        raise ValueError(
            f"{location}: the set {sets[0]} has {len(found)} of its {int(match['count'])} shards."
        )
    return found


def read_index(shard_files):
    """`(records per shard file, class names)` from the index beside a set's shards.

    Args:
        shard_files: shards of one set, as `tfrecord_files` returns them.

    Returns:
        The record counts of `shard_files` (a list, in their order) and the
        class names; `None` for shards packed without an index (by an earlier
        version), whose record count is unknown.

    Raises:
        ValueError: naming the folder, when some hosts have not written their
            part of the index yet (packing is still running, or failed there),
            or when a shard is missing from the index.
    """
    if not shard_files:
        return None
    folder, name = os.path.split(os.fspath(shard_files[0]))
    match = _SHARD_NAME.fullmatch(name)
    if match is None:
        return None
    parts = {}
    for part in files.listdir(folder):
        found = _INDEX_NAME.fullmatch(part)
        if found and found["prefix"] == match["prefix"]:
            parts.setdefault(int(found["hosts"]), {})[int(found["host"])] = part
    if not parts:
        return None
    (hosts, written), *others = sorted(parts.items())
    if others or len(written) != hosts:
        raise ValueError(
            f"{folder}: the index of the set {match['prefix']} is incomplete "
            f"({sorted(v for p in parts.values() for v in p.values())}): some host has "
            f"not finished packing. Wait for every host, or pack again."
        )
    records, classes = {}, None
    for part in written.values():
        with files.open_file(files.join(folder, part)) as file:
            index = json.load(file)
        records.update(index["records"])
        classes = index["classes"]
    missing = [path for path in shard_files if os.path.basename(path) not in records]
    if missing:
        raise ValueError(f"{missing[0]} is not in the index of its set in {folder}: pack again.")
    return [records[os.path.basename(path)] for path in shard_files], classes


def parse_sequence_example(serialized, labelled=False):
    """Parses one packed video into `(jpeg strings (frames,), label int32)`.

    With `labelled`, a video packed without a label (`NO_LABEL`) raises an
    `InvalidArgumentError` naming it when the element is made (training needs labels).
    """
    context, sequence = tf.io.parse_single_sequence_example(
        serialized,
        context_features={
            LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
            MEDIA_ID_KEY: tf.io.FixedLenFeature([], tf.string, default_value=""),
        },
        sequence_features={IMAGE_KEY: tf.io.FixedLenSequenceFeature([], tf.string)},
    )
    label = tf.cast(context[LABEL_KEY], tf.int32)
    if labelled:
        check = tf.debugging.Assert(
            label >= 0,
            [
                "Training needs labelled videos; this packed one has no label (NO_LABEL):",
                context[MEDIA_ID_KEY],
            ],
        )
        with tf.control_dependencies([check]):
            label = tf.identity(label)
    return sequence[IMAGE_KEY], label
