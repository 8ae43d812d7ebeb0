import logging
import os
import uuid

import numpy as np
import pytest
import tensorflow as tf

import keras_mvf
from keras_mvf.data import (
    SkippedVideos,
    SkippedVideosCallback,
    build_dataset,
    index_annotations,
    load_manifest,
    pack_tfrecords,
    parse_list_file,
    read_frames,
    video,
    write_manifest,
)
from keras_mvf.data.transforms import transform_clips
from keras_mvf.utils import files
from tests.data.conftest import SMALL, collect, write_frame_folder


def test_training_batches(manifest_path):
    dataset = build_dataset(manifest_path, training=True, batch_size=4, seed=0, **SMALL)
    assert dataset.element_spec[0].shape.as_list() == [4, 4, 32, 32, 3]
    assert dataset.element_spec[0].dtype == tf.uint8
    assert dataset.element_spec[1].dtype == tf.int32
    clips, labels = collect(dataset)
    assert clips.shape == (4, 4, 32, 32, 3)  # six videos, last partial batch dropped
    assert int(dataset.cardinality()) == 1
    assert set(labels) <= set(range(6)) and len(set(labels)) == 4


def test_evaluation_clip_equals_sampled_and_cropped_frames(manifest_path):
    manifest = load_manifest(manifest_path)
    dataset = build_dataset(
        manifest_path, training=False, batch_size=4, sampling="uniform", deterministic=True, **SMALL
    )
    clips, labels = collect(dataset)
    np.testing.assert_array_equal(labels, np.arange(6))
    entry = manifest.entries[1]
    frames = read_frames(manifest.full_path(entry), [3, 9, 15, 21])
    expected, _ = transform_clips(frames[None], False, None, 32, 36)
    np.testing.assert_array_equal(clips[1], expected[0])


def test_multi_view_evaluation(manifest_path):
    dataset = build_dataset(
        manifest_path,
        training=False,
        batch_size=2,
        num_clips=2,
        num_crops=3,
        deterministic=True,
        **SMALL,
    )
    clips, labels = collect(dataset)
    assert clips.shape == (6, 6, 4, 32, 32, 3) and list(labels) == list(range(6))
    assert not np.array_equal(clips[0, 0], clips[0, 1])  # left and centre crops differ


def test_list_file_with_root(manifest_path):
    root = os.path.dirname(manifest_path)
    dataset = build_dataset(os.path.join(root, "list.txt"), False, batch_size=6, root=root, **SMALL)
    assert sorted(collect(dataset)[1]) == list(range(6))
    with pytest.raises(ValueError, match="needs `root=`"):
        build_dataset(os.path.join(root, "list.txt"), False, **SMALL)


def test_seeded_deterministic_pipeline_repeats_and_reshuffles_each_epoch(manifest_path):
    def make():
        return build_dataset(manifest_path, True, batch_size=2, seed=3, deterministic=True, **SMALL)

    first, second = make(), make()
    epoch1 = collect(first)
    np.testing.assert_array_equal(epoch1[0], collect(second)[0])
    epoch2 = collect(first)
    assert not np.array_equal(epoch1[0], epoch2[0])


