"""Preset directories and the one loading path, on tiny networks."""

import json
import os
import pathlib
import uuid

import keras
import numpy as np
import pytest
import torch

import keras_mvf
from keras_mvf import cli
from keras_mvf.models import pretrained, registry
from keras_mvf.utils import files
from keras_mvf.weights import convert, presets
from tests import torch_reference as ref

TINY = {
    "block_counts": (1, 1, 1, 1),
    "base_width": 8,
    "num_frames": 4,
    "input_shape": (32, 32, 3),
    "num_classes": 5,
    "layout": "pytorch",
}
LABELS = ["a", "b", "c", "d", "e"]
HEAD = ("predictions/kernel", "predictions/bias")


def _values(model):
    return {variable.path: variable.numpy() for variable in model.weights}


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    """`(directory, values)`: a tiny preset whose every variable holds a random value."""
    model = keras_mvf.create_model("mvfnet50", **TINY)
    rng = np.random.default_rng(0)
    for variable in model.weights:
        variable.assign(rng.uniform(0.5, 1.5, variable.shape))
    directory = tmp_path_factory.mktemp("presets") / "tiny"
    keras_mvf.save_preset(model, directory, labels=LABELS, metadata={"source": "a test"})
    return directory, _values(model)


def test_save_preset_writes_a_keras_native_directory(preset):
    directory, values = preset
    assert sorted(os.listdir(directory)) == [
        "README.md",
        "config.json",
        "labels.txt",
        "metadata.json",
        "model.weights.h5",
    ]
    assert not [name for name in os.listdir(directory.parent) if name.endswith(".partial")]
    config = json.loads((directory / "config.json").read_text())
    assert config["model"] == "mvfnet50"
    assert config["kwargs"]["block_counts"] == [1, 1, 1, 1]
    assert config["kwargs"]["layout"] == "pytorch" and config["kwargs"]["alpha"] == 0.125
    assert (directory / "labels.txt").read_text() == "a\nb\nc\nd\ne\n"
    metadata = json.loads((directory / "metadata.json").read_text())
    assert metadata["source"] == "a test"
    assert metadata["normalisation"] == {
        "mean": [123.675, 116.28, 103.53],
        "std": [58.395, 57.12, 57.375],
    }
    assert metadata["keras_mvf_version"] == keras_mvf.__version__
    card = (directory / "README.md").read_text()
    assert "| input | clips `(batch, 4, 32, 32, 3)`, RGB 0..255 |" in card
    assert "| source | a test |" in card and "from_preset(" in card


def test_from_preset_loads_every_variable(preset, capsys):
    directory, values = preset
    model = keras_mvf.from_preset(directory)
    assert _values(model).keys() == values.keys()
    for key, value in _values(model).items():
        np.testing.assert_array_equal(value, values[key])
    assert capsys.readouterr().err == f"loaded {len(values)} of {len(values)} variables from tiny\n"


def test_fine_tuning_keeps_every_backbone_variable(preset, capsys):
    directory, values = preset
    tuned = keras_mvf.from_preset(directory, num_classes=3, num_frames=8, dropout=0.2)
    assert tuned.output_shape == (None, 3) and tuned.input_shape == (None, 8, 32, 32, 3)
    for key, value in _values(tuned).items():
        if key not in HEAD:
            np.testing.assert_array_equal(value, values[key])
    assert capsys.readouterr().err == (
        f"loaded {len(values) - 2} of {len(values)} variables from tiny; "
        "new classifier (3 classes)\n"
    )
    headless = keras_mvf.from_preset(directory, include_top=False, pooling="avg")
    assert headless.output_shape == (None, 256)  # 4 x 8 x the base width
    assert capsys.readouterr().err.endswith(
        "; the source's classifier is not used (the model has no top)\n"
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"layout": "keras"}, "saved with layout='pytorch'.* Received: layout='keras'"),
        ({"alpha": 0.25}, r"saved with alpha=0\.125.* Received: alpha=0\.25"),
        ({"block_counts": (1, 1, 2, 2)}, r"block_counts=\(1, 1, 1, 1\).* Received: block_count"),
        ({"weights": "x.pth"}, "A preset brings its weights. Received: weights='x.pth'"),
    ],
    ids=["layout", "alpha", "depth", "weights"],
)
def test_a_conflicting_architecture_argument_names_both_values(preset, kwargs, message):
    with pytest.raises(ValueError, match=message):
        keras_mvf.from_preset(preset[0], **kwargs)


