"""The torch-free `.pth` reader against files written by `torch.save`."""

import collections
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

from keras_mvf.weights import UnsafeCheckpointError, read_pth, read_state_dict


def _tensors():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    return collections.OrderedDict(
        conv=torch.randn(8, 3, 7, 7),
        transposed=torch.randn(5, 3).t(),  # non-contiguous strides
        view=base[1:3, 2:5],  # offset into a shared storage
        whole=base,
        half=torch.randn(4).half(),
        bfloat=torch.randn(6).bfloat16(),
        long=torch.tensor([0, 7, -3]),
        flags=torch.tensor([True, False]),
        scalar=torch.tensor(2.5),
        empty=torch.zeros(0, 3),
    )


def _expected(tensor):
    return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_reads_torch_save_in_both_formats(tmp_path, zip_format):
    tensors = _tensors()
    path = tmp_path / "checkpoint.pth"
    checkpoint = {
        "meta": {"epoch": 150, "mmcv_version": "1.2", "config": "model = dict(...)"},
        "state_dict": tensors,
        "optimizer": {
            "state": {0: {"momentum_buffer": torch.ones(3)}},
            "param_groups": [{"lr": 0.01, "nesterov": True, "params": [0]}],
        },
    }
    torch.save(checkpoint, path, _use_new_zipfile_serialization=zip_format)
    assert zipfile.is_zipfile(path) == zip_format

    loaded = read_pth(path)
    assert loaded["meta"] == checkpoint["meta"]
    assert loaded["optimizer"]["param_groups"] == checkpoint["optimizer"]["param_groups"]
    np.testing.assert_array_equal(loaded["optimizer"]["state"][0]["momentum_buffer"], np.ones(3))
    state = read_state_dict(path)
    assert list(state) == list(tensors)
    for key, tensor in tensors.items():
        expected = _expected(tensor)
        assert state[key].dtype == expected.dtype, key
        assert state[key].shape == expected.shape, key
        np.testing.assert_array_equal(state[key], expected, err_msg=key)


def test_bare_state_dict_and_module_prefix(tmp_path):
    tensors = {
        "module.backbone.conv1.weight": torch.randn(2, 3, 1, 1),
        "module.fc.bias": torch.ones(2),
    }
    torch.save(tensors, tmp_path / "wrapped.pth")
    state = read_state_dict(tmp_path / "wrapped.pth")
    assert sorted(state) == ["backbone.conv1.weight", "fc.bias"]
    np.testing.assert_array_equal(state["fc.bias"], np.ones(2, np.float32))


def test_not_a_state_dict(tmp_path):
    torch.save({"meta": {"epoch": 1}}, tmp_path / "meta.pth")
    with pytest.raises(ValueError, match="holds no state dict"):
        read_state_dict(tmp_path / "meta.pth")
    not_checkpoints = {
        "noise": np.random.default_rng(0).bytes(256),
        "empty": b"",
        # A pickle opcode announcing a bytearray longer than any machine allows.
        "huge": b"\x80\x05\x96" + b"\xff" * 8,
    }
    for name, content in not_checkpoints.items():
        (tmp_path / f"{name}.pth").write_bytes(content)
        with pytest.raises(ValueError, match="not a PyTorch checkpoint"):
            read_pth(tmp_path / f"{name}.pth")


class _Payload:
    """Unpickling this runs `open(marker, "w")` through `builtins.exec`."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",)


def _malicious_files(tmp_path, marker):
    payload = {"state_dict": {"conv1.weight": _Payload(marker)}}
    legacy = tmp_path / "legacy.pth"
    torch.save(payload, legacy, _use_new_zipfile_serialization=False)
    archive = tmp_path / "archive.pth"
    with zipfile.ZipFile(archive, "w") as file:
        file.writestr("archive/data.pkl", pickle.dumps(payload, protocol=2))
        file.writestr("archive/version", "3\n")
    return legacy, archive


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned.txt"
    legacy, archive = _malicious_files(tmp_path, marker)
    for path in (legacy, archive):
        with pytest.raises(UnsafeCheckpointError, match=r"\.exec`"):
            read_state_dict(path)
        assert not marker.exists()

    # The same bytes do run code under an unrestricted unpickler: the test's payload is real.
    with zipfile.ZipFile(archive) as file:
        data = file.read("archive/data.pkl")
    unsafe = "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"
    subprocess.run([sys.executable, "-c", unsafe], input=data, check=True)
    assert marker.read_text() == "pwned"


def test_tensor_reading_past_its_storage_is_refused(tmp_path):
    path = tmp_path / "corrupt.pth"
    torch.save({"w": torch.zeros(4)}, path)
    with zipfile.ZipFile(path) as source:
        entries = {name: source.read(name) for name in source.namelist()}
    pkl = next(name for name in entries if name.endswith("data.pkl"))
    # Claim the 4-element storage holds 400 elements' worth of tensor.
    entries[pkl] = entries[pkl].replace(b"K\x04\x85", b"M\x90\x01\x85")
    with zipfile.ZipFile(path, "w") as target:
        for name, data in entries.items():
            target.writestr(name, data)
    with pytest.raises(ValueError, match="past the end of storage"):
        read_pth(path)
