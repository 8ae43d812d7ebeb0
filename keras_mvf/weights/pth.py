"""Reads PyTorch `.pth` checkpoints into NumPy arrays without torch and without running pickle code.

A `.pth` file is a pickle whose tensors point into raw storages: `torch.save`
writes either a zip archive (`<name>/data.pkl` plus one `<name>/data/<key>` file
per storage, PyTorch >= 1.6) or the legacy stream of PyTorch <= 1.5 (magic
number, protocol, system info, the pickle, the storage keys, then each storage
as an int64 element count followed by its bytes). Both are read here with an
unpickler that admits only the globals that rebuild tensors and ordered dicts,
so a malicious file is refused before any of its code can run.
"""

import collections
import pickle
import zipfile

import numpy as np

# PyTorch's legacy format starts with this pickled int.
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
BFLOAT16 = "bfloat16"

STORAGE_DTYPES = {
    "DoubleStorage": np.dtype("float64"),
    "FloatStorage": np.dtype("float32"),
    "HalfStorage": np.dtype("float16"),
    "BFloat16Storage": BFLOAT16,
    "LongStorage": np.dtype("int64"),
    "IntStorage": np.dtype("int32"),
    "ShortStorage": np.dtype("int16"),
    "CharStorage": np.dtype("int8"),
    "ByteStorage": np.dtype("uint8"),
    "BoolStorage": np.dtype("bool"),
}


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint asked for something other than tensors and containers."""


class _StorageType:
    """Stands in for `torch.FloatStorage` & co.: only its element type matters."""

    def __init__(self, name):
        self.name = name
        dtype = STORAGE_DTYPES[name]
        # bfloat16 has no NumPy type: its raw 16-bit patterns are read as uint16.
        self.raw_dtype = np.dtype("uint16") if dtype == BFLOAT16 else dtype
        self.is_bfloat16 = dtype == BFLOAT16


class _Storage:
    """A storage named by the pickle; its bytes are attached after unpickling."""

    def __init__(self, storage_type, key, numel):
        self.storage_type = storage_type
        self.key = key
        self.numel = numel
        self.array = None


class _PendingTensor:
    """A tensor view (offset, size, stride) of a storage whose bytes are not read yet."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def materialize(self):
        storage = self.storage
        if any(s < 0 for s in self.size) or any(s < 0 for s in self.stride) or self.offset < 0:
            raise ValueError(f"Invalid tensor view of storage {storage.key!r}.")
        if 0 not in self.size:
            span = zip(self.size, self.stride, strict=True)
            last = self.offset + sum((n - 1) * s for n, s in span)
            if last >= storage.numel:
                raise ValueError(
                    f"A tensor reads past the end of storage {storage.key!r} "
                    f"({last} >= {storage.numel} elements): the checkpoint is corrupt."
                )
        flat = storage.array
        itemsize = flat.dtype.itemsize
        array = np.lib.stride_tricks.as_strided(
            flat[self.offset :] if 0 not in self.size else flat,
            shape=tuple(self.size),
            strides=tuple(s * itemsize for s in self.stride),
        ).copy()
        if storage.storage_type.is_bfloat16:
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array


