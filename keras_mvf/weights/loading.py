"""Strict loading of weight files into a model that is already built.

`load_weights_file` copies a Keras `.weights.h5` or `.keras` file and
`load_pth` a PyTorch state dict of the release; both load every variable
of the model or none, except a classifier of another class count (or one
the model has not), and return a one-line summary. Which model to build for
a file is the business of `keras_mvf.models.pretrained`: nothing here
imports the models.
"""

import contextlib
import io
import os
import tempfile
import zipfile

import h5py

from keras_mvf import _compat
from keras_mvf.utils import files
from keras_mvf.weights import convert, pth

PTH_SUFFIXES = (".pth", ".pt", ".pth.tar")


def is_pth(weights):
    """Whether `weights` names a PyTorch checkpoint file (by its suffix)."""
    return isinstance(weights, (str, os.PathLike)) and str(weights).endswith(PTH_SUFFIXES)


def is_keras_file(weights):
    """Whether `weights` names a Keras `.weights.h5` or `.keras` file (by its suffix)."""
    return isinstance(weights, (str, os.PathLike)) and str(weights).endswith(
        (".weights.h5", ".keras")
    )


def summary(loaded, total, source, new_classes=None, unused_head=False, fresh=0):
    """`"loaded 320 of 322 variables from NAME; new classifier (101 classes)"`."""
    text = f"loaded {loaded} of {total} variables from {source}"
    if new_classes is not None:
        text += f"; new classifier ({new_classes} classes)"
    if unused_head:
        text += "; the source's classifier is not used (the model has no top)"
    if fresh:
        text += f"; {fresh} temporal layers as initialised (a 2D backbone)"
    return text


# A `.keras` file is a zip archive that keeps the model's weights in this member,
# in the `.weights.h5` layout.
KERAS_ARCHIVE_WEIGHTS = "model.weights.h5"


@contextlib.contextmanager
def _open_weights(path):
    """The open h5 weights file of a `.weights.h5` or `.keras` file."""
    path = os.fspath(path)
    # h5py and zipfile read local files; a URI's (`gs://...`) is read whole first.
    content = io.BytesIO(files.read_bytes(path)) if files.is_uri(path) else path
    if path.endswith(".keras"):
        with zipfile.ZipFile(content) as archive:
            if KERAS_ARCHIVE_WEIGHTS not in archive.namelist():
                raise ValueError(f"{path} holds no {KERAS_ARCHIVE_WEIGHTS}: not a Keras 3 model.")
            data = io.BytesIO(archive.read(KERAS_ARCHIVE_WEIGHTS))
        with h5py.File(data, "r") as file:
            yield file
    elif path.endswith(".weights.h5"):
        with h5py.File(content, "r") as file:
            yield file
    else:
        raise ValueError(
            f"Weights files must be .keras or .weights.h5 files. Received: weights={path!r}"
        )


def h5_layout(path):
    """ "pytorch" or "keras": the ResNet layout a `.weights.h5` or `.keras` file was
    saved from; None for a model without layouts (MobileNetV2).

    The ResNet's first Conv2D, `conv1_conv`, has a bias only in the "keras" layout.
    """
    with _open_weights(path) as file:
        variables = _compat.weights_h5_vars(file, "conv2d")
        if variables is None or variables.attrs.get("name") != "conv1_conv":
            return None
        return "keras" if len(variables) == 2 else "pytorch"


def _variables(file):
    """`{h5 path: dataset}` of a model's variables in an open weights file."""
    found = {}

    def visit(name, item):
        if isinstance(item, h5py.Dataset):
            found[item.name] = item

    if "layers" in file:
        file["layers"].visititems(visit)
    return found


def _classifier(file):
    """`{h5 path: shape}` of the classifier's variables (a model's only Dense), or {}."""
    variables = _compat.weights_h5_vars(file, "dense")
    return {item.name: item.shape for item in (variables or {}).values()}


