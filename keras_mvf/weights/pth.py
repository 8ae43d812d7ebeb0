"""Reads PyTorch `.pth` checkpoints into NumPy arrays without torch and without running pickle code.

A `.pth` file is a pickle whose tensors point into raw storages: `torch.save`
writes either a zip archive (`<name>/data.pkl` plus one `<name>/data/<key>` file
per storage, PyTorch >= 1.6) or the legacy stream of PyTorch <= 1.5 (magic
number, protocol, system info, the pickle, the storage keys, then each storage
as an int64 element count followed by its bytes). Both are read here with an
unpickler that admits only the globals that rebuild tensors and ordered dicts,
so a malicious file is refused before any of its code can run.

A hostile or broken file cannot make the reader use much more memory or time
than its own size justifies. These bounds hold, each far above what an mmcv
ResNet-101 checkpoint with optimizer state needs (1300 tensors, 46000 pickle
opcodes, nesting depth 5):

- a pickle of at most `MAX_PICKLE_BYTES` (64 MiB) and `MAX_OPCODES` (1M)
  opcodes, its memo indices below `MAX_OPCODES`, its length fields within
  its bytes (checked before the unpickler allocates anything);
- at most `MAX_OBJECTS` (100k) values in the loaded object, a shared one
  counting each time it is used, nested at most `MAX_DEPTH` (64) deep;
- a storage is read only if its zip entry (by the size the zip directory
  declares) or legacy record holds exactly its element count times the
  element size, and no more is read; a legacy file is refused after 64 bytes
  unless it starts with the magic number;
- a tensor has at most `MAX_DIMS` (32) dimensions, its view (offset, shape,
  strides) lies inside its storage, and it holds more elements than the
  storage only up to `MAX_EXPANSION` (65536: stride-0 expansions of small
  constants); all tensors together hold at most `MAX_SHARING` (4) times their
  storages' elements plus `MAX_EXPANSION` (tied weights appear under several
  names).

Every failure raises `CheckpointError` (a `ValueError`) naming the file and
what was wrong; `UnsafeCheckpointError` is the subclass for pickles that ask for
anything but tensors and containers.
"""

import collections
import io
import math
import os
import pickle
import pickletools
import reprlib
import struct
import zipfile
import zlib

import numpy as np

# PyTorch's legacy format starts with this pickled int.
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
BFLOAT16 = "bfloat16"

MAX_PICKLE_BYTES = 64 * 2**20
MAX_OPCODES = 1_000_000
MAX_OBJECTS = 100_000
MAX_DEPTH = 64
MAX_DIMS = 32
MAX_EXPANSION = 2**16
MAX_SHARING = 4

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


class CheckpointError(ValueError):
    """A file is not a readable PyTorch checkpoint: broken, hostile or beyond the bounds."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint asked for something other than tensors and containers."""


# What bytes that are not a well-formed checkpoint raise while they are parsed.
_PARSE_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    AttributeError,
    LookupError,
    TypeError,
    ValueError,
    OverflowError,
    struct.error,
    zipfile.BadZipFile,
    zlib.error,
    NotImplementedError,
)


def _short(value):
    """A bounded repr of something a file chose, for error messages."""
    return reprlib.repr(value)


class _Sealed:
    """An object the pickle may hold but never change: its BUILD opcode is refused."""

    __slots__ = ()

    def __setstate__(self, state):
        raise UnsafeCheckpointError(
            f"refusing to set the state of {self!r} (pickle BUILD): a checkpoint may only "
            "call the functions that rebuild tensors"
        )


class _StandIn(_Sealed):
    """What the pickle gets for a torch global: immutable, so no file can alter later loads."""

    __slots__ = ("name",)

    def __init__(self, name, **fields):
        for field, value in {"name": name, **fields}.items():
            object.__setattr__(self, field, value)

    def __setattr__(self, field, value):
        raise UnsafeCheckpointError(f"refusing to set `{self.name}.{field}`")

    def __delattr__(self, field):
        raise UnsafeCheckpointError(f"refusing to delete `{self.name}.{field}`")

    def __repr__(self):
        return f"`{self.name}`"


class _StorageType(_StandIn):
    """Stands in for `torch.FloatStorage` & co.: only its element type matters."""

    __slots__ = ("raw_dtype", "is_bfloat16")

    def __init__(self, name):
        dtype = STORAGE_DTYPES[name]
        # bfloat16 has no NumPy type: its raw 16-bit patterns are read as uint16.
        super().__init__(
            f"torch.{name}",
            raw_dtype=np.dtype("uint16") if dtype == BFLOAT16 else dtype,
            is_bfloat16=dtype == BFLOAT16,
        )


