"""Files: on any filesystem TensorFlow reaches, files written whole or not at all, and
class-name files (one name per line).

The `tf.io.gfile` wrappers take local paths and URIs (`gs://`, `s3://`, `ram://`)
and keep Python's errors: a missing file raises `FileNotFoundError` (an
`OSError`, as `open` does), not TensorFlow's `NotFoundError`. TensorFlow is
imported on first use, so importing this module stays cheap.
"""

import contextlib
import os
import posixpath
import secrets
import shutil


def _gfile():
    import tensorflow as tf

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
    if "r" in mode and not _gfile().exists(path):
        raise FileNotFoundError(f"No such file: {path}")
    return _gfile().GFile(path, mode)


def isdir(path):
    return _gfile().isdir(os.fspath(path))


def listdir(folder):
    """Names in `folder` (`[]` when it does not exist)."""
    folder = os.fspath(folder)
    return sorted(_gfile().listdir(folder)) if _gfile().isdir(folder) else []


def makedirs(folder):
    _gfile().makedirs(os.fspath(folder))


def glob(pattern):
    return sorted(_gfile().glob(os.fspath(pattern)))


def remove(path):
    _gfile().remove(os.fspath(path))


def replace(source, target):
    """Renames `source` onto `target`, replacing it (atomic on local and POSIX filesystems)."""
    _gfile().rename(os.fspath(source), os.fspath(target), overwrite=True)


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
    """Yields a new path beside `path` to write to; renames it to `path` when the block succeeds.

    Readers of `path` see the old file (or directory) or the complete new one,
    never part of one; a write that fails or is killed leaves `path` as it
    was (a killed one may leave the hidden `.partial-<random>-<name>` behind).
    A directory replaces an old one in two renames: the old one is moved aside
    and deleted only once the new one is in place.
    """
    path = os.fspath(path)
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


def write_labels(path, labels):
    """One label per line, the line number being the class index."""
    with open(path, "w", encoding="utf-8") as file:
        file.write("".join(f"{label}\n" for label in labels))


def read_labels(path):
    """Reads a file written by `write_labels`."""
    with open(path, encoding="utf-8") as file:
        return [line.rstrip("\r\n") for line in file]
