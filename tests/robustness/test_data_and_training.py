"""Hostile and broken inputs of the data pipeline, training resume and evaluation.

Each check runs in a child process (`run_bounded`: address-space limit and
timeout) and must end in a clear error, or a right result, never in a silently
wrong one. The cases are bundled into few children, as TensorFlow takes seconds
to import.
"""

import csv
import filecmp
import json
import os
import signal

import pytest

from tests.robustness.bounded import GIB, run_bounded

MEMORY = 8 * GIB  # TensorFlow reserves address space on import
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

# Manifest line 2 for each case (`None`: the header line is the case), and what
# the error must say; an empty message means the line is valid.
GOOD = {"path": "v", "kind": "video", "num_frames": 8, "fps": 25.0, "label": 1}
FRAMES = {**GOOD, "kind": "frames", "template": "img_{:05d}.jpg", "start_index": 1}
MANIFEST_CASES = {
    "good": (GOOD, ""),
    "good frames": (FRAMES, ""),
    "unlabelled": ({**GOOD, "label": -1}, ""),
    "float label": ({**GOOD, "label": 1.9}, "field 'label' must be an integer"),
    "bool label": ({**GOOD, "label": True}, "Received: True (bool)"),
    "text label": ({**GOOD, "label": "1"}, "Received: '1' (str)"),
    "null label": ({**GOOD, "label": None}, "Received: None (NoneType)"),
    "no label": ({k: v for k, v in GOOD.items() if k != "label"}, "field 'label' is missing"),
    "label too big": ({**GOOD, "label": 2}, "label 2 is outside the class list of 2 classes"),
    "label negative": ({**GOOD, "label": -2}, "label -2 is outside the class list"),
    "null path": ({**GOOD, "path": None}, "field 'path' must be a non-empty string"),
    "empty path": ({**GOOD, "path": ""}, "field 'path' must be a non-empty string"),
    "bad kind": ({**GOOD, "kind": "movie"}, "field 'kind' must be 'video' or 'frames'"),
    "zero frames": ({**GOOD, "num_frames": 0}, "field 'num_frames' must be a positive integer"),
    "text frames": ({**GOOD, "num_frames": "8"}, "field 'num_frames' must be a positive"),
    "text fps": ({**GOOD, "fps": "25"}, "field 'fps' must be a non-negative number"),
    "frames without template": (
        {k: v for k, v in FRAMES.items() if k != "template"},
        "field 'template' is missing; expected a frame file pattern",
    ),
    "template without field": ({**FRAMES, "template": "img.jpg"}, "field 'template' must be"),
    "null start": ({**FRAMES, "start_index": None}, "field 'start_index' must be a non-negative"),
    "video with template": ({**GOOD, "template": "x{}"}, "field 'template' must be absent"),
    "not an object": ([1, 2], "expected a JSON object. Received: list"),
    "bad header": (None, ":1: field 'classes' must be a list of class names"),
}

