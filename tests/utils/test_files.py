"""`files.replacing` and `files.local_copy` on a URI filesystem (TensorFlow's `ram://`)."""

import os
import uuid

import pytest

from keras_mvf.utils import files


def _write(path, text):
    with open(path, "w") as file:
        file.write(text)


def test_replacing_a_file_on_a_uri():
    folder = f"ram://keras_mvf/{uuid.uuid4().hex}"
    for text in ("old", "new"):
        with files.replacing(f"{folder}/log.csv") as local:
            assert not files.is_uri(local) and local.endswith("-log.csv")
            _write(local, text)
        assert files.read_bytes(f"{folder}/log.csv") == text.encode()
    with pytest.raises(RuntimeError), files.replacing(f"{folder}/log.csv") as local:
        _write(local, "torn")
        raise RuntimeError
    assert files.read_bytes(f"{folder}/log.csv") == b"new"
    assert files.listdir(folder) == ["log.csv"]  # nothing hidden left
    assert not os.path.exists(local)  # nor the local copy


def test_replacing_a_directory_on_a_uri():
    folder = f"ram://keras_mvf/{uuid.uuid4().hex}"
    with files.replacing(f"{folder}/preset", directory=True) as local:
        os.mkdir(os.path.join(local, "assets"))
        _write(os.path.join(local, "assets", "labels.txt"), "a\n")
        _write(os.path.join(local, "config.json"), "{}")
    assert files.listdir(f"{folder}/preset") == ["assets", "config.json"]
    with files.replacing(f"{folder}/preset", directory=True) as local:
        _write(os.path.join(local, "other.json"), "[]")
    assert files.listdir(folder) == ["preset"]
    assert files.listdir(f"{folder}/preset") == ["other.json"]  # the old files are gone
    with pytest.raises(RuntimeError), files.replacing(f"{folder}/preset", directory=True) as local:
        _write(os.path.join(local, "torn.json"), "")
        raise RuntimeError
    assert files.listdir(folder) == ["preset"]
    assert files.listdir(f"{folder}/preset") == ["other.json"]


def test_local_copy_of_a_uri_file_is_bounded_and_removed(tmp_path):
    path = f"ram://keras_mvf/{uuid.uuid4().hex}/clip.mp4"
    with files.replacing(path) as local:
        _write(local, "x" * 100)
    with files.local_copy(path, limit=100) as local:
        assert local.endswith("clip.mp4") and os.path.getsize(local) == 100
    assert not os.path.exists(local)
    with pytest.raises(OSError, match=rf"^{path}: 100 bytes, over the 99 bytes"):
        with files.local_copy(path, limit=99):
            pass
    with pytest.raises(FileNotFoundError, match="No such file: ram://"):
        with files.local_copy(path + ".missing", limit=100):
            pass
    here = str(tmp_path / "clip.mp4")
    with files.local_copy(here, limit=0) as local:  # a local path is used where it is
        assert local == here


@pytest.mark.parametrize(
    "call",
    [
        lambda path: files.open_file(path),
        lambda path: files.isdir(path),
        lambda path: files.glob(f"{path}/*.tfrecord"),
        lambda path: files.replacing(path).__enter__(),
    ],
)
def test_a_scheme_no_filesystem_handles_is_an_os_error_naming_the_path(call):
    with pytest.raises(OSError, match=r"http://host/model\.keras\S*: no filesystem for 'http://'"):
        call("http://host/model.keras")
