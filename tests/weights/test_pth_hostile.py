"""The `.pth` reader against hostile and broken files: one clear error, bounded memory and time."""

import collections
import pickle
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

from keras_mvf.weights import pth
from keras_mvf.weights.pth import CheckpointError, UnsafeCheckpointError, read_pth


def _unicode(text):
    data = text.encode()
    return pickle.BINUNICODE + struct.pack("<I", len(data)) + data


def _global(module, name):
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def _call(function, *args):
    """Pickle opcodes calling `function` (opcodes) with `args` (opcodes each)."""
    return function + pickle.MARK + b"".join(args) + pickle.TUPLE + pickle.REDUCE


def _int(value):
    return pickle.BININT1 + bytes([value])


def _zip(path, data_pkl, **entries):
    """A zip checkpoint from raw pickle bytes and `data/<key>` storage bytes."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        for key, data in entries.items():
            archive.writestr(f"archive/data/{key}", data)
    return path


def _entries(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


REBUILD = _global("torch._utils", "_rebuild_tensor_v2")
TARGETS = {
    "storage_type": ("torch", "FloatStorage"),
    "rebuild_tensor": ("torch._utils", "_rebuild_tensor_v2"),
    "ordered_dict": ("collections", "OrderedDict"),
}
# BUILD states: a dict updates `__dict__`; a (None, dict) pair sets attributes one by one.
FLAG = pickle.EMPTY_DICT + _unicode("is_bfloat16") + pickle.NEWTRUE + pickle.SETITEM
STATES = {"dict": FLAG, "slots": pickle.NONE + FLAG + pickle.TUPLE2}


@pytest.mark.parametrize("state", STATES.values(), ids=STATES)
@pytest.mark.parametrize("target", TARGETS.values(), ids=TARGETS)
def test_build_on_a_global_is_refused_and_later_loads_are_unharmed(tmp_path, target, state):
    trusted = tmp_path / "trusted.pth"
    weights = torch.randn(3, 4)
    torch.save({"w": weights}, trusted)
    hostile = pickle.PROTO + b"\x02" + _global(*target) + state + pickle.BUILD + pickle.STOP
    _zip(tmp_path / "hostile.pth", hostile)
    with pytest.raises(
        UnsafeCheckpointError, match=rf"refusing to set the state of `{'.'.join(target)}`"
    ):
        read_pth(tmp_path / "hostile.pth")
    np.testing.assert_array_equal(read_pth(trusted)["w"], weights.numpy())


def test_tensors_and_storages_refuse_build_too(tmp_path):
    path = tmp_path / "tensor.pth"
    torch.save({"w": torch.ones(2)}, path)
    entries = _entries(path)
    name = next(name for name in entries if name.endswith("data.pkl"))
    # The tensor's REDUCE is followed by BINPUT; sneak a BUILD of its storage offset in between.
    reduce_at = entries[name].rindex(pickle.REDUCE + pickle.BINPUT)
    state = pickle.EMPTY_DICT + _unicode("offset") + pickle.BININT1 + b"\x05" + pickle.SETITEM
    entries[name] = (
        entries[name][: reduce_at + 1] + state + pickle.BUILD + entries[name][reduce_at + 1 :]
    )
    with zipfile.ZipFile(path, "w") as archive:
        for entry, data in entries.items():
            archive.writestr(entry, data)
    with pytest.raises(UnsafeCheckpointError, match="refusing to set the state of a tensor"):
        read_pth(path)


def test_stride_zero_expansion_is_refused(tmp_path):
    path = tmp_path / "model.pth"
    torch.save({"w": torch.zeros(1).expand(20000, 20000)}, path)
    assert path.stat().st_size < 2000
    with pytest.raises(
        CheckpointError,
        match=r"model\.pth: tensor 'w' is a view of 400000000 elements over a storage of "
        r"1 element$",
    ):
        read_pth(path)

    # A small expansion, as torch.save writes for `expand`, is read as the full tensor.
    torch.save({"w": torch.full((1,), 2.5).expand(3, 5)}, path)
    np.testing.assert_array_equal(read_pth(path)["w"], np.full((3, 5), 2.5, np.float32))


def test_zero_size_tensor_declaring_huge_dimensions_is_refused(tmp_path):
    path = tmp_path / "empty.pth"
    torch.save({"fc.weight": torch.empty(10**9, 0)}, path)
    with pytest.raises(
        CheckpointError,
        match=r"tensor 'fc.weight' of shape \(1000000000, 0\) has no elements but declares "
        r"1000000000 over a storage of 0 elements",
    ):
        read_pth(path)


def test_tied_weights_load_but_repeating_a_storage_more_is_refused(tmp_path):
    base = torch.arange(100_000, dtype=torch.float32)
    path = tmp_path / "tied.pth"
    torch.save({f"w{i}": base for i in range(pth.MAX_SHARING)}, path)
    loaded = read_pth(path)
    assert len(loaded) == pth.MAX_SHARING
    np.testing.assert_array_equal(loaded["w3"], base.numpy())

    torch.save({f"w{i}": base for i in range(pth.MAX_SHARING + 1)}, path)
    with pytest.raises(CheckpointError, match="repeat their storages' elements more than 4"):
        read_pth(path)


def test_views_must_lie_inside_their_storage(tmp_path):
    path = tmp_path / "offset.pth"
    torch.save({"w": torch.arange(10.0)[6:]}, path)
    entries = _entries(path)
    name = next(name for name in entries if name.endswith("data.pkl"))
    # Offset 6 -> 9: the 4-element view would end 3 elements past the storage.
    assert entries[name].count(pickle.BININT1 + b"\x06") == 1
    entries[name] = entries[name].replace(pickle.BININT1 + b"\x06", pickle.BININT1 + b"\x09")
    with zipfile.ZipFile(path, "w") as archive:
        for entry, data in entries.items():
            archive.writestr(entry, data)
    with pytest.raises(CheckpointError, match=r"tensor 'w' reads past the end of storage"):
        read_pth(path)


# Loads the reader on its own (it needs only NumPy) to measure a fresh process's peak memory.
_PEAK_RSS = """
import importlib.util, resource, sys
spec = importlib.util.spec_from_file_location("pth", sys.argv[1])
pth = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pth)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    pth.read_pth(sys.argv[2])
except pth.CheckpointError as error:
    print(error)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_storage_entry_inflating_beyond_its_tensor_is_refused_unread(tmp_path):
    path = tmp_path / "bomb.pth"
    torch.save({"w": torch.ones(4)}, path)
    entries = _entries(path)
    storage = next(name for name in entries if name.endswith("/data/0"))
    inflated = 512 * 2**20
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            if name != storage:
                archive.writestr(name, data)
        with archive.open(storage, "w", force_zip64=True) as file:
            for _ in range(inflated // 2**20):
                file.write(bytes(2**20))
    assert path.stat().st_size < 2**20

    result = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, pth.__file__, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    message, peak_mib = result.stdout.strip().splitlines()
    assert message.endswith(
        f"bomb.pth: storage '0' declares 4 elements (16 bytes), but its zip entry holds "
        f"{inflated} bytes"
    )
    assert int(peak_mib) < 64


def test_pickle_entry_inflating_beyond_the_bound_is_refused(tmp_path):
    path = tmp_path / "pickle_bomb.pth"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("archive/data.pkl", "w") as file:
            for _ in range(pth.MAX_PICKLE_BYTES // 2**20 + 1):
                file.write(bytes(2**20))
    with pytest.raises(CheckpointError, match=r"zip entry 'archive/data.pkl' holds \d+ bytes"):
        read_pth(path)


def test_storage_entry_shorter_than_its_tensor_is_refused(tmp_path):
    path = tmp_path / "short.pth"
    torch.save({"w": torch.ones(4)}, path)
    entries = _entries(path)
    storage = next(name for name in entries if name.endswith("/data/0"))
    entries[storage] = entries[storage][:8]
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    with pytest.raises(CheckpointError, match="declares 4 elements .16 bytes., but its zip entry"):
        read_pth(path)


def _nested_pairs(depth):
    value = []
    for _ in range(depth):
        value = [value, value]
    return value


def test_shared_references_are_not_expanded_without_bound(tmp_path):
    data = pickle.dumps(_nested_pairs(40), protocol=2)  # 2**40 paths to the innermost list
    assert len(data) < 1000
    _zip(tmp_path / "pairs.pth", data)
    with pytest.raises(CheckpointError, match=r"holds more than 100000 objects"):
        read_pth(tmp_path / "pairs.pth")
    # A modest sharing loads, as a tree.
    _zip(tmp_path / "pairs.pth", pickle.dumps(_nested_pairs(10), protocol=2))
    assert read_pth(tmp_path / "pairs.pth") == _nested_pairs(10)


def test_nesting_depth_is_bounded(tmp_path):
    def nested(depth):
        value = []
        for _ in range(depth):
            value = [value]
        return value

    _zip(tmp_path / "deep.pth", pickle.dumps(nested(pth.MAX_DEPTH), protocol=2))
    assert read_pth(tmp_path / "deep.pth") == nested(pth.MAX_DEPTH)
    _zip(tmp_path / "deep.pth", pickle.dumps(nested(pth.MAX_DEPTH + 1), protocol=2))
    with pytest.raises(CheckpointError, match=r"containers nest more than 64 deep"):
        read_pth(tmp_path / "deep.pth")

    loop = []
    loop.append(loop)
    _zip(tmp_path / "loop.pth", pickle.dumps({"a": loop}, protocol=2))
    with pytest.raises(CheckpointError, match=r"\(or hold themselves\), below 'a/0/0/0"):
        read_pth(tmp_path / "loop.pth")


HOSTILE_PICKLES = {
    # Memo index 2**32 - 1: the unpickler would grow its memo to 2**33 slots (64 GiB).
    "memo": (
        pickle.PROTO + b"\x02" + pickle.NONE + pickle.LONG_BINPUT + b"\xff" * 4 + pickle.STOP,
        r"memo index 4294967295, beyond 1000000",
    ),
    # A bytes object announced as 1 TiB: the unpickler would allocate it before reading.
    "bytes": (
        pickle.PROTO + b"\x04" + pickle.BINBYTES8 + struct.pack("<Q", 2**40) + b"x",
        r"not a PyTorch checkpoint, or a corrupt one \(ValueError: expected 1099511627776",
    ),
    "opcodes": (
        pickle.PROTO + b"\x02" + (pickle.NONE + pickle.POP) * 500_001 + pickle.NONE + pickle.STOP,
        r"its pickle holds more than 1000000 opcodes",
    ),
    "persistent": (
        pickle.PROTO + b"\x02" + _unicode("file") + pickle.BINPERSID + pickle.STOP,
        r"refusing persistent object 'file': only storages",
    ),
    "bare_storage_type": (
        pickle.PROTO + b"\x02" + _global("torch", "FloatStorage") + pickle.STOP,
        r"it holds `torch.FloatStorage` at '', outside any tensor",
    ),
    "call_storage_type": (
        pickle.PROTO + b"\x02" + _call(_global("torch", "FloatStorage")) + pickle.STOP,
        r"not a PyTorch checkpoint, or a corrupt one \(TypeError: '_StorageType' object is not "
        r"callable\)",
    ),
    "tensor_of_a_string": (
        pickle.PROTO
        + b"\x02"
        + _call(REBUILD, _unicode("x"), _int(0), pickle.EMPTY_TUPLE, pickle.EMPTY_TUPLE)
        + pickle.STOP,
        r"a tensor was rebuilt from something that is not a storage",
    ),
}


@pytest.mark.parametrize("data, message", HOSTILE_PICKLES.values(), ids=HOSTILE_PICKLES)
def test_hostile_pickles_are_refused_with_one_error_type(tmp_path, data, message):
    path = _zip(tmp_path / "hostile.pth", data)
    with pytest.raises(CheckpointError, match=message):
        read_pth(path)


def _small_checkpoint(path, zip_format):
    tensors = collections.OrderedDict(
        conv=torch.randn(2, 3, 1, 1), half=torch.randn(3).half(), long=torch.tensor([1, -2])
    )
    checkpoint = {"state_dict": tensors, "meta": {"epoch": 3}}
    torch.save(checkpoint, path, _use_new_zipfile_serialization=zip_format)
    return path.read_bytes()


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_truncated_and_corrupted_files_raise_only_checkpoint_errors(tmp_path, zip_format):
    path = tmp_path / "broken.pth"
    data = _small_checkpoint(path, zip_format)
    read_pth(path)  # the intact file loads
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="broken.pth: "):
            read_pth(path)
    rng = np.random.default_rng(0)
    for position in rng.choice(len(data), size=min(len(data), 600), replace=False):
        corrupted = bytearray(data)
        corrupted[position] ^= int(rng.integers(1, 256))
        path.write_bytes(bytes(corrupted))
        try:
            read_pth(path)
        except CheckpointError as error:
            assert str(error).startswith(f"{path}: ")


def _legacy(*pickles, records=b""):
    header = [pth.LEGACY_MAGIC_NUMBER, 1001]
    return b"".join(pickle.dumps(obj, protocol=2) for obj in header) + b"".join(pickles) + records


def test_odd_legacy_files_are_refused(tmp_path):
    path = tmp_path / "odd.pth"
    storage = pickle.MARK + _unicode("storage") + _global("torch", "FloatStorage")
    storage += _unicode("0") + _unicode("cpu") + _int(2) + pickle.TUPLE + pickle.BINPERSID
    size, stride = _int(2) + pickle.TUPLE1, _int(1) + pickle.TUPLE1
    tensor = pickle.PROTO + b"\x02" + _call(REBUILD, storage, _int(0), size, stride) + pickle.STOP
    info = pickle.dumps({"little_endian": True}, protocol=2)
    keys = pickle.dumps(["0"], protocol=2)
    record = struct.pack("<q", 2) + np.array([1.5, -2.0], "<f4").tobytes()
    cases = {
        "its legacy header holds \\[\\], not a dict": _legacy(pickle.dumps([]), tensor, keys),
        "storage list \\['1'\\] does not match": _legacy(
            info, tensor, pickle.dumps(["1"]), records=record
        ),
        "storage '0' is corrupt: its record does not start with its element count 2": _legacy(
            info, tensor, keys, records=struct.pack("<q", 3) + record[8:]
        ),
        "storage '0' is truncated": _legacy(info, tensor, keys, records=record[:-1]),
        "neither a zip archive nor does it start with the legacy format's magic number": (
            pickle.dumps(7)
        ),
    }
    path.write_bytes(_legacy(info, tensor, keys, records=record))
    np.testing.assert_array_equal(read_pth(path), np.array([1.5, -2.0], np.float32))
    for message, data in cases.items():
        path.write_bytes(data)
        with pytest.raises(CheckpointError, match=message):
            read_pth(path)