def test_every_route_loads_the_same_variables(preset, tmp_path):
    directory, values = preset
    from_preset = keras_mvf.from_preset(directory)
    from_preset.save(tmp_path / "model.keras")
    from_preset.save_weights(tmp_path / "model.weights.h5")
    tiny = {key: value for key, value in TINY.items() if key != "layout"}  # from the source
    routes = {
        "factory": lambda: keras_mvf.ResNetVideo(weights=str(directory), **tiny),
        "create_model": lambda: keras_mvf.create_model("mvfnet50", weights=directory, **tiny),
        "train": lambda: pretrained.build_model(None, directory, alpha=0.125, num_frames=4),
        "keras file": lambda: pretrained.build_model("mvfnet50", tmp_path / "model.keras", **tiny),
        "weights file": lambda: keras_mvf.ResNetVideo(
            weights=str(tmp_path / "model.weights.h5"), **tiny
        ),
    }
    for route, build in routes.items():
        for key, value in _values(build()).items():
            np.testing.assert_array_equal(value, values[key], err_msg=route)
    with pytest.raises(ValueError, match="holds a 'mvfnet50' model. Received: model='tsm50'"):
        pretrained.build_model("tsm50", directory)
    with pytest.raises(ValueError, match="does not say which model it holds"):
        pretrained.build_model(None, tmp_path / "model.weights.h5")


def test_presets_and_keras_files_on_a_uri_filesystem(preset, capsys):
    directory, values = preset
    model = keras_mvf.from_preset(directory)
    folder = f"ram://keras_mvf/{uuid.uuid4().hex}"
    for _ in range(2):  # writes, then replaces
        assert keras_mvf.save_preset(model, f"{folder}/tiny", LABELS) == f"{folder}/tiny"
        assert files.listdir(folder) == ["tiny"]  # no hidden partial left
        assert files.listdir(f"{folder}/tiny") == sorted(os.listdir(directory))
    capsys.readouterr()
    loaded, labels = pretrained.load_model(f"{folder}/tiny")
    assert labels == f"{folder}/tiny/labels.txt" and files.read_labels(labels) == LABELS
    assert capsys.readouterr().err == f"loaded {len(values)} of {len(values)} variables from tiny\n"
    for key, value in _values(loaded).items():
        np.testing.assert_array_equal(value, values[key])
    model.save(f"{folder}/model.keras")
    tiny = {key: value for key, value in TINY.items() if key != "layout"}
    rebuilt = pretrained.build_model("mvfnet50", f"{folder}/model.keras", **tiny)
    for key, value in _values(rebuilt).items():
        np.testing.assert_array_equal(value, values[key])


def test_save_preset_needs_a_model_it_can_rebuild(tmp_path):
    plain = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)], name="plain")
    with pytest.raises(ValueError, match="built by keras_mvf.*Received: model 'plain'"):
        keras_mvf.save_preset(plain, tmp_path / "plain")
    assert not (tmp_path / "plain").exists()


def test_the_command_line_model_is_a_keras_file_or_a_preset(preset, tmp_path):
    directory, values = preset
    model, labels = pretrained.load_model(directory)
    assert labels == os.path.join(directory, "labels.txt")
    model.save(tmp_path / "model.keras")
    loaded, labels = pretrained.load_model(tmp_path / "model.keras")
    assert labels == str(tmp_path / "labels.txt")  # beside it, as `train` writes them
    for key, value in _values(loaded).items():
        np.testing.assert_array_equal(value, values[key])
    with pytest.raises(ValueError, match="Expected a preset.*Received: 'nothing_here'"):
        pretrained.load_model("nothing_here")


BLOCKS, FRAMES, CLASSES = (1, 1, 2, 2), 4, 5
RELEASE = "mvfnet50_k400_4x16"


@pytest.fixture
def tiny_release(file_server, weights_cache, monkeypatch):
    """A release served by the local server, whose registered architecture is a tiny one."""
    root, base_url, _ = file_server
    monkeypatch.setenv(presets.BASE_URL_ENV, base_url)
    kwargs = {
        **registry.PRETRAINED[RELEASE][1],
        "block_counts": BLOCKS,
        "base_width": 8,
        "num_classes": CLASSES,
    }
    monkeypatch.setitem(registry.PRETRAINED, RELEASE, ("mvfnet50", kwargs))
    net = ref.randomize(ref.MVFNet(BLOCKS, FRAMES, CLASSES, width=8), seed=4)
    served = root / presets.PRESETS[RELEASE]["file"]
    served.parent.mkdir(parents=True)
    torch.save({"meta": {}, "state_dict": net.state_dict()}, served)
    return net, served, weights_cache / "keras_mvf"


