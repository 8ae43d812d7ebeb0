"""`train()` on packed TFRecords: shard folders, globs and URIs, epochs of known length."""

import uuid

import keras
import pytest

import keras_mvf
from keras_mvf import data
from keras_mvf.training import train
from keras_mvf.training.synthetic import CLASS_NAMES, write_synthetic_videos


def _tiny(**kwargs):
    kwargs.pop("backbone_weights", None)
    return keras_mvf.ResNetVideo((1, 1, 1, 1), base_width=8, temporal_module=None, **kwargs)


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
        _tiny,
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
