"""What the model factories call for `weights=` and `backbone_weights=`.

`weights` may be a released checkpoint name (`"kinetics400"` or one of
`list_weights()`), a `.pth` file of the release, or a Keras `.weights.h5` or
`.keras` file. Released checkpoints and `.pth` files need `layout="pytorch"`,
which is chosen for them when `layout` is left as None. Keras files load
strictly (`load_weights_file`), as `train(weights=...)` loads them too.
`keras_mvf.models` is imported lazily, because the models import this module.
"""

import contextlib
import io
import os
import tempfile
import zipfile

import h5py

from keras_mvf import _compat
from keras_mvf.weights import convert, presets, pth

PTH_SUFFIXES = (".pth", ".pt", ".pth.tar")


def _is_release(weights):
    return weights in presets.PRESETS or weights in presets.DATASET_ALIASES


def _is_pth(weights):
    return isinstance(weights, (str, os.PathLike)) and str(weights).endswith(PTH_SUFFIXES)


# A `.keras` file is a zip archive that keeps the model's weights in this member,
# in the `.weights.h5` layout.
KERAS_ARCHIVE_WEIGHTS = "model.weights.h5"


@contextlib.contextmanager
def _open_weights(path):
    """The open h5 weights file of a `.weights.h5` or `.keras` file."""
    path = os.fspath(path)
    if path.endswith(".keras"):
        with zipfile.ZipFile(path) as archive:
            if KERAS_ARCHIVE_WEIGHTS not in archive.namelist():
                raise ValueError(f"{path} holds no {KERAS_ARCHIVE_WEIGHTS}: not a Keras 3 model.")
            data = io.BytesIO(archive.read(KERAS_ARCHIVE_WEIGHTS))
        with h5py.File(data, "r") as file:
            yield file
    elif path.endswith(".weights.h5"):
        with h5py.File(path, "r") as file:
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


def weights_layout(weights):
    """The layout whole-model `weights` need, or None if they fit any."""
    if weights is None:
        return None
    if _is_release(weights) or _is_pth(weights):
        return "pytorch"
    if os.path.isfile(weights):
        return h5_layout(weights)
    raise ValueError(
        "`weights` must be None, 'kinetics400', a name from keras_mvf.list_weights(), a "
        f"released .pth file or a Keras .weights.h5 or .keras file. Received: weights={weights!r}"
    )


def file_layout_kwargs(path, layout=None):
    """`{"layout": "pytorch"}` to build a model for the "pytorch"-layout file `path`, else {}.

    Keyword arguments for a model builder, left empty when its default fits
    (builders of models without layouts take no `layout`). A `layout` the
    caller pinned must be the file's.
    """
    needed = h5_layout(path)
    if layout is not None and needed is not None and layout != needed:
        raise ValueError(
            f"{path} holds a model in layout={needed!r}. Received: layout={layout!r}; "
            "leave `layout` unset to build the file's layout."
        )
    return {"layout": needed} if layout is None and needed == "pytorch" else {}


def resolve_layout(layout, weights, backbone_weights):
    """Picks the ResNet layout and splits `backbone_weights` by who loads them.

    Whole-model `weights` win over `backbone_weights` (the factories default
    the latter to "imagenet", Keras Applications' weights, which fit only the
    "keras" layout). The release's torchvision ImageNet ResNets
    (`"resnet50_imagenet"`, `"resnet101_imagenet"` or a `.pth` file) need the
    "pytorch" layout and are loaded by `load_weights`.

    Returns:
        `(layout, keras_backbone_weights, torch_backbone_weights)`: the first
        go to Keras Applications, the second to `load_weights`.
    """
    needed = weights_layout(weights)
    if weights is not None:
        backbone_weights = None
    elif _is_pth(backbone_weights) or presets.is_backbone(backbone_weights):
        needed = "pytorch"
    if layout is None:
        layout = needed or "keras"
    elif needed is not None and layout != needed:
        raise ValueError(
            f"These weights need layout={needed!r}. Received: layout={layout!r}, "
            f"weights={weights!r}, backbone_weights={backbone_weights!r}"
        )
    if layout == "pytorch" and backbone_weights not in (None, "imagenet"):
        return layout, None, backbone_weights
    return layout, backbone_weights, None


def _depth(model):
    blocks = sum(
        1
        for layer in model.layers
        if layer.name.startswith("conv4_block") and layer.name.endswith("_1_conv")
    )
    return {6: 50, 23: 101}.get(blocks)


