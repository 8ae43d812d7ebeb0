"""Labels, exports and downloads against broken and hostile inputs: a clear error, never a
silently wrong result, and nothing half-written or invalid left where it is later used."""

import http.server
import os
import pathlib
import re
import threading
import time

import keras
import numpy as np
import pytest
import torch

from keras_mvf.export import common, export_saved_model, export_tflite, labels_path, load_predictor
from keras_mvf.layers import FoldFrames, UnfoldFrames
from keras_mvf.weights import presets
from tests.weights.test_pth_hostile import HOSTILE_PICKLES, _zip

NUM_FRAMES, SIZE, NUM_CLASSES = 2, 8, 3


def tiny_model(seed):
    """A small video model with the keras_mvf layout (a 'fold_frames' first layer)."""
    inputs = keras.Input((NUM_FRAMES, SIZE, SIZE, 3))
    x = FoldFrames(NUM_FRAMES, channels=3, name="fold_frames")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(
        NUM_CLASSES, kernel_initializer=keras.initializers.RandomNormal(seed=seed)
    )(x)
    x = UnfoldFrames(NUM_FRAMES)(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, keras.layers.Activation("softmax")(x))


@pytest.fixture(scope="module")
def models():
    return tiny_model(seed=1), tiny_model(seed=2)


@pytest.fixture(scope="module")
def clips():
    return np.random.default_rng(0).integers(0, 256, (3, NUM_FRAMES, SIZE, SIZE, 3), np.uint8)


def probabilities(model, clips):
    return keras.ops.convert_to_numpy(model(clips.astype("float32")))


def test_label_count_must_match_the_model(models, tmp_path):
    path = tmp_path / "tiny.keras"
    models[0].save(path)
    labels = tmp_path / "names.txt"
    for count in (NUM_CLASSES - 1, NUM_CLASSES + 1):
        labels.write_text("".join(f"class {i}\n" for i in range(count)))
        message = rf"^{re.escape(str(labels))}: expected one label per class of the model \(3\)\. "
        with pytest.raises(ValueError, match=rf"{message}Received: {count} labels$"):
            load_predictor(path, labels=labels)
        with pytest.raises(ValueError, match=rf"Received: {count} labels$"):
            load_predictor(path, labels=[f"class {i}" for i in range(count)])
    # The labels file next to the model is checked the same way.
    labels.rename(labels_path(path))
    with pytest.raises(ValueError, match=rf"^{re.escape(labels_path(path))}: .*Received: 4 lab"):
        load_predictor(path)
    pathlib.Path(labels_path(path)).write_text("a\nb\nc\n")
    assert load_predictor(path).labels == ["a", "b", "c"]


def test_saved_model_version_is_replaced_whole(models, clips, tmp_path):
    first, second = models
    base = tmp_path / "tiny"
    export_saved_model(first, base, labels=["a", "b", "c"])
    assert load_predictor(base).labels == ["a", "b", "c"]
    names = tmp_path / "names.txt"
    names.write_text("x\ny\n")
    with pytest.raises(ValueError, match=r"names\.txt: expected one label .*Received: 2 labels"):
        load_predictor(base, labels=names)

    path = export_saved_model(second, base)
    assert not os.path.exists(os.path.join(path, "assets", "labels.txt"))
    predictor = load_predictor(base)
    assert predictor.labels is None and predictor.label(2) == "2"
    np.testing.assert_allclose(predictor.predict(clips), probabilities(second, clips), atol=1e-6)
    assert os.listdir(base) == ["1"]  # nothing left beside the version


def test_tflite_is_replaced_with_its_labels(models, clips, tmp_path):
    first, second = models
    path = str(tmp_path / "tiny.tflite")
    (tmp_path / "tiny.labels.txt").write_text("stale\nlabels\nbeside\n")  # an older export's
    export_tflite(first, path, labels=["a", "b", "c"])
    assert load_predictor(path).labels == ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"`quantization` must be one of"):
        export_tflite(second, path, quantization="int4")
    assert load_predictor(path).labels == ["a", "b", "c"]  # a failed export changes nothing

    export_tflite(second, path)
    predictor = load_predictor(path)
    assert predictor.labels is None
    np.testing.assert_allclose(predictor.predict(clips), probabilities(second, clips), atol=1e-5)
    export_tflite(second, path, labels=["x", "y", "z"])
    assert load_predictor(path).labels == ["x", "y", "z"]
    # The labels travel inside the file; none of an older export's remain beside it.
    assert sorted(os.listdir(tmp_path)) == ["tiny.tflite"]