def test_bad_videos_are_skipped_counted_and_reported(manifest_path, tmp_path, caplog):
    manifest = load_manifest(manifest_path)
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(b"\x00" * 1000)
    truncated = tmp_path / "truncated.avi"
    with open(manifest.full_path(manifest.entries[1]), "rb") as file:
        truncated.write_bytes(file.read()[:3000])
    entries = [
        *manifest.entries[:2],
        manifest.entries[0].__class__(str(bad), 24, 30.0, 0),
        manifest.entries[1].__class__(str(truncated), 24, 30.0, 1),
    ]
    path = write_manifest(str(tmp_path / "m.jsonl"), entries, manifest.classes, manifest.root)
    skipped = SkippedVideos()
    dataset = build_dataset(path, True, batch_size=1, skipped=skipped, **SMALL)
    assert dataset.skipped_videos is skipped
    assert int(dataset.cardinality()) == 4
    with caplog.at_level(logging.WARNING, logger="keras_mvf.data"):
        clips, labels = collect(dataset)
        # Training replaces the bad videos by good ones: the epoch keeps its length.
        assert len(clips) == 4 and set(labels) == {0, 1} and skipped.count == 2
        assert set(skipped.reasons) == {str(bad), str(truncated)}
        logs = {}
        SkippedVideosCallback(skipped).on_epoch_end(0, logs)
    assert logs == {"skipped_videos": 2} and skipped.count == 0
    assert "2 video(s) skipped" in caplog.text and "corrupt.mp4" in caplog.text
    evaluation = build_dataset(
        path, False, batch_size=3, skipped=skipped, deterministic=True, **SMALL
    )
    assert int(evaluation.cardinality()) == 2
    # Evaluation replaces them too (by the next readable entry, wrapping around).
    assert list(collect(evaluation)[1]) == [0, 1, 0, 0] and skipped.count == 2
    strict = build_dataset(path, True, batch_size=1, skip_bad_videos=False, seed=0, **SMALL)
    with pytest.raises(tf.errors.OpError, match="corrupt.mp4|truncated.avi"):
        collect(strict)


def test_label_swap_follows_the_flip(tmp_path):
    frames = np.zeros((4, 40, 40, 3), np.uint8)
    frames[:, :, 20:] = 255  # dark left half, bright right half
    write_frame_folder(str(tmp_path / "f"), frames, template="{:d}.png")
    annotations, _ = parse_list_file(
        str(tmp_path / "l.txt") if (tmp_path / "l.txt").write_text("f 4 0\n") else None
    )
    entries, _ = index_annotations(annotations, str(tmp_path), template="{:d}.png")
    path = write_manifest(str(tmp_path / "m.jsonl"), entries * 40, ["left", "right"], str(tmp_path))
    pack_tfrecords(load_manifest(path), str(tmp_path / "packed"), 1, short_side=None)
    for source in (path, str(tmp_path / "packed")):  # the video path and the in-graph one
        dataset = build_dataset(source, True, batch_size=40, label_swap={0: 1}, seed=1, **SMALL)
        clips, labels = collect(dataset)
        left, right = clips[:, 0, :, 0].mean(axis=(1, 2)), clips[:, 0, :, -1].mean(axis=(1, 2))
        clear = np.abs(left - right) > 200
        assert clear.sum() > 5
        np.testing.assert_array_equal(labels[clear], (left > right)[clear].astype(np.int32))


def test_tfrecord_pack_reads_like_the_videos(manifest_path, tmp_path):
    manifest = load_manifest(manifest_path)
    shards, problems = pack_tfrecords(
        manifest, str(tmp_path / "packed"), num_shards=3, short_side=None, quality=95, workers=2
    )
    assert problems == [] and all(os.path.getsize(shard) > 0 for shard in shards)
    packed = collect(
        build_dataset(str(tmp_path / "packed"), False, batch_size=6, deterministic=True, **SMALL)
    )
    direct = collect(build_dataset(manifest_path, False, batch_size=6, deterministic=True, **SMALL))
    order = np.argsort(packed[1])
    np.testing.assert_array_equal(packed[1][order], direct[1])
    error = np.abs(packed[0][order].astype(int) - direct[0].astype(int)).mean()
    assert error < 4  # JPEG re-encoding only
    training = build_dataset(
        os.path.join(tmp_path, "packed", "*.tfrecord"), True, batch_size=2, seed=0, **SMALL
    )
    assert collect(training)[0].shape == (6, 4, 32, 32, 3)


