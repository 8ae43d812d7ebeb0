"""Packed TFRecords at scale: the index, hosts' shares, the in-graph pipeline against the video
path, a tf.data service with two workers, and a URI filesystem."""

import dataclasses
import os
import uuid

import numpy as np
import pytest
import tensorflow as tf

from keras_mvf.cli import main
from keras_mvf.data import (
    NO_LABEL,
    VideoEntry,
    build_dataset,
    ingraph,
    load_manifest,
    pack_tfrecords,
    probe,
    read_index,
    start_dispatcher,
    start_worker,
    tfrecord_files,
    write_manifest,
    write_video,
)
from keras_mvf.data.sampling import sample_indices
from keras_mvf.data.transforms import eval_crop_boxes
from keras_mvf.utils import files
from tests.data.conftest import SMALL, collect


@pytest.fixture(scope="module")
def packed(manifest_path, tmp_path_factory):
    """The six test videos in three shards, at their own size."""
    folder = str(tmp_path_factory.mktemp("packed"))
    pack_tfrecords(load_manifest(manifest_path), folder, num_shards=3, short_side=None, quality=95)
    return folder


@pytest.fixture(scope="module")
def evaluation_clips(packed):
    """`(clips, labels)` of the packed videos in evaluation, by label."""
    clips, labels = collect(build_dataset(packed, False, batch_size=4, **SMALL))
    order = np.argsort(labels)
    return clips[order], labels[order]


def test_the_index_gives_record_counts_and_a_known_cardinality(
    packed, manifest_path, evaluation_clips
):
    counts, classes = read_index(tfrecord_files(packed))
    assert counts == [2, 2, 2] and classes == load_manifest(manifest_path).classes
    assert list(evaluation_clips[1]) == list(range(6))
    assert int(build_dataset(packed, False, batch_size=4, **SMALL).cardinality()) == 2
    assert int(build_dataset(packed, True, batch_size=4, **SMALL).cardinality()) == 1
    # Two input pipelines take whole shards (files 0 and 2, and file 1), one clip per replica.
    shares = [
        build_dataset(
            packed, False, batch_size=2, input_context=tf.distribute.InputContext(2, i, 2), **SMALL
        )
        for i in range(2)
    ]
    assert [int(share.cardinality()) for share in shares] == [4, 2]
    labels = [set(collect(share)[1]) for share in shares]
    assert labels[0].isdisjoint(labels[1]) and labels[0] | labels[1] == set(range(6))


def test_hosts_pack_disjoint_shares_and_a_repack_replaces_the_set(manifest_path, tmp_path, capsys):
    manifest, folder = load_manifest(manifest_path), str(tmp_path)
    pack_tfrecords(manifest, folder, num_shards=4, short_side=16)
    host0, _ = pack_tfrecords(manifest, folder, 4, short_side=16, num_hosts=2, host_index=0)
    with pytest.raises(ValueError, match="index of the set clips is incomplete"):
        build_dataset(folder, False, **SMALL)
    argv = ["data", "pack", "--manifest", manifest_path, "--output-dir", folder, "--shards", "4"]
    assert main([*argv, "--short-side", "16", "--num-hosts", "2", "--host-index", "1"]) == 0
    assert "Packed 3 videos into 2 shards (host 1 of 2)" in capsys.readouterr().out
    host1 = [os.path.join(folder, f"clips-0000{s}-of-00004.tfrecord") for s in (1, 3)]
    assert sorted(host0 + host1) == tfrecord_files(folder)
    shares = [
        collect(build_dataset(os.path.join(folder, pattern), False, batch_size=6, **SMALL))[1]
        for pattern in ("clips-0000[02]-of-00004.tfrecord", "clips-0000[13]-of-00004.tfrecord")
    ]
    assert sorted(shares[0]) == [0, 2, 4] and sorted(shares[1]) == [1, 3, 5]
    assert read_index(tfrecord_files(folder))[0] == [2, 2, 1, 1]
    pack_tfrecords(manifest, folder, num_shards=2, short_side=16)
    assert sorted(os.listdir(folder)) == [
        "classes.txt",
        "clips-00000-of-00002.tfrecord",
        "clips-00001-of-00002.tfrecord",
        "clips.index-00000-of-00001.json",
    ]
    for share in ({"num_hosts": 2, "host_index": 2}, {"num_shards": 1, "num_hosts": 2}):
        with pytest.raises(ValueError, match="host_index|must be at least"):
            pack_tfrecords(manifest, folder, **{"num_shards": 4, **share})