def test_a_cache_of_another_converter_version_is_rebuilt(tiny_release, capsys):
    net, served, cache = tiny_release
    # What an older converter left: a preset of other values, and the first one's flat file.
    stale = presets.converted_dir(RELEASE, convert.CONVERTER_VERSION - 1)
    older = keras_mvf.create_model("mvfnet50", **registry.PRETRAINED[RELEASE][1])
    keras_mvf.save_preset(older, stale)
    older.save_weights(cache / f"{RELEASE}.weights.h5")

    model = keras_mvf.from_preset(RELEASE, input_shape=(40, 40, 3), classifier_activation=None)
    clips = np.random.default_rng(0).uniform(0, 255, (1, FRAMES, 40, 40, 3)).astype("float32")
    with torch.no_grad():
        want = net(ref.normalise(clips)).numpy()
    got = np.asarray(model(clips, training=False))
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    assert f"variables from {RELEASE}\n" in capsys.readouterr().err

    current = presets.converted_dir(RELEASE, convert.CONVERTER_VERSION)
    assert os.listdir(cache / "presets") == [os.path.basename(current)]
    assert not (cache / f"{RELEASE}.weights.h5").exists()
    metadata = json.loads(pathlib.Path(current, "metadata.json").read_text())
    assert metadata["converter_version"] == convert.CONVERTER_VERSION
    assert metadata["source"] == presets.checkpoint_url(RELEASE)
    assert metadata["sha256"] == presets.sha256_of(served)
    assert metadata["license"] == "Apache-2.0" and metadata["frame_interval"] == 16
    card = pathlib.Path(current, "README.md").read_text()
    assert "| frames per clip | 4 x interval 16 |" in card and "| licence | Apache-2.0 |" in card
    assert "| reported accuracy | 74.2% top-1 on Kinetics-400" in card


@pytest.mark.slow
def test_train_from_a_preset_then_predict_names_the_manifests_classes(preset, tmp_path, capsys):
    from keras_mvf.data import write_video

    rng = np.random.default_rng(0)
    lines = []
    for label, (channel, name) in enumerate(((2, "blue"), (0, "red"))):
        for i in range(2):
            frames = rng.integers(0, 60, (12, 40, 40, 3), dtype=np.uint8)
            frames[..., channel] += 150
            write_video(str(tmp_path / f"{name}{i}.mp4"), frames, fps=10)
            lines.append(f"{name}{i}.mp4 {label}\n")
    (tmp_path / "list.txt").write_text("".join(lines))
    (tmp_path / "classes.txt").write_text("blue\nred\n")
    manifest = str(tmp_path / "train.jsonl")
    index = ["data", "index", "--format", "list", "--annotations", str(tmp_path / "list.txt")]
    index += ["--classes", str(tmp_path / "classes.txt"), "--root", str(tmp_path)]
    assert cli.main([*index, "--output", manifest]) == 0
    run = tmp_path / "run"
    common = ["--frames", "4", "--crop-size", "32", "--short-side", "36", "--frame-interval", "2"]
    arguments = ["train", "--train", manifest, "--weights", str(preset[0]), "--out", str(run)]
    arguments += [*common, "--epochs", "1", "--batch-size", "2", "--no-tensorboard"]
    assert cli.main(arguments) == 0
    err = capsys.readouterr().err
    values = len(preset[1])
    assert f"loaded {values - 2} of {values} variables from tiny; new classifier (2 classes)" in err
    assert (run / "labels.txt").read_text() == "blue\nred\n"
    assert json.loads((run / "config.json").read_text())["model"] == "mvfnet50"

    video = str(tmp_path / "red0.mp4")
    for model in (run, run / "model.keras"):
        predict = ["predict", video, "--model", str(model), "--top-k", "2", "--frame-interval", "2"]
        assert cli.main(predict) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0] == video and sorted(line.split()[1] for line in lines[1:3]) == [
            "blue",
            "red",
        ]
    evaluate = ["evaluate", str(run), "--data", manifest, "--out", str(tmp_path / "eval")]
    assert cli.main([*evaluate, "--frame-interval", "2"]) == 0
    rows = (tmp_path / "eval" / "predictions.csv").read_text().splitlines()
    assert rows[0].split(",")[4:6] == ["top5_labels", "top5_classes"]
    assert sorted(rows[1].split(",")[5].split("|")) == ["blue", "red"]
