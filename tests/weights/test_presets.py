"""The registry, its documentation, the class names and downloads from a local server."""

import hashlib
import pathlib
import re
import socket

import numpy as np
import pytest
import torch

import keras_mvf
from keras_mvf.models import registry
from keras_mvf.models.pretrained import release_name
from keras_mvf.weights import decode_predictions, kinetics400_classes, presets, weights_info

README = pathlib.Path(__file__).parents[2] / "weights" / "README.md"


def test_registry_is_documented():
    assert keras_mvf.list_weights() == presets.list_weights() == sorted(presets.PRESETS)
    readme = README.read_text()
    for name in presets.list_weights():
        info = weights_info(name)
        assert info["url"] == presets.RELEASE_URL + info["file"]
        assert info["license"] == "Apache-2.0"
        sha = info["sha256"]
        assert sha is None or re.fullmatch(r"[0-9a-f]{64}", sha), name
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}` |"))
        assert info["url"] in row
        assert (sha or "unknown") in row
        if info["top1"] is not None:
            assert f"{info['top1']}%" in row
            assert f"{info['num_frames']} x {info['frame_interval']}" in row


def test_kinetics_alias_picks_depth_and_frames():
    assert release_name("kinetics400", 50, 8) == "mvfnet50_k400_8x8"
    assert release_name("kinetics400", 101, 16) == "mvfnet101_k400_16x4"
    assert release_name("mvfnet50_k400_4x16", 50, 12) == "mvfnet50_k400_4x16"
    with pytest.raises(ValueError, match="for 12 frames.*weights='mvfnet50_k400_4x16'"):
        release_name("kinetics400", 50, 12)
    with pytest.raises(ValueError, match="MVFNet ResNet-50 and ResNet-101 only"):
        release_name("kinetics400", None, 8)


def test_every_video_release_has_its_architecture_in_the_model_registry():
    videos = {name for name in presets.PRESETS if not presets.is_backbone(name)}
    assert set(registry.PRETRAINED) == videos
    for name, (model, kwargs) in registry.PRETRAINED.items():
        assert model in registry.MODELS
        assert kwargs["num_frames"] == presets.PRESETS[name]["num_frames"]
    with pytest.raises(ValueError, match="Received: name='nope'"):
        weights_info("nope")


def test_class_names():
    names = kinetics400_classes()
    assert len(names) == len(set(names)) == 400
    assert names == sorted(names)
    assert names[0] == "abseiling" and names[-1] == "zumba"
    scores = np.zeros((2, 400))
    scores[0, names.index("playing guitar")] = 0.9
    scores[1, names.index("yoga")] = 0.7
    scores[1, names.index("tai chi")] = 0.2
    top = decode_predictions(scores, top=2)
    assert top[0][0] == ("playing guitar", 0.9)
    assert top[1] == [("yoga", 0.7), ("tai chi", 0.2)]
    with pytest.raises(ValueError, match=r"Received: predictions.shape=\(2, 5\)"):
        decode_predictions(np.zeros((2, 5)))


@pytest.fixture
def served_preset(file_server, weights_cache, monkeypatch):
    """A registry entry whose file sits on the local server; yields (name, path, stop)."""
    root, base_url, stop = file_server
    monkeypatch.setenv(presets.BASE_URL_ENV, base_url)
    name = "mvfnet50_k400_8x8"
    served = root / presets.PRESETS[name]["file"]
    served.parent.mkdir(parents=True)
    torch.save({"state_dict": {"fc.bias": torch.ones(3)}}, served)
    return name, served, stop


def test_download_unverified_says_so(served_preset, weights_cache, capsys):
    name, served, stop = served_preset
    path = presets.download_checkpoint(name)
    assert pathlib.Path(path).read_bytes() == served.read_bytes()
    assert pathlib.Path(path).parent == weights_cache / "keras_mvf"
    digest = hashlib.sha256(served.read_bytes()).hexdigest()
    err = capsys.readouterr().err
    assert f"no sha256 is recorded for {name}, so R50_8x8.pth was only checked" in err
    assert digest in err
    stop()
    assert presets.download_checkpoint(name) == path  # cached: no server needed


def test_download_checks_recorded_sha256(served_preset, monkeypatch):
    name, served, _ = served_preset
    digest = hashlib.sha256(served.read_bytes()).hexdigest()
    monkeypatch.setitem(presets.PRESETS, name, {**presets.PRESETS[name], "sha256": "0" * 64})
    with pytest.raises(RuntimeError, match="does not match"):
        presets.download_checkpoint(name)
    monkeypatch.setitem(presets.PRESETS, name, {**presets.PRESETS[name], "sha256": digest})
    assert pathlib.Path(presets.download_checkpoint(name)).read_bytes() == served.read_bytes()


def test_offline_error_names_url_and_conversion(weights_cache, monkeypatch):
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(presets.BASE_URL_ENV, f"http://127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}/v0.2/R101_8x8.pth"
    with pytest.raises(RuntimeError, match=re.escape(url)) as error:
        presets.download_checkpoint("mvfnet101_k400_8x8")
    assert "keras-mvf convert /path/R101_8x8.pth mvfnet101_k400_8x8/" in str(error.value)