class _Function(_StandIn):
    """Stands in for a callable global (`collections.OrderedDict`, torch's rebuild functions)."""

    __slots__ = ("function",)

    def __init__(self, name, function):
        super().__init__(name, function=function)

    def __call__(self, *args):
        return self.function(*args)


class _Storage(_Sealed):
    """A storage named by the pickle; its bytes are attached after unpickling."""

    __slots__ = ("storage_type", "key", "numel", "array")
    __hash__ = None

    def __init__(self, storage_type, key, numel):
        self.storage_type, self.key, self.numel, self.array = storage_type, key, numel, None

    def __repr__(self):
        return f"storage {_short(self.key)}"


class _PendingTensor(_Sealed):
    """A tensor view (offset, size, stride) of a storage whose bytes are not read yet."""

    __slots__ = ("storage", "offset", "size", "stride")
    __hash__ = None

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __repr__(self):
        return f"a tensor of shape {self.size}"


def _index(value, what):
    """`value` as a non-negative int NumPy can index with."""
    if type(value) is not int or not 0 <= value < 2**62:
        raise CheckpointError(f"{what} {_short(value)} is not an int in [0, 2**62)")
    return value


def _shape(values, what):
    if not isinstance(values, (tuple, list)) or len(values) > MAX_DIMS:
        raise CheckpointError(f"{what} {_short(values)} is not a tuple of at most {MAX_DIMS} ints")
    return tuple(_index(value, what) for value in values)