def converted_preset(name):
    """Path of the Keras conversion of a released checkpoint; downloads and converts once."""
    path = presets.converted_path(name)
    if os.path.isfile(path):
        return path
    info = presets.PRESETS[name]
    if info["num_frames"] is None:
        raise ValueError(
            f"{name} is an ImageNet backbone: pass it as backbone_weights. "
            f"Received: weights={name!r}"
        )
    checkpoint = presets.download_checkpoint(name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = f"{path}.partial.weights.h5"
    convert_checkpoint(checkpoint, partial, num_frames=info["num_frames"])
    os.replace(partial, path)
    return path


def convert_checkpoint(checkpoint, output, model_name=None, num_frames=8, input_shape=None):
    """Converts a released `.pth` into a Keras `.weights.h5` file.

    Args:
        checkpoint: path of the `.pth` file.
        output: path of the `.weights.h5` file to write.
        model_name: registered model name (`"mvfnet50"`, `"c2d101"`, ...);
            None infers depth, alpha, stages and classes from the checkpoint.
        num_frames: frames per clip of the model built for the conversion. The
            weights do not depend on it. Defaults to `8`.
        input_shape: frame shape of that model. Defaults to any size.

    Returns:
        The Keras model holding the converted weights.
    """
    from keras_mvf.models import registry, resnet

    state_dict = pth.read_state_dict(checkpoint)
    inferred = convert.infer_model_kwargs(state_dict)
    common = {
        "num_frames": num_frames,
        "layout": "pytorch",
        "input_shape": input_shape or (None, None, 3),
    }
    if model_name is None:
        model = resnet.ResNetVideo(**inferred, **common)
    else:
        model = registry.create_model(model_name, num_classes=inferred["num_classes"], **common)
    convert.load_state_dict(model, state_dict)
    model.save_weights(str(output))
    return model


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


def load_weights_file(model, path):
    """Loads every variable of `model` from a `.weights.h5` or `.keras` file, or none.

    The file must hold a model built the same way (architecture, depth, alpha,
    stages, layout), with one exception: the classifier keeps its fresh
    initialisation when its shape differs or when the file or the model has
    none (fine-tuning to another class count, from or to a model without top).
    Anything else that differs raises a ValueError, before any variable is set.

    Returns:
        A one-line summary, e.g. `"loaded 328 of 330 variables from
        k400.weights.h5; new classifier (101 classes)"`.
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
            for name in loaded:
                target[name][...] = given[name][...]
        model.load_weights(own)
    summary = f"loaded {len(loaded)} of {len(wanted)} variables from {os.path.basename(path)}"
    if head and skipped:
        summary += f"; new classifier ({next(iter(head.values()))[-1]} classes)"
    elif skipped:
        summary += "; the file's classifier is not used (the model has no top)"
    return summary


def load_weights(model, weights, torch_backbone_weights=None, num_frames=None):
    """Loads whole-model `weights` or "pytorch"-layout backbone weights into a new model.

    Args:
        model: the model a factory just built.
        weights: None, "kinetics400", a name from `list_weights()`, a `.pth`
            file or a `.weights.h5` or `.keras` file.
        torch_backbone_weights: None, `"resnet50_imagenet"`,
            `"resnet101_imagenet"` or a torchvision-layout `.pth` file.
        num_frames: the model's frames per clip (chooses the "kinetics400" file).
    """
    if weights is None and torch_backbone_weights is None:
        return
    weights_layout(weights)  # validates `weights`
    if weights is None:
        name = torch_backbone_weights
        if presets.is_backbone(name):
            path = presets.download_checkpoint(name)
        elif _is_pth(name):
            path = name
        else:
            raise ValueError(
                "`backbone_weights` for layout='pytorch' must be 'resnet50_imagenet', "
                "'resnet101_imagenet' or a torchvision-layout .pth file. "
                f"Received: backbone_weights={torch_backbone_weights!r}"
            )
        convert.load_state_dict(model, pth.read_state_dict(path))
        return
    if _is_release(weights):
        depth = _depth(model)
        if depth is None:
            raise ValueError(
                "Released checkpoints exist for MVFNet ResNet-50 and ResNet-101 only. "
                f"Received: weights={weights!r} for model {model.name!r}"
            )
        weights = converted_preset(presets.resolve_preset(weights, depth, num_frames))
    if _is_pth(weights):
        convert.load_state_dict(model, pth.read_state_dict(weights))
    else:
        load_weights_file(model, weights)