DATA_CHILD = r"""
import json, os, shutil, sys
import cv2, numpy as np

folder, cases = sys.argv[1], json.loads(sys.argv[2])
from keras_mvf import data
from keras_mvf.training.evaluation import evaluate

report = {}

def outcome(call):
    try:
        return ["ok", call()]
    except Exception as error:
        return [type(error).__name__, str(error)]

header = {"keras_mvf_manifest": 1, "root": folder, "classes": ["a", "b"]}
for name, (line, _) in cases.items():
    path = os.path.join(folder, name.replace(" ", "_") + ".jsonl")
    with open(path, "w") as file:
        if line is None:
            file.write(json.dumps({**header, "classes": "ab"}) + "\n")
        else:
            file.write(json.dumps(header) + "\n" + json.dumps(line) + "\n")
    report[name] = outcome(lambda: [e.label for e in data.load_manifest(path).entries])

# Three frame-folder videos, packed with 2 shards, then 3 into the same folder.
entries = []
for index in range(3):
    os.makedirs(os.path.join(folder, f"v{index}"))
    for frame in (1, 2):
        image = np.full((8, 8, 3), 40 * index + frame, np.uint8)
        cv2.imwrite(os.path.join(folder, f"v{index}", f"img_{frame:05d}.jpg"), image)
    entries.append(data.VideoEntry(f"v{index}", 2, 0.0, index % 2, "frames", "img_{:05d}.jpg"))
manifest = data.Manifest(entries, ["a", "b"], folder)
packed = os.path.join(folder, "packed")
small = dict(num_frames=2, frame_interval=1, batch_size=1, crop_size=8, short_side=8)

def count(location):
    return sum(1 for _ in data.build_dataset(location, False, **small))

data.pack_tfrecords(manifest, packed, num_shards=2, short_side=None)
data.pack_tfrecords(manifest, packed, num_shards=3, short_side=None)
report["repacked files"] = sorted(os.listdir(packed))
report["repacked videos"] = count(packed)
other = os.path.join(folder, "other")
data.pack_tfrecords(manifest, other, num_shards=2, prefix="val", short_side=None)
shutil.copy(os.path.join(other, "val-00000-of-00002.tfrecord"), packed)
report["mixed folder"] = outcome(lambda: count(packed))
report["mixed pattern"] = outcome(lambda: count(os.path.join(packed, "*.tfrecord")))
report["one set by pattern"] = outcome(lambda: count(os.path.join(packed, "clips-*")))
os.remove(os.path.join(packed, "val-00000-of-00002.tfrecord"))
os.remove(os.path.join(packed, "clips-00001-of-00003.tfrecord"))
report["missing shard"] = outcome(lambda: count(packed))

# Evaluation of unlabelled videos and of labels beyond the model's classes.
import keras
inputs = keras.Input((2, 8, 8, 3))
model = keras.Model(
    inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs))
)
for name, label in (("unlabelled", -1), ("beyond", 2)):
    path = os.path.join(folder, f"eval_{name}.jsonl")
    labelled = [entries[0], data.VideoEntry("v1", 2, 0.0, label, "frames", "img_{:05d}.jpg")]
    data.write_manifest(path, labelled, ["a", "b", "c"], folder)
    report[f"evaluate {name}"] = outcome(
        lambda: evaluate(model, path, frame_interval=1, short_side=8, verbose=0)
    )
report["evaluate labelled"] = outcome(
    lambda: evaluate(model, data.write_manifest(
        os.path.join(folder, "eval_ok.jsonl"), entries, ["a", "b"], folder
    ), frame_interval=1, short_side=8, verbose=0)["num_videos"]
)
print("REPORT" + json.dumps(report))
"""


@pytest.fixture(scope="module")
def data_report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile_data")
    result = run_bounded(
        DATA_CHILD, folder, json.dumps(MANIFEST_CASES), memory=MEMORY, timeout=240, env=ENV
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.split("REPORT", 1)[1])
    return folder, report


@pytest.mark.parametrize("case", MANIFEST_CASES)
def test_manifest_fields_are_type_checked(data_report, case):
    folder, report = data_report
    kind, result = report[case]
    expected = MANIFEST_CASES[case][1]
    if not expected:
        assert kind == "ok", result
        assert result == [MANIFEST_CASES[case][0]["label"]]
        return
    source = os.path.join(str(folder), case.replace(" ", "_") + ".jsonl")
    line = 1 if MANIFEST_CASES[case][0] is None else 2
    assert kind == "ValueError", result
    assert result.startswith(f"{source}:{line}: ") and expected in result, result


def test_pack_replaces_a_set_and_mixed_sets_are_refused(data_report):
    folder, report = data_report
    shards = [f"clips-0000{i}-of-00003.tfrecord" for i in range(3)]
    assert report["repacked files"] == ["classes.txt", *shards, "clips.index-00000-of-00001.json"]
    assert report["repacked videos"] == 3  # each video once
    kind, message = report["mixed folder"]
    assert kind == "ValueError", message
    assert "clips-*-of-00003.tfrecord and val-*-of-00002.tfrecord" in message
    assert report["mixed pattern"][0] == "ValueError"
    assert report["one set by pattern"] == ["ok", 3]
    kind, message = report["missing shard"]
    assert kind == "ValueError" and "has 2 of its 3 shards" in message, message


def test_evaluation_refuses_what_it_cannot_score(data_report):
    folder, report = data_report
    kind, message = report["evaluate unlabelled"]
    assert kind == "ValueError", message
    assert "1 of the 2 videos have no label (NO_LABEL), the first v1" in message
    kind, message = report["evaluate beyond"]
    assert kind == "ValueError", message
    assert "video v1 has label 2, outside the model's 2 classes" in message
    assert report["evaluate labelled"] == ["ok", 3]


