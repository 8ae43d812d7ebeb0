"""Pieces the SavedModel and TFLite exports and the predictor share."""

import os

import keras

# Shared with the presets; the exports use them as `common.<name>`.
from keras_mvf.utils import files
from keras_mvf.utils.files import check_labels, read_labels, replacing, write_labels  # noqa: F401


def check_backend():
    """Both exports trace the model into a TensorFlow graph."""
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            "Exporting needs the TensorFlow backend (KERAS_BACKEND=tensorflow). "
            f"Received: backend={keras.backend.backend()!r}"
        )


def clip_shape(model):
    """`(num_frames, height, width, channels)` of the clips a video model takes."""
    shape = tuple(model.inputs[0].shape) if model.inputs else ()
    if len(shape) != 5 or None in shape[1:]:
        raise ValueError(
            "Expected a video model with a fixed clip input (batch, frames, height, width, 3). "
            f"Received: model input shape={shape}"
        )
    return shape[1:]


def resolve_labels(labels, num_classes, default=None):
    """Class names checked against `num_classes` (see `check_labels`), or None.

    `labels` is a list or the path of a file with one per line; without it,
    the file `default` (where an export or `train` put them) when it exists.
    """
    if labels is None and default is not None and files.isfile(default):
        labels = default
    if isinstance(labels, (str, os.PathLike)):
        return check_labels(read_labels(labels), num_classes, os.fspath(labels))
    return check_labels(labels, num_classes)