def test_an_interrupted_write_leaves_the_old_file_or_directory(tmp_path):
    file, folder = tmp_path / "tiny.tflite", tmp_path / "1"
    file.write_text("old")
    folder.mkdir()
    (folder / "saved_model.pb").write_text("old")
    for path, directory in ((file, False), (folder, True)):
        with pytest.raises(KeyboardInterrupt):
            with common.replacing(path, directory) as partial:
                target = pathlib.Path(partial, "saved_model.pb") if directory else partial
                pathlib.Path(target).write_text("half")
                raise KeyboardInterrupt  # killed half way
    assert file.read_text() == (folder / "saved_model.pb").read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["1", "tiny.tflite"]

    with common.replacing(folder, directory=True) as partial:
        pathlib.Path(partial, "saved_model.pb").write_text("new")
        assert (folder / "saved_model.pb").read_text() == "old"
    assert os.listdir(folder) == ["saved_model.pb"]
    assert (folder / "saved_model.pb").read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["1", "tiny.tflite"]


@pytest.fixture
def release(file_server, weights_cache, monkeypatch):
    """`(name, served file, cache path)` of a release served by the local server."""
    root, base_url, _ = file_server
    monkeypatch.setenv(presets.BASE_URL_ENV, base_url)
    name = "resnet50_imagenet"
    served = root / presets.PRESETS[name]["file"]
    served.parent.mkdir(parents=True)
    return name, served, weights_cache / "keras_mvf" / served.name


def good_checkpoint(path):
    torch.save({"fc.bias": torch.arange(3.0)}, path)
    return path.read_bytes()


def test_bad_downloads_are_deleted_and_a_good_one_still_comes(release, tmp_path):
    name, served, cached = release
    good = good_checkpoint(tmp_path / "good.pth")
    bad = {
        "html error page": b"<html><body>404: rate limit exceeded</body></html>",
        "cut short": good[: len(good) // 2],
        "hostile pickle": _zip(tmp_path / "hostile.pth", HOSTILE_PICKLES["persistent"][0]),
    }
    for case, data in bad.items():
        served.write_bytes(data if isinstance(data, bytes) else data.read_bytes())
        message = (
            rf"^{re.escape(presets.checkpoint_url(name))} did not serve the {name} checkpoint: "
            rf".*\. The download was deleted, not cached as {re.escape(str(cached))};"
        )
        with pytest.raises(RuntimeError, match=message):
            presets.download_checkpoint(name)
        assert os.listdir(cached.parent) == [], case
    served.write_bytes(good)
    assert presets.download_checkpoint(name) == str(cached)
    assert cached.read_bytes() == good


def test_invalid_cached_file_is_downloaded_again_once(release, tmp_path, capsys):
    name, served, cached = release
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"<html>half a download left by an older version")
    served.write_bytes(b"<html>still not a checkpoint")
    with pytest.raises(RuntimeError, match=rf"not cached as {re.escape(str(cached))}"):
        presets.download_checkpoint(name)
    assert f"deleting the cached {cached} (not a PyTorch checkpoint" in capsys.readouterr().err
    assert os.listdir(cached.parent) == []

    cached.write_bytes(b"<html>half a download left by an older version")
    good = good_checkpoint(served)
    assert presets.download_checkpoint(name) == str(cached)
    assert cached.read_bytes() == good
    assert presets.download_checkpoint(name) == str(cached)  # valid: kept, not fetched again


class _Stalling(http.server.BaseHTTPRequestHandler):
    """Announces `body`, sends half of it, waits for `release`, then drops the connection."""

    body, stalled, release = b"", threading.Event(), threading.Event()

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body[: len(self.body) // 2])
        self.wfile.flush()
        self.stalled.set()
        self.release.wait(30)

    def log_message(self, format, *args):
        pass


def test_a_download_cut_off_never_reaches_the_cache(weights_cache, tmp_path, monkeypatch):
    name = "resnet50_imagenet"
    cached = weights_cache / "keras_mvf" / "resnet50.pth"
    _Stalling.body = good_checkpoint(tmp_path / "good.pth")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stalling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(presets.BASE_URL_ENV, f"http://127.0.0.1:{server.server_address[1]}")
    errors = []

    def download():
        with pytest.raises(RuntimeError) as error:
            presets.download_checkpoint(name)
        errors.append(str(error.value))

    client = threading.Thread(target=download)
    client.start()
    try:
        assert _Stalling.stalled.wait(30)
        # The client may still be opening its file after the server stalled.
        deadline = time.monotonic() + 30
        while not (cached.parent.is_dir() and os.listdir(cached.parent)):
            assert time.monotonic() < deadline, "no partial file appeared"
            time.sleep(0.05)
        # Where a killed process would leave it: only a hidden partial file, not the cache entry.
        (partial,) = os.listdir(cached.parent)
        assert partial.startswith(".partial-") and partial.endswith("-resnet50.pth")
    finally:
        _Stalling.release.set()
        client.join(30)
        server.shutdown()
        server.server_close()
    (error,) = errors
    size = len(_Stalling.body)
    assert error.startswith(f"Could not get {name} from http://127.0.0.1:")
    assert (
        f"(the connection closed after {size // 2} of {size} bytes); nothing was cached " in error
    )
    assert f"cached as {cached}. " in error
    assert os.listdir(cached.parent) == []
