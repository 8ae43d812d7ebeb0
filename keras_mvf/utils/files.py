"""Files: on any filesystem TensorFlow reaches, files written whole or not at all, and
class-name files (one name per line).

The `tf.io.gfile` wrappers take local paths and URIs (`gs://`, `s3://`, `ram://`)
and keep Python's errors: a missing file raises `FileNotFoundError` (an
`OSError`, as `open` does), not TensorFlow's `NotFoundError`. TensorFlow is
imported on first use, so importing this module stays cheap.
"""

import contextlib
import io
import os
import posixpath
import secrets
import shutil
import tempfile


def _gfile(*paths):
    """`tf.io.gfile`, once every URI among `paths` has a filesystem TensorFlow knows.

    Raises:
        OSError: naming the path and the registered schemes, where TensorFlow
            would raise its own `UnimplementedError` deep inside the call.
    """
    import tensorflow as tf

    for path in paths:
        scheme = os.fspath(path).partition("://")[0] if is_uri(path) else ""
        if scheme and scheme not in tf.io.gfile.get_registered_schemes():
            schemes = sorted(s for s in tf.io.gfile.get_registered_schemes() if s)
            raise OSError(
                f"{path}: no filesystem for '{scheme}://' is registered with TensorFlow. "
                f"Expected a local path or one of: {', '.join(f'{s}://' for s in schemes)}"
            )
    return tf.io.gfile


def is_uri(path):
    """Whether `path` names a file through a filesystem scheme (`gs://bucket/x`)."""
    return "://" in os.fspath(path)


def join(folder, *names):
    """`os.path.join` for local paths, `/`-joined for URIs."""
    folder = os.fspath(folder)
    return posixpath.join(folder, *names) if is_uri(folder) else os.path.join(folder, *names)


def open_file(path, mode="r"):
    """`tf.io.gfile.GFile(path, mode)`; reading a missing file raises `FileNotFoundError`."""
    path = os.fspath(path)
    if "r" in mode and not _gfile(path).exists(path):
        raise FileNotFoundError(f"No such file: {path}")
    return _gfile(path).GFile(path, mode)


def isdir(path):
    return _gfile(path).isdir(os.fspath(path))


def isfile(path):
    """Whether `path` exists and is not a directory."""
    path = os.fspath(path)
    return _gfile(path).exists(path) and not _gfile().isdir(path)


def listdir(folder):
    """Names in `folder` (`[]` when it does not exist)."""
    folder = os.fspath(folder)
    return sorted(_gfile().listdir(folder)) if _gfile(folder).isdir(folder) else []


def makedirs(folder):
    _gfile(folder).makedirs(os.fspath(folder))


def glob(pattern):
    return sorted(_gfile(pattern).glob(os.fspath(pattern)))


def remove(path):
    """Removes the file `path`; a missing one raises `FileNotFoundError`."""
    path = os.fspath(path)
    if not _gfile().exists(path):
        raise FileNotFoundError(f"No such file: {path}")
    _gfile().remove(path)


def remove_tree(path):
    """Removes the file or directory `path`, if it exists."""
    path = os.fspath(path)
    if _gfile().isdir(path):
        _gfile().rmtree(path)
    elif _gfile().exists(path):
        _gfile().remove(path)


def copy(source, target):
    """Copies the file `source` to `target`, replacing it; either may be a URI."""
    _gfile().copy(os.fspath(source), os.fspath(target), overwrite=True)


def replace(source, target):
    """Renames `source` onto `target`, replacing it (atomic on local and POSIX filesystems)."""
    _gfile().rename(os.fspath(source), os.fspath(target), overwrite=True)


def rename(source, target):
    """Renames `source` to `target`; raises an error if `target` exists."""
    _gfile().rename(os.fspath(source), os.fspath(target), overwrite=False)


def _move_tree(source, target):
    """Moves the directory `source` to `target` (which must not exist), file by file.

    Object stores have no directories to rename (and TensorFlow's `ram://`
    renames only the name of one), so every file is renamed on its own.
    """
    gfile = _gfile()
    for folder, _, names in gfile.walk(source):
        relative = posixpath.relpath(folder, source) if folder != source else ""
        destination = posixpath.join(target, relative) if relative else target
        gfile.makedirs(destination)
        for name in names:
            gfile.rename(posixpath.join(folder, name), posixpath.join(destination, name))
    gfile.rmtree(source)


def _upload_tree(source, target):
    """Copies the local directory `source` to the new directory `target` (a URI)."""
    gfile = _gfile()
    for folder, _, names in os.walk(source):
        relative = os.path.relpath(folder, source)
        destination = target if relative == "." else posixpath.join(target, *relative.split(os.sep))
        gfile.makedirs(destination)
        for name in names:
            gfile.copy(os.path.join(folder, name), posixpath.join(destination, name))


def write_atomically(path, text):
    """Writes `text` to `path` under a temporary name, then renames it onto `path`.

    A crash leaves the old file or the new one, never a truncated mix (on
    object stores, where a rename is a copy, a reader may still see the old one
    until it completes).
    """
    temporary = f"{os.fspath(path)}.partial"
    with open_file(temporary, "w") as file:
        file.write(text)
    replace(temporary, path)


# Names being written start with this; the rest of the name ends as the target's does, as
# Keras (`.keras`, `.weights.h5`) and OpenCV (the container) want.
PARTIAL_PREFIX = ".partial-"


