"""Pieces the SavedModel and TFLite exports share."""

import keras


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


def check_labels(labels, model):
    """Returns `labels` as a list of strings, one per class, or None."""
    if labels is None:
        return None
    labels = [str(label) for label in labels]
    num_classes = model.outputs[0].shape[-1]
    if len(labels) != num_classes:
        raise ValueError(
            f"Expected one label per class ({num_classes}). Received: {len(labels)} labels"
        )
    bad = [label for label in labels if not label or "\n" in label or "\r" in label]
    if bad:
        raise ValueError(f"Labels must be non-empty single lines. Received: labels={bad[:3]}")
    return labels


def write_labels(path, labels):
    """One label per line, the line number being the class index."""
    with open(path, "w", encoding="utf-8") as file:
        file.write("".join(f"{label}\n" for label in labels))


def read_labels(path):
    """Reads a file written by `write_labels`."""
    with open(path, encoding="utf-8") as file:
        return [line.rstrip("\r\n") for line in file]