def _describe(dataset):
    """`layer/sublayer[index] shape` of a variable in a weights file.

    Keras keeps each layer's name beside its variables (`vars`), also for a
    layer without variables, such as one holding sublayers.
    """
    names = []
    group = dataset.parent.parent  # the layer's group, holding `vars`
    while group.name != "/":
        if "vars" in group and "name" in group["vars"].attrs:
            names.insert(0, group["vars"].attrs["name"])
        group = group.parent
    layer = "/".join(names) or dataset.parent.name
    return f"{layer}[{os.path.basename(dataset.name)}] {dataset.shape}"


def _mismatches(wanted, given, skipped):
    """What keeps the variables `wanted` from being loaded from `given`, as text."""
    problems = []
    for path, variable in wanted.items():
        if path in skipped:
            continue
        if path not in given:
            problems.append(f"{_describe(variable)} not in the file")
        elif given[path].shape != variable.shape:
            problems.append(f"{_describe(variable)} is {given[path].shape} in the file")
    problems.extend(
        f"{_describe(variable)} of the file not in the model"
        for path, variable in given.items()
        if path not in skipped and path not in wanted
    )
    return problems


def load_weights_file(model, path, name=None):
    """Loads every variable of `model` from a `.weights.h5` or `.keras` file, or none.

    The file must hold a model built the same way (architecture, depth, alpha,
    stages, layout), with one exception: the classifier keeps its fresh
    initialisation when its shape differs or when the file or the model has
    none (fine-tuning to another class count, from or to a model without top).
    Anything else that differs raises a ValueError, before any variable is set.

    Returns:
        A one-line summary (see `summary`) naming the source `name`, by
        default the file's name.
    """
    path = os.fspath(path)
    with tempfile.TemporaryDirectory() as directory:
        # The model's own weights file has the same h5 paths as the file of a
        # model built the same way: the source's values are copied into it.
        own = os.path.join(directory, "model.weights.h5")
        model.save_weights(own)
        with _open_weights(path) as source, h5py.File(own, "r+") as target:
            wanted, given = _variables(target), _variables(source)
            head, saved_head = _classifier(target), _classifier(source)
            skipped = set() if head == saved_head else {*head, *saved_head}
            problems = _mismatches(wanted, given, skipped)
            if problems:
                raise ValueError(
                    f"Cannot load {path} into model {model.name!r}: {len(problems)} variables "
                    f"differ (the model has {len(wanted)}, the file {len(given)}), e.g. "
                    + "; ".join(problems[:5])
                    + ". Build the model the file was saved from (same architecture, depth, "
                    "alpha, stages and layout); only the class count may differ."
                )
            loaded = [name for name in wanted if name not in skipped]
            for key in loaded:
                target[key][...] = given[key][...]
        model.load_weights(own)
    new_classes = next(iter(head.values()))[-1] if head and skipped else None
    return summary(
        len(loaded),
        len(wanted),
        name or os.path.basename(path),
        new_classes=new_classes,
        unused_head=bool(skipped) and not head,
    )


def load_pth(model, path, name=None):
    """Loads a release or torchvision `.pth` into a `layout="pytorch"` ResNet video model.

    Strict as `convert.load_state_dict`; returns a one-line summary (see `summary`).
    """
    state = pth.read_state_dict(path)
    fresh = convert.load_state_dict(model, state)
    total = len(model.weights)
    kept = sum(len(model.get_layer(layer).weights) for layer in fresh)
    has_top = any(layer.name == "predictions" for layer in model.layers)
    head = any(key.endswith("fc.weight") for key in state)  # the release's or torchvision's
    return summary(
        total - kept,
        total,
        name or os.path.basename(os.fspath(path)),
        new_classes=model.get_layer("predictions").units if "predictions" in fresh else None,
        unused_head=head and not has_top,
        fresh=len([layer for layer in fresh if layer != "predictions"]),
    )