@pytest.mark.parametrize("short_video", ["wrap", "last"])
def test_evaluation_picks_the_video_paths_frames_and_boxes(short_video):
    for total in (1, 3, 20, 57, 301):
        for sampling, clips in (("dense", 1), ("dense", 10), ("uniform", 1), ("uniform", 3)):
            expected = sample_indices(sampling, total, 8, 8, False, clips, None, short_video)
            ours = ingraph.sample_indices(sampling, total, 8, 8, False, clips, None, short_video)
            np.testing.assert_array_equal(ours.numpy(), expected, err_msg=(total, sampling))
    for height, width in ((256, 340), (340, 256), (36, 48), (20, 20), (300, 100)):
        for crops in (1, 3):
            boxes = ingraph.eval_crop_boxes(
                tf.constant(height, tf.int64), tf.constant(width, tf.int64), 224, crops
            )
            assert [tuple(box.numpy()) for box in boxes] == eval_crop_boxes(
                height, width, 224, crops
            )


def test_training_boxes_stay_inside_the_frame_with_the_video_paths_sizes():
    rng = np.random.default_rng(0)
    for seed in range(40):
        height, width = (int(side) for side in rng.integers(8, 400, 2))
        sides = tf.constant(height, tf.int64), tf.constant(width, tf.int64)
        boxes = {
            "random_resized": ingraph.random_resized_crop_box(*sides, [seed, 1]),
            "multi_scale": ingraph.multi_scale_crop_box(*sides, [seed, 2]),
        }
        for name, box in boxes.items():
            y, x, h, w = (int(value) for value in box)
            assert 0 <= y and y + h <= height and 0 <= x and x + w <= width and h * w > 0, name
        sizes = [max(int(min(height, width) * s), 1) for s in (1.0, 0.875, 0.75, 0.66)]
        pairs = {(a, b) for i, a in enumerate(sizes) for j, b in enumerate(sizes) if abs(i - j) < 2}
        assert tuple(int(v) for v in boxes["multi_scale"][2:]) in pairs


def _coded_video(path, frames=24, height=48, width=64):
    """Frames whose pixels tell their place: red the column, green the row, blue the frame."""
    video = np.empty((frames, height, width, 3), np.uint8)
    video[..., 0] = np.linspace(0, 255, width).round()[None, None, :]
    video[..., 1] = np.linspace(0, 255, height).round()[None, :, None]
    video[..., 2] = (np.arange(frames) * 10)[:, None, None]
    return write_video(path, video, 25, fourcc="FFV1")  # lossless


def _clip_statistics(clips):
    """Per clip: first frame number, crop area and aspect (in the frame), flipped."""
    red, green, blue = (clips[..., channel].astype(float) for channel in range(3))
    frames = np.round(blue.mean(axis=(2, 3)) / 10)
    # The crop's columns and rows, as fractions of the frame, from the edge pixels.
    widths = np.abs(red[:, 0, :, -1] - red[:, 0, :, 0]).mean(axis=1) / 255
    heights = (green[:, 0, -1] - green[:, 0, 0]).mean(axis=1) / 255
    flipped = red[:, 0, :, 0].mean(axis=1) > red[:, 0, :, -1].mean(axis=1)
    # The same crop for every frame of a clip.
    assert np.abs(red - red[:, :1]).max() <= 6 and np.abs(green - green[:, :1]).max() <= 6
    return frames, widths * heights, np.log(widths * 64 / (heights * 48)), flipped


