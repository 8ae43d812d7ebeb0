"""Files on any filesystem TensorFlow reaches: local paths and URIs (`gs://`, `s3://`, `ram://`).

Thin wrappers over `tf.io.gfile` that keep Python's errors: a missing file
raises `FileNotFoundError` (an `OSError`, as `open` does), not TensorFlow's
`NotFoundError`. TensorFlow is imported on first use, so importing this
module stays cheap.
"""

import os
import posixpath


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
