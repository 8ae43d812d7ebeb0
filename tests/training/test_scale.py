"""`train()` on packed TFRecords: shard folders, globs and URIs, epochs of known length."""

import uuid

import keras
import numpy as np
import pytest

import keras_mvf
from keras_mvf import data
from keras_mvf.training import train
from keras_mvf.training.synthetic import CLASS_NAMES, write_synthetic_videos
from keras_mvf.utils import files
from tests.training.tiny import TINY_SETTINGS, tiny_batches, tiny_resnet


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Ten synthetic videos (one per class) packed into two shards on `ram://`."""
    root = tmp_path_factory.mktemp("synthetic")
    manifest = data.load_manifest(write_synthetic_videos(str(root), "train", 1, size=32))
    folder = f"ram://keras_mvf/{uuid.uuid4().hex}/shards"
    data.pack_tfrecords(manifest, folder, num_shards=2, short_side=None)
    return folder


@pytest.mark.slow
def test_train_on_shards_knows_the_epoch_length_and_the_classes(shards, tmp_path):
    settings = {"num_frames": 4, "crop_size": 32, "short_side": 32, "frame_interval": 2}
    model, history = train(
        tiny_resnet,
        shards,
        f"{shards}/*.tfrecord",
        out_dir=str(tmp_path / "run"),
        batch_size=5,
        epochs=1,
        tensorboard=False,
        seed=0,
        verbose=0,
        **settings,
    )
    assert model.output_shape[-1] == len(CLASS_NAMES)
    assert len(history.history["loss"]) == 1 and "val_accuracy" in history.history
    assert history.params["steps"] == 2  # ten videos, batches of five
    labels = (tmp_path / "run" / "labels.txt").read_text().splitlines()
    assert labels == list(CLASS_NAMES)
    assert keras.models.load_model(tmp_path / "run" / "model.keras").output_shape[-1] == 10


def test_a_run_folder_on_a_uri_filesystem_is_written_and_resumed():
    batches = tiny_batches()
    out = f"ram://keras_mvf/{uuid.uuid4().hex}/run"
    settings = {**TINY_SETTINGS, "tensorboard": True, "seed": 0, "verbose": 0}
    train(tiny_resnet, batches, out_dir=out, epochs=1, **settings)
    written = files.listdir(out)
    assert {"log.csv", "last.weights.h5", "best.weights.h5", "model.keras", "config.json"} <= set(
        written
    )
    assert not [name for name in written if name.startswith(files.PARTIAL_PREFIX)]
    assert files.listdir(f"{out}/backup") == ["epoch-1.weights.h5", "training_metadata.json"]
    assert files.listdir(f"{out}/tensorboard")

    _, history = train(tiny_resnet, batches, out_dir=out, epochs=2, **settings)
    assert history.epoch == [1]  # resumed after the first epoch
    assert files.listdir(f"{out}/backup") == ["epoch-2.weights.h5", "training_metadata.json"]
    log = files.read_bytes(f"{out}/log.csv").decode().splitlines()
    assert [row.split(",")[0] for row in log] == ["epoch", "0", "1"]
    model = keras.models.load_model(f"{out}/model.keras")
    reloaded = keras_mvf.from_preset(out)
    clip = keras.ops.cast(next(iter(batches))[0][:1], "float32")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model(clip)),
        keras.ops.convert_to_numpy(reloaded(clip)),
    )