def test_sharding_for_distributed_input(manifest_path, tmp_path):
    policy = tf.data.experimental.AutoShardPolicy
    plain = build_dataset(manifest_path, False, batch_size=2, **SMALL)
    assert plain.options().experimental_distribute.auto_shard_policy == policy.DATA
    seen = []
    for index in range(2):
        context = tf.distribute.InputContext(2, index, 2)
        dataset = build_dataset(manifest_path, False, batch_size=4, input_context=context, **SMALL)
        assert dataset.options().experimental_distribute.auto_shard_policy == policy.OFF
        clips, labels = collect(dataset)
        assert dataset.element_spec[0].shape.as_list()[0] is None and len(clips) == 3
        seen.append(set(labels))
    assert seen[0].isdisjoint(seen[1]) and seen[0] | seen[1] == set(range(6))
    pack_tfrecords(load_manifest(manifest_path), str(tmp_path / "p"), num_shards=2, short_side=None)
    packed = build_dataset(str(tmp_path / "p"), True, batch_size=2, **SMALL)
    assert packed.options().experimental_distribute.auto_shard_policy == policy.AUTO


def test_fit_with_validation_and_the_skip_callback(manifest_path):
    model = keras_mvf.ResNetVideo(
        (1, 1, 1, 1),
        num_classes=6,
        num_frames=4,
        base_width=8,
        temporal_module=None,
        input_shape=(32, 32, 3),
        backbone_weights=None,
    )
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    dataset = build_dataset(manifest_path, True, batch_size=2, seed=0, **SMALL)
    validation = build_dataset(manifest_path, False, batch_size=4, **SMALL)
    assert int(validation.cardinality()) == 2  # so Keras never warns "ran out of data"
    history = model.fit(
        dataset,
        validation_data=validation,
        epochs=2,
        verbose=0,
        shuffle=False,
        callbacks=[SkippedVideosCallback(dataset.skipped_videos)],
    )
    assert history.history["skipped_videos"] == [0, 0]
    assert np.isfinite(history.history["val_loss"]).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_frames": 0}, "Received: num_frames=0"),
        ({"sampling": "random"}, "Received: sampling=random"),
        ({"num_crops": 2, "training": False}, "Received: num_crops=2"),
    ],
)
def test_invalid_arguments(manifest_path, kwargs, message):
    arguments = {"training": True, **SMALL, **kwargs}
    with pytest.raises(ValueError, match=message):
        build_dataset(manifest_path, **arguments)


def _upload(folder, target):
    """Copies the local `folder` (files and subfolders) to `target` on a URI filesystem."""
    for parent, _, names in os.walk(folder):
        relative = os.path.relpath(parent, folder)
        destination = target if relative == "." else f"{target}/{relative}"
        files.makedirs(destination)
        for name in names:
            files.copy(os.path.join(parent, name), f"{destination}/{name}")


def test_videos_and_frame_folders_listed_on_a_uri_filesystem(manifest_path, monkeypatch):
    local = load_manifest(manifest_path)
    root = f"ram://keras_mvf/{uuid.uuid4().hex}/clips"
    _upload(local.root, root)
    annotations, classes = parse_list_file(f"{root}/list.txt")
    entries, problems = index_annotations(annotations, root)  # finds and probes them there
    assert problems == [] and entries == local.entries
    path = write_manifest(f"{root}/uri.jsonl", entries, classes, root)
    expected = collect(
        build_dataset(manifest_path, False, batch_size=3, deterministic=True, **SMALL)
    )
    served = collect(
        build_dataset(path, False, batch_size=3, deterministic=True, skip_bad_videos=False, **SMALL)
    )
    np.testing.assert_array_equal(served[1], expected[1])
    np.testing.assert_array_equal(served[0], expected[0])
    # Each video is copied to a local temporary file to decode, and no larger one.
    monkeypatch.setattr(video, "MAX_URI_VIDEO_BYTES", 1000)
    with pytest.raises(OSError, match=rf"^{root}/v0.mp4: \d+ bytes, over the 1000 bytes"):
        read_frames(f"{root}/v0.mp4", [0])
    with pytest.raises(FileNotFoundError, match=rf"No such file: {root}/none.mp4"):
        read_frames(f"{root}/none.mp4", [0])