TRAIN_CHILD = r"""
import json, os, signal, sys
import keras, numpy as np, tensorflow as tf

out, epochs, kill = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(":")


def die(path, whole):
    if not whole:  # as if killed mid-write
        os.truncate(path, os.path.getsize(path) // 2)
    os.kill(os.getpid(), signal.SIGKILL)


if kill[0] == "save_weights":  # SIGKILL while the n-th weights file is written
    real_save, saves = keras.Model.save_weights, [0]

    def save_weights(self, filepath, *args, **kwargs):
        real_save(self, filepath, *args, **kwargs)
        saves[0] += 1
        if saves[0] == int(kill[1]):
            die(filepath, whole=False)

    keras.Model.save_weights = save_weights
elif kill[0] == "after_rename":  # SIGKILL right after the n-th rename onto a file name
    real_replace, renames = os.replace, [0]

    def replace(source, target):
        real_replace(source, target)
        renames[0] += os.path.basename(target) == kill[1]
        if renames[0] == int(kill[2]):
            die(target, whole=True)

    os.replace = replace
from keras_mvf.training import train

def tiny(num_classes, num_frames, input_shape, **kwargs):
    inputs = keras.Input((num_frames, *input_shape))
    pooled = keras.layers.GlobalAveragePooling3D()(inputs)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(pooled))

clips = np.random.default_rng(0).random((4, 2, 8, 8, 3), np.float32)
batches = tf.data.Dataset.from_tensor_slices((clips, np.int32([0, 1, 2, 0]))).batch(2)
def run(folder):
    model, history = train(
        tiny, batches, batches, folder, num_classes=3, batch_size=2, epochs=epochs,
        num_frames=2, crop_size=8, base_lr=0.1, tensorboard=False, verbose=0, seed=0,
    )
    return {"iterations": int(model.optimizer.iterations.numpy()), "epochs": history.epoch}

report = {"run": run(out)}
# A damaged backup (copies of the finished run): a clear error, nothing changed.
import shutil
from keras_mvf.training.train import CorruptBackupError
for damage in ("truncated weights", "empty metadata"):
    copy = out + "-" + damage.replace(" ", "-")
    shutil.copytree(out, copy)
    backup = os.path.join(copy, "backup")
    state = json.load(open(os.path.join(backup, "training_metadata.json")))
    if damage == "truncated weights":
        target = os.path.join(backup, state["weights"])
        os.truncate(target, os.path.getsize(target) // 2)
    else:
        open(os.path.join(backup, "training_metadata.json"), "w").close()
    try:
        run(copy)
        report[damage] = "trained"
    except CorruptBackupError as error:
        report[damage] = str(error)
    report[damage + " unchanged"] = all(
        open(os.path.join(copy, name), "rb").read() == open(os.path.join(out, name), "rb").read()
        for name in ("log.csv", "last.weights.h5", "best.weights.h5")
    )
print("REPORT" + json.dumps(report))
"""

EPOCHS = 3


def _logged_epochs(out):
    with open(os.path.join(out, "log.csv"), newline="") as file:
        return [int(row["epoch"]) for row in csv.DictReader(file)]


def _weights_readable(out):
    """Whether the `.weights.h5` files of the run folder are whole HDF5 files."""
    import h5py

    for name in ("last.weights.h5", "best.weights.h5"):
        try:
            h5py.File(os.path.join(out, name), "r").close()
        except FileNotFoundError:
            pass
        except OSError:
            return False
    return True


@pytest.mark.slow
def test_sigkill_during_the_end_of_epoch_saves_then_resume(tmp_path):
    """Runs killed at moments of the end-of-epoch saves and resumed lose or repeat no epoch.

    First moment: in the middle of writing the second weights file. Second
    (on resume): right after the backup marked the last epoch done, before
    `last.weights.h5` is replaced (the resume must complete that file, not
    train the epoch again). After each kill the weight files are whole.
    """
    out = str(tmp_path / "run")
    for kill in ("save_weights:2", "after_rename:training_metadata.json:2"):
        result = run_bounded(TRAIN_CHILD, out, EPOCHS, kill, memory=MEMORY, timeout=180, env=ENV)
        assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
        assert _weights_readable(out)
    # Killed before the rename: last.weights.h5 still holds epoch 2, whole.
    assert not filecmp.cmp(out + "/last.weights.h5", out + "/backup/epoch-3.weights.h5", False)
    result = run_bounded(TRAIN_CHILD, out, EPOCHS, "-", memory=MEMORY, timeout=180, env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.split("REPORT", 1)[1])
    # Nothing left to train, and the weights trained exactly EPOCHS x 2 steps.
    assert report["run"] == {"iterations": EPOCHS * 2, "epochs": []}
    assert _logged_epochs(out) == list(range(EPOCHS))
    assert filecmp.cmp(out + "/last.weights.h5", out + "/backup/epoch-3.weights.h5", False)
    assert sorted(os.listdir(out + "/backup")) == ["epoch-3.weights.h5", "training_metadata.json"]
    assert not [name for name in os.listdir(out) if name.startswith(".")]
    for damage in ("truncated weights", "empty metadata"):
        message = report[damage]
        backup = os.path.join(f"{out}-{damage.replace(' ', '-')}", "backup")
        assert message.startswith(backup + os.sep), message
        assert "unreadable training backup" in message, message
        assert f"Delete the folder {backup} to start over, or restore it" in message
        assert report[damage + " unchanged"]