def _rebuild_tensor(
    storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None
):
    """Replaces `torch._utils._rebuild_tensor_v2`."""
    if not isinstance(storage, _Storage):
        raise UnsafeCheckpointError("A tensor was rebuilt from something that is not a storage.")
    return _PendingTensor(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    """Replaces `torch._utils._rebuild_parameter`: a parameter is read as its tensor."""
    if not isinstance(data, _PendingTensor):
        raise UnsafeCheckpointError("A parameter was rebuilt from something that is not a tensor.")
    return data


SAFE_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Admits only `SAFE_GLOBALS`; storages become `_Storage` placeholders."""

    def __init__(self, file):
        super().__init__(file)
        self.storages = {}

    def find_class(self, module, name):
        if (module, name) not in SAFE_GLOBALS:
            raise UnsafeCheckpointError(
                f"Refusing to load `{module}.{name}`: a weights file may only hold tensors "
                "and containers, and this reader rebuilds nothing else. If the file is "
                "trusted, re-save its state_dict with `torch.save(model.state_dict(), path)`."
            )
        return SAFE_GLOBALS[(module, name)]

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise UnsafeCheckpointError(f"Refusing persistent object {pid!r}: only storages.")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise UnsafeCheckpointError(f"Unknown storage type {storage_type!r}.")
        if len(pid) > 5 and pid[5] is not None:
            raise ValueError("Storage views of the pre-1.0 PyTorch format are not supported.")
        key = str(key)
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type, key, int(numel))
        return self.storages[key]


def _materialize(obj):
    """Replaces every pending tensor in nested containers by a NumPy array."""
    if isinstance(obj, _PendingTensor):
        return obj.materialize()
    if isinstance(obj, dict):
        return type(obj)((key, _materialize(value)) for key, value in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(value) for value in obj)
    return obj


def _read_zip(path):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [name for name in names if name.endswith("data.pkl")]
        if len(pickles) != 1:
            raise ValueError(f"{path} is a zip file but not a PyTorch checkpoint (no data.pkl).")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = "little"
        if f"{prefix}byteorder" in names:
            byteorder = archive.read(f"{prefix}byteorder").decode().strip()
        with archive.open(pickles[0]) as file:
            unpickler = _RestrictedUnpickler(file)
            obj = unpickler.load()
        for key, storage in unpickler.storages.items():
            order = "<" if byteorder == "little" else ">"
            dtype = storage.storage_type.raw_dtype.newbyteorder(order)
            data = archive.read(f"{prefix}data/{key}")
            storage.array = np.frombuffer(data, dtype=dtype, count=storage.numel)
    return obj


def _read_legacy(path):
    with open(path, "rb") as file:
        header = _RestrictedUnpickler(file)
        try:
            magic = header.load()
        except UnsafeCheckpointError:
            raise
        except Exception as error:  # other bytes fail in many ways: EOF, bad opcode, overflow
            raise ValueError(f"{path} is not a PyTorch checkpoint ({error!r}).") from error
        if magic != LEGACY_MAGIC_NUMBER:
            raise ValueError(
                f"{path} is not a PyTorch checkpoint: it is neither a zip archive nor starts "
                "with the legacy format's magic number."
            )
        _protocol_version = _RestrictedUnpickler(file).load()
        sys_info = _RestrictedUnpickler(file).load()
        unpickler = _RestrictedUnpickler(file)
        obj = unpickler.load()
        keys = _RestrictedUnpickler(file).load()
        byteorder = "<" if sys_info.get("little_endian", True) else ">"
        for key in keys:
            storage = unpickler.storages[str(key)]
            numel = int(np.frombuffer(file.read(8), dtype=f"{byteorder}i8")[0])
            if numel != storage.numel:
                raise ValueError(f"Storage {key!r} of {path} is corrupt.")
            dtype = storage.storage_type.raw_dtype.newbyteorder(byteorder)
            data = file.read(numel * dtype.itemsize)
            storage.array = np.frombuffer(data, dtype=dtype, count=numel)
    return obj


def read_pth(path):
    """Reads a `torch.save` file (zip or legacy format) without torch.

    Args:
        path: path of the `.pth` file.

    Returns:
        The saved object with every tensor replaced by a NumPy array
        (bfloat16 tensors become float32).

    Raises:
        UnsafeCheckpointError: the pickle names a global other than those
            that rebuild tensors and ordered dicts; nothing of it has run.
        ValueError: the file is not a PyTorch checkpoint or is corrupt.
    """
    path = str(path)
    obj = _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)
    return _materialize(obj)


def read_state_dict(path):
    """Reads the state dict of a `.pth` file: `{name: numpy array}`.

    Accepts bare state dicts and containers holding one under `"state_dict"`
    (mmcv's `save_checkpoint`, with `meta` and `optimizer` beside it), and
    strips the `module.` prefix that `DataParallel` adds to every key.
    """
    obj = read_pth(path)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, np.ndarray) for v in obj.values()):
        raise ValueError(
            f"{path} holds no state dict: expected a dict of tensors or a dict with a "
            f"'state_dict' entry. Received: {type(obj).__name__}"
            + (f" with keys {sorted(obj)[:10]}" if isinstance(obj, dict) else "")
        )
    return {key.removeprefix("module."): value for key, value in obj.items()}
