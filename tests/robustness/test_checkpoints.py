"""Hostile and broken checkpoints in child processes with bounded memory and time: the reader
and `keras-mvf convert` give one clear line (the CLI exit status 2), never a crash or a swap."""

import json
import os
import pickle
import re
import zipfile

import pytest
import torch

from keras_mvf.weights import pth
from tests.robustness.bounded import GIB, run_bounded
from tests.weights.test_pth_hostile import (
    HOSTILE_PICKLES,
    STATES,
    TARGETS,
    _entries,
    _global,
    _nested_pairs,
    _small_checkpoint,
    _zip,
)

MIB = 1 << 20


def _inflating(path, name, size, entries=None):
    """A zip checkpoint of `entries` plus an entry `name` that inflates to `size` zero bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for entry, data in (entries or {}).items():
            archive.writestr(entry, data)
        with archive.open(name, "w", force_zip64=True) as file:
            for _ in range(size // MIB):
                file.write(bytes(MIB))
    return path


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """`{path: pattern its one-line error matches}` for hostile and broken checkpoints."""
    root = tmp_path_factory.mktemp("hostile")
    cases = {
        _zip(root / f"pickle_{name}.pth", data): message
        for name, (data, message) in HOSTILE_PICKLES.items()
    }
    build = pickle.PROTO + b"\x02" + _global(*TARGETS["storage_type"]) + STATES["dict"]
    cases[_zip(root / "build.pth", build + pickle.BUILD + pickle.STOP)] = (
        r"refusing to set the state of `torch.FloatStorage`"
    )
    cases[_zip(root / "pairs.pth", pickle.dumps(_nested_pairs(40), protocol=2))] = (
        r"holds more than 100000 objects"
    )
    torch.save({"w": torch.zeros(1).expand(20000, 20000)}, root / "expand.pth")
    cases[root / "expand.pth"] = r"tensor 'w' is a view of 400000000 elements"
    torch.save({"w": torch.ones(4)}, root / "small.pth")
    entries = _entries(root / "small.pth")
    storage = next(name for name in entries if name.endswith("/data/0"))
    del entries[storage]
    cases[_inflating(root / "storage_bomb.pth", storage, 256 * MIB, entries)] = (
        rf"storage '0' declares 4 elements \(16 bytes\), but its zip entry holds {256 * MIB} bytes"
    )
    pickle_bomb = _inflating(
        root / "pickle_bomb.pth", "archive/data.pkl", pth.MAX_PICKLE_BYTES + MIB
    )
    cases[pickle_bomb] = r"zip entry 'archive/data.pkl' holds \d+ bytes"
    for zip_format in (True, False):
        path = root / f"truncated_{'zip' if zip_format else 'legacy'}.pth"
        path.write_bytes(_small_checkpoint(path, zip_format)[:300])
        cases[path] = r"."
    (root / "error_page.pth").write_text("<!DOCTYPE html><html><body>Not Found</body></html>")
    (root / "empty.pth").write_bytes(b"")
    for name in ("error_page.pth", "empty.pth"):
        cases[root / name] = r"not a PyTorch checkpoint"
    return {str(path): message for path, message in cases.items()}


# Loads the reader on its own (it needs only NumPy); one JSON line per file.
_READ = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("pth", sys.argv[1])
pth = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pth)
for path in sys.argv[2:]:
    try:
        pth.read_pth(path)
        error = None
    except Exception as exception:
        error = [type(exception).__name__, str(exception)]
    with open("/proc/self/status") as status:  # VmHWM: this process's peak resident memory
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) // 1024
    print(json.dumps([path, error, peak]), flush=True)
"""


def test_reader_refuses_each_with_one_line_in_bounded_memory(hostile):
    result = run_bounded(_READ, pth.__file__, *hostile, memory=1 * GIB, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [path for path, _, _ in lines] == list(hostile)
    for path, error, peak_mib in lines:
        assert error is not None, f"{path} was read"
        kind, message = error
        assert kind in ("CheckpointError", "UnsafeCheckpointError"), (path, error)
        assert message.startswith(f"{path}: ") and "\n" not in message, message
        assert re.search(hostile[path], message), (path, message)
        assert peak_mib < 64, f"{path}: {peak_mib} MiB"


# `keras-mvf convert` on each file in one process (importing TensorFlow once); one JSON line
# per file: the exit status and what it wrote to stderr.
_CONVERT = """
import contextlib, io, json, sys
from keras_mvf.cli import main
for path in sys.argv[2:]:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        status = main(["convert", path, sys.argv[1]])
    print(json.dumps([path, status, stderr.getvalue()]), flush=True)
"""


@pytest.mark.slow
def test_convert_command_exits_2_with_one_line(hostile, tmp_path):
    output = tmp_path / "out"  # the preset directory convert would write
    result = run_bounded(_CONVERT, output, *hostile, memory=8 * GIB, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("[")]
    assert [path for path, _, _ in lines] == list(hostile)
    for path, status, stderr in lines:
        assert status == 2, (path, stderr)
        assert stderr.startswith(f"keras-mvf convert: error: {path}: "), stderr
        assert stderr.count("\n") == 1 and re.search(hostile[path], stderr), stderr
    assert not os.path.exists(output)