def test_training_clips_follow_the_video_paths_statistics(tmp_path):
    entry = VideoEntry(
        "coded.avi", probe(_coded_video(str(tmp_path / "coded.avi"))).num_frames, 25, 0
    )
    manifest = write_manifest(str(tmp_path / "m.jsonl"), [entry] * 96, ["coded"], str(tmp_path))
    pack_tfrecords(
        load_manifest(manifest), str(tmp_path / "packed"), 2, short_side=None, quality=95
    )
    settings = {"num_frames": 4, "frame_interval": 2, "crop_size": 32, "short_side": 48}
    results = []
    for source in (manifest, str(tmp_path / "packed")):
        clips, _ = collect(build_dataset(source, True, batch_size=96, seed=0, **settings))
        frames, area, aspect, flipped = _clip_statistics(clips)
        # Dense clips: consecutive frames two apart, from a start in [0, 24 - 7].
        np.testing.assert_array_equal(frames - frames[:, :1], np.tile([0, 2, 4, 6], (96, 1)))
        assert 0 <= frames.min() and frames[:, 0].max() <= 17
        results.append((frames[:, 0].mean(), area.mean(), aspect.mean(), flipped.mean()))
    (start, area, aspect, flips), (start2, area2, aspect2, flips2) = results
    # Within about 3.5 standard errors of 96 draws per path.
    assert abs(start - start2) < 2.6 and abs(flips - flips2) < 0.25, results
    assert abs(area - area2) < 0.15 and abs(aspect - aspect2) < 0.15, results
    assert 0.2 < flips < 0.8 and 0.2 < area < 0.8, results


def test_a_tf_data_service_with_two_workers_serves_every_clip_once(
    packed, evaluation_clips, manifest_path
):
    dispatcher = start_dispatcher()
    address = dispatcher.target.replace("localhost", "127.0.0.1")
    workers = [start_worker(address, host="127.0.0.1") for _ in range(2)]
    served = build_dataset(packed, False, batch_size=4, data_service=address, **SMALL)
    clips, labels = collect(served)
    order = np.argsort(labels)
    np.testing.assert_array_equal(labels[order], evaluation_clips[1])
    np.testing.assert_array_equal(clips[order], evaluation_clips[0])
    with pytest.raises(ValueError, match="needs packed TFRecords"):
        build_dataset(manifest_path, False, data_service=address, **SMALL)
    for worker in workers:
        worker.stop()
    dispatcher.stop()


def test_manifests_shards_and_index_on_a_uri_filesystem(manifest_path, evaluation_clips):
    manifest = load_manifest(manifest_path)
    folder = f"ram://keras_mvf/{uuid.uuid4().hex}"
    path = write_manifest(f"{folder}/m.jsonl", manifest.entries, manifest.classes, manifest.root)
    assert load_manifest(path) == manifest
    pack_tfrecords(load_manifest(path), f"{folder}/shards", 2, short_side=None, quality=95)
    assert files.listdir(f"{folder}/shards") == [
        "classes.txt",
        "clips-00000-of-00002.tfrecord",
        "clips-00001-of-00002.tfrecord",
        "clips.index-00000-of-00001.json",
    ]
    dataset = build_dataset(f"{folder}/shards", False, batch_size=4, **SMALL)
    assert int(dataset.cardinality()) == 2
    clips, labels = collect(dataset)
    order = np.argsort(labels)
    np.testing.assert_array_equal(clips[order], evaluation_clips[0])
    with pytest.raises(FileNotFoundError, match="No such file: ram://"):
        load_manifest(f"{folder}/missing.jsonl")


def test_training_refuses_packed_videos_without_a_label(manifest_path):
    manifest = load_manifest(manifest_path)
    entries = [dataclasses.replace(manifest.entries[0], label=NO_LABEL), *manifest.entries[1:2]]
    folder = f"ram://keras_mvf/{uuid.uuid4().hex}"
    pack_tfrecords(dataclasses.replace(manifest, entries=entries), folder, 1, short_side=None)
    clips, labels = collect(build_dataset(folder, False, batch_size=2, **SMALL))  # evaluation
    assert sorted(labels) == [NO_LABEL, 1]
    with pytest.raises(tf.errors.InvalidArgumentError, match="has no label.*v0.mp4"):
        collect(build_dataset(folder, True, batch_size=2, **SMALL))