@contextlib.contextmanager
def replacing(path, directory=False):
    """Yields a new local path to write to; puts it in place of `path` when the block succeeds.

    Local: the new path is beside `path` and renamed onto it. Readers of `path`
    see the old file (or directory) or the complete new one, never part of
    one; a write that fails or is killed leaves `path` as it was (a killed one
    may leave the hidden `.partial-<random>-<name>` behind). A directory
    replaces an old one in two renames: the old one is moved aside and deleted
    only once the new one is in place.

    URI (`gs://...`): the new path is in a local temporary folder (Keras, the
    TFLite converter and OpenCV write local files). When the block succeeds it
    is uploaded to a hidden `.partial-<random>-<name>` beside `path`, which is
    then renamed onto `path`: a file in one rename (a copy on object stores,
    where each object is still replaced whole), a directory file by file, the
    old one moved aside first and deleted last. A failed block uploads nothing.
    """
    path = os.fspath(path)
    if is_uri(path):
        with _replacing_uri(path, directory) as temp:
            yield temp
        return
    parent, name = os.path.split(os.path.abspath(path))
    temp = os.path.join(parent, f"{PARTIAL_PREFIX}{secrets.token_hex(4)}-{name}")
    if directory:
        os.mkdir(temp)
    try:
        yield temp
        if directory and os.path.isdir(path):
            old = f"{temp}.old"
            os.rename(path, old)
            try:
                os.rename(temp, path)
            except BaseException:
                os.rename(old, path)
                raise
            shutil.rmtree(old)
        else:
            os.replace(temp, path)
    finally:
        if os.path.isdir(temp):
            shutil.rmtree(temp)
        elif os.path.lexists(temp):
            os.remove(temp)


@contextlib.contextmanager
def _replacing_uri(path, directory):
    gfile = _gfile(path)
    parent, name = posixpath.split(path.rstrip("/"))
    hidden = f"{PARTIAL_PREFIX}{secrets.token_hex(4)}-{name}"
    scratch = tempfile.mkdtemp(prefix="keras_mvf-")
    try:
        local = os.path.join(scratch, hidden)
        if directory:
            os.mkdir(local)
        yield local
        gfile.makedirs(parent)
        partial = posixpath.join(parent, hidden)
        try:
            if not directory:
                gfile.copy(local, partial, overwrite=True)
                gfile.rename(partial, path, overwrite=True)
                return
            _upload_tree(local, partial)
            # Not `{partial}.old`: `ram://` lists a folder's name as a prefix.
            old = posixpath.join(parent, f"{PARTIAL_PREFIX}{secrets.token_hex(4)}-{name}")
            if gfile.exists(path):
                _move_tree(path, old)
            try:
                _move_tree(partial, path)
            except BaseException:
                remove_tree(path)  # the part moved; the old directory goes back
                if gfile.exists(old):
                    _move_tree(old, path)
                raise
            remove_tree(old)
        finally:
            remove_tree(partial)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def local_copy(path, limit):
    """Yields a local path holding the file `path`: itself when local, else a temporary copy.

    A URI's file is copied to a local temporary folder (with the same name,
    as decoders go by the extension) and deleted after the block.

    Raises:
        FileNotFoundError: if `path` does not exist.
        OSError: if a URI's file is larger than `limit` bytes.
    """
    path = os.fspath(path)
    if not is_uri(path):
        yield path
        return
    if not isfile(path):
        raise FileNotFoundError(f"No such file: {path}")
    size = _gfile().stat(path).length
    if size > limit:
        raise OSError(
            f"{path}: {size} bytes, over the {limit} bytes a file read from a URI may have "
            "(it is copied to a local temporary file first)."
        )
    scratch = tempfile.mkdtemp(prefix="keras_mvf-")
    try:
        local = os.path.join(scratch, posixpath.basename(path))
        _gfile().copy(path, local)
        yield local
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def read_bytes(path):
    """The bytes of the file `path`; a missing one raises `FileNotFoundError`."""
    with open_file(path, "rb") as file:
        return file.read()


def check_labels(labels, num_classes, source="labels"):
    """Returns `labels` as a list of strings, one per class, or None.

    `source` names where the labels came from (a file) in the error messages.
    """
    if labels is None:
        return None
    labels = [str(label) for label in labels]
    if len(labels) != num_classes:
        raise ValueError(
            f"{source}: expected one label per class of the model ({num_classes}). "
            f"Received: {len(labels)} labels"
        )
    bad = [label for label in labels if not label or "\n" in label or "\r" in label]
    if bad:
        raise ValueError(f"{source}: labels must be non-empty single lines. Received: {bad[:3]}")
    return labels


def labels_path(path):
    """The labels file beside a model file, `model.keras` -> `model.labels.txt` (`path`
    may be a URI): earlier versions of `train` wrote it, and `.tflite` exports did
    before they packed their labels inside."""
    root, _ = os.path.splitext(os.fspath(path))
    return f"{root}.labels.txt"


def write_labels(path, labels):
    """One label per line, the line number being the class index."""
    with open_file(path, "w") as file:
        file.write("".join(f"{label}\n" for label in labels))


def read_labels(path):
    """Reads a file written by `write_labels` (`path` may be a URI)."""
    text = read_bytes(path).decode("utf-8")
    return [line.rstrip("\r\n") for line in io.StringIO(text, newline=None)]
