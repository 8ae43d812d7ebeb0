"""Files written whole or not at all, and class-name files (one name per line)."""

import contextlib
import os
import secrets
import shutil


@contextlib.contextmanager
def replacing(path, directory=False):
    """Yields a new path beside `path` to write to; renames it to `path` when the block succeeds.

    Readers of `path` see the old file (or directory) or the complete new one,
    never part of one; a write that fails or is killed leaves `path` as it
    was (a killed one may leave the hidden `.<name>.<random>.partial` behind).
    A directory replaces an old one in two renames: the old one is moved aside
    and deleted only once the new one is in place.
    """
    path = os.fspath(path)
    parent, name = os.path.split(os.path.abspath(path))
    temp = os.path.join(parent, f".{name}.{secrets.token_hex(4)}.partial")
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