def _rebuild_tensor(
    storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None
):
    """Replaces `torch._utils._rebuild_tensor_v2`."""
    if not isinstance(storage, _Storage):
        raise UnsafeCheckpointError("a tensor was rebuilt from something that is not a storage")
    size, stride = _shape(size, "tensor size"), _shape(stride, "tensor stride")
    if len(size) != len(stride):
        raise CheckpointError(f"a tensor has size {size} but strides {stride}")
    return _PendingTensor(storage, _index(storage_offset, "tensor storage offset"), size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    """Replaces `torch._utils._rebuild_parameter`: a parameter is read as its tensor."""
    if not isinstance(data, _PendingTensor):
        raise UnsafeCheckpointError("a parameter was rebuilt from something that is not a tensor")
    return data


SAFE_GLOBALS = {
    ("collections", "OrderedDict"): _Function("collections.OrderedDict", collections.OrderedDict),
    ("torch._utils", "_rebuild_tensor_v2"): _Function(
        "torch._utils._rebuild_tensor_v2", _rebuild_tensor
    ),
    ("torch._utils", "_rebuild_parameter"): _Function(
        "torch._utils._rebuild_parameter", _rebuild_parameter
    ),
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Admits only `SAFE_GLOBALS`; storages become `_Storage` placeholders in `storages`."""

    def __init__(self, file, storages):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) not in SAFE_GLOBALS:
            raise UnsafeCheckpointError(
                f"refusing to load `{_short(module)[1:-1]}.{_short(name)[1:-1]}`: a weights "
                "file may only hold tensors and containers, and this reader rebuilds nothing "
                "else; if the file is trusted, re-save its state_dict with "
                "`torch.save(model.state_dict(), path)`"
            )
        return SAFE_GLOBALS[(module, name)]

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) not in (5, 6) or pid[0] != "storage":
            raise UnsafeCheckpointError(f"refusing persistent object {_short(pid)}: only storages")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise UnsafeCheckpointError(f"unknown storage type {_short(storage_type)}")
        if len(pid) > 5 and pid[5] is not None:
            raise CheckpointError("storage views of the pre-1.0 PyTorch format are not supported")
        if not isinstance(key, str):
            raise CheckpointError(f"storage key {_short(key)} is not a string")
        storage = self.storages.setdefault(
            key, _Storage(storage_type, key, _index(numel, f"size of storage {_short(key)}"))
        )
        if storage.storage_type is not storage_type or storage.numel != numel:
            raise CheckpointError(f"storage {_short(key)} is declared twice, differently")
        return storage


def _load_pickle(stream, storages):
    """Unpickles the next pickle of `stream`, after checking it against the bounds.

    `pickletools.genops` walks the opcodes without building anything, so a
    length field larger than the data, or a memo index that would make the
    unpickler allocate a huge memo, is refused before `pickle` acts on it.
    """
    start = stream.tell()
    for count, (opcode, arg, _) in enumerate(pickletools.genops(stream), start=1):
        if count > MAX_OPCODES:
            raise CheckpointError(f"its pickle holds more than {MAX_OPCODES} opcodes")
        if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT") and int(arg) >= MAX_OPCODES:
            raise CheckpointError(f"its pickle uses memo index {arg}, beyond {MAX_OPCODES}")
    end = stream.tell()
    stream.seek(start)
    obj = _RestrictedUnpickler(stream, storages).load()
    stream.seek(end)
    return obj


def _entry(archive, name, file_size):
    """The zip directory's record of entry `name`, checked to point into the file, unencrypted."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise CheckpointError(f"the zip archive has no entry {_short(name)}") from None
    if not 0 <= info.header_offset < file_size:
        raise CheckpointError(f"zip entry {_short(name)} points outside the file")
    if info.flag_bits & 0x1:
        raise CheckpointError(f"zip entry {_short(name)} is encrypted")
    return info


def _read_entry(archive, info, limit):
    """The bytes of a zip entry, refused unread if it declares more than `limit` once inflated."""
    if info.file_size > limit:
        raise CheckpointError(
            f"zip entry {_short(info.filename)} holds {info.file_size} bytes, more than {limit}"
        )
    with archive.open(info) as file:
        data = file.read(limit)
    if len(data) != info.file_size:
        raise CheckpointError(f"zip entry {_short(info.filename)} is truncated")
    return data


def _read_zip(path):
    storages = {}
    file_size = os.path.getsize(path)
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        pickles = [name for name in names if name.endswith("data.pkl")]
        if len(pickles) != 1:
            raise CheckpointError("a zip file, but not a PyTorch checkpoint (no data.pkl)")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = "little"
        if f"{prefix}byteorder" in names:
            info = _entry(archive, f"{prefix}byteorder", file_size)
            byteorder = _read_entry(archive, info, 16).decode().strip()
        if byteorder not in ("little", "big"):
            raise CheckpointError(f"unknown byte order {_short(byteorder)}")
        data = _read_entry(archive, _entry(archive, pickles[0], file_size), MAX_PICKLE_BYTES)
        obj = _load_pickle(io.BytesIO(data), storages)
        order = "<" if byteorder == "little" else ">"
        for key, storage in storages.items():
            dtype = storage.storage_type.raw_dtype.newbyteorder(order)
            nbytes = storage.numel * dtype.itemsize
            info = _entry(archive, f"{prefix}data/{key}", file_size)
            if info.file_size != nbytes:
                raise CheckpointError(
                    f"storage {_short(key)} declares {storage.numel} elements ({nbytes} bytes), "
                    f"but its zip entry holds {info.file_size} bytes"
                )
            storage.array = np.frombuffer(_read_entry(archive, info, nbytes), dtype=dtype)
    return obj, storages


def _read_legacy(path):
    storages = {}
    with open(path, "rb") as file:
        # The magic number's pickle takes about 20 bytes: any other file is refused unread.
        head = file.read(64)
        if _load_pickle(io.BytesIO(head), storages) != LEGACY_MAGIC_NUMBER:
            raise CheckpointError(
                "not a PyTorch checkpoint: neither a zip archive nor does it start with the "
                "legacy format's magic number"
            )
        file.seek(0)
        data = file.read()
    stream = io.BytesIO(data)
    _load_pickle(stream, storages)  # the magic number again
    _load_pickle(stream, storages)  # protocol version
    sys_info = _load_pickle(stream, storages)
    if not isinstance(sys_info, dict):
        raise CheckpointError(f"its legacy header holds {_short(sys_info)}, not a dict")
    obj = _load_pickle(stream, storages)
    keys = _load_pickle(stream, storages)
    if not isinstance(keys, list) or len(keys) != len(storages) or set(keys) != set(storages):
        raise CheckpointError(
            f"its legacy storage list {_short(keys)} does not match the pickle's storages "
            f"{_short(sorted(storages))}"
        )
    byteorder = "<" if sys_info.get("little_endian", True) else ">"
    for key in keys:
        storage = storages[key]
        dtype = storage.storage_type.raw_dtype.newbyteorder(byteorder)
        header = stream.read(8)
        numel = int.from_bytes(header, "little" if byteorder == "<" else "big", signed=True)
        if len(header) != 8 or numel != storage.numel:
            raise CheckpointError(
                f"storage {_short(key)} is corrupt: its record does not start with its "
                f"element count {storage.numel}"
            )
        nbytes = numel * dtype.itemsize
        start = stream.tell()
        if start + nbytes > len(data):
            raise CheckpointError(f"storage {_short(key)} is truncated")
        storage.array = np.frombuffer(data, dtype=dtype, count=numel, offset=start)
        stream.seek(start + nbytes)
    return obj, storages


class _Materializer:
    """Replaces every pending tensor in nested containers by a NumPy array, within the bounds."""

    def __init__(self, storages):
        self.objects = 0
        held = sum(storage.numel for storage in storages.values())
        self.elements_left = MAX_SHARING * held + MAX_EXPANSION

    def __call__(self, obj, path=()):
        self.objects += 1
        if self.objects > MAX_OBJECTS:
            raise CheckpointError(
                f"it holds more than {MAX_OBJECTS} objects (a shared one counts each time "
                "it is used)"
            )
        if len(path) > MAX_DEPTH:
            raise CheckpointError(
                f"its containers nest more than {MAX_DEPTH} deep (or hold themselves), "
                f"below {_name(path[:8])}"
            )
        if isinstance(obj, _PendingTensor):
            return self.tensor(obj, _name(path))
        if isinstance(obj, dict):
            return type(obj)((key, self(value, (*path, key))) for key, value in obj.items())
        if isinstance(obj, (list, tuple)):
            return type(obj)(self(value, (*path, index)) for index, value in enumerate(obj))
        if isinstance(obj, _Sealed):
            raise CheckpointError(f"it holds {obj!r} at {_name(path)}, outside any tensor")
        return obj

    def tensor(self, pending, name):
        storage, size, stride = pending.storage, pending.size, pending.stride
        numel = math.prod(size)
        declared = math.prod(max(n, 1) for n in size)
        held = f"a storage of {storage.numel} element" + ("s" if storage.numel != 1 else "")
        if declared > max(storage.numel, MAX_EXPANSION):
            raise CheckpointError(
                f"tensor {name} is a view of {numel} elements over {held}"
                if numel
                else f"tensor {name} of shape {size} has no elements but declares "
                f"{declared} over {held}"
            )
        flat = storage.array
        if numel == 0:
            array = np.empty(size, flat.dtype)
        else:
            last = pending.offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
            if last >= storage.numel:
                raise CheckpointError(
                    f"tensor {name} reads past the end of storage {_short(storage.key)} "
                    f"({last} >= {storage.numel} elements)"
                )
            self.elements_left -= numel
            if self.elements_left < 0:
                raise CheckpointError(
                    f"its tensors (up to {name}) repeat their storages' elements more than "
                    f"{MAX_SHARING} times"
                )
            # Every step lies inside the storage (checked above); a length-1 axis takes none.
            itemsize = flat.dtype.itemsize
            strides = tuple(s * itemsize if n > 1 else 0 for n, s in zip(size, stride, strict=True))
            array = np.lib.stride_tricks.as_strided(flat[pending.offset :], size, strides).copy()
        if storage.storage_type.is_bfloat16:
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array


def _name(path):
    """`'state_dict/backbone.conv1.weight'`: where an object sits in the loaded container."""
    return repr("/".join(_short(key) if not isinstance(key, str) else key[:200] for key in path))


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
        CheckpointError: the file is not a PyTorch checkpoint, is corrupt or
            exceeds the bounds in this module's docstring; the message names
            the file and what was wrong.
    """
    path = str(path)
    try:
        try:
            obj, storages = _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)
        except CheckpointError:
            raise
        except _PARSE_ERRORS as error:
            raise CheckpointError(
                f"not a PyTorch checkpoint, or a corrupt one ({type(error).__name__}: "
                f"{str(error)[:200]})"
            ) from error
        return _Materializer(storages)(obj)
    except CheckpointError as error:
        error.args = (f"{path}: {error}",)
        raise


def read_state_dict(path):
    """Reads the state dict of a `.pth` file: `{name: numpy array}`.

    Accepts bare state dicts and containers holding one under `"state_dict"`
    (mmcv's `save_checkpoint`, with `meta` and `optimizer` beside it), and
    strips the `module.` prefix that `DataParallel` adds to every key.
    """
    obj = read_pth(path)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(
        isinstance(key, str) and isinstance(value, np.ndarray) for key, value in obj.items()
    ):
        raise CheckpointError(
            f"{path}: it holds no state dict: expected a dict of named tensors or a dict with a "
            f"'state_dict' entry. Received: {type(obj).__name__}"
            + (f" with keys {_short(list(obj)[:10])}" if isinstance(obj, dict) else "")
        )
    return {key.removeprefix("module."): value for key, value in obj.items()}
