"""What the model factories call for `weights=` and `backbone_weights=`.

`weights` may be a released checkpoint name (`"kinetics400"` or one of
`list_weights()`), a `.pth` file of the release, or a Keras `.weights.h5` file.
Released checkpoints and `.pth` files need `layout="pytorch"`, which is chosen
for them when `layout` is left as None. `keras_mvf.models` is imported lazily,
because the models import this module.
"""

import os
import shutil
import tempfile

import h5py

from keras_mvf import _compat
from keras_mvf.weights import convert, presets, pth

PTH_SUFFIXES = (".pth", ".pt", ".pth.tar")


def _is_release(weights):
    return weights in presets.PRESETS or weights in presets.DATASET_ALIASES


def _is_pth(weights):
    return isinstance(weights, (str, os.PathLike)) and str(weights).endswith(PTH_SUFFIXES)


def h5_layout(path):
    """ "pytorch" or "keras": the ResNet layout a `.weights.h5` file was saved from.

    The model's first Conv2D (`conv1_conv`) has a bias only in the "keras" layout.
    """
    with h5py.File(path, "r") as file:
        variables = _compat.weights_h5_vars(file, "conv2d")
        return "keras" if variables is not None and len(variables) == 2 else "pytorch"


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
        f"released .pth file or a Keras .weights.h5 file. Received: weights={weights!r}"
    )


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


def load_keras_weights(model, path):
    """Loads a `.weights.h5` file; a classifier of another size is left as initialised."""
    head = next((layer for layer in model.layers if layer.name == "predictions"), None)
    with h5py.File(path, "r") as file:
        classifier = _compat.weights_h5_vars(file, "dense")  # the model's only Dense
        saved = None if classifier is None else classifier.get("0")
        same_head = head is None or saved is None or saved.shape == tuple(head.kernel.shape)
    if same_head:
        model.load_weights(path)
        return
    with tempfile.TemporaryDirectory() as directory:
        copy = os.path.join(directory, "copy.weights.h5")
        shutil.copyfile(path, copy)
        with h5py.File(copy, "r+") as file:
            variables = _compat.weights_h5_vars(file, "dense")
            for index, value in enumerate(head.get_weights()):
                del variables[str(index)]
                variables[str(index)] = value
        model.load_weights(copy)


def load_weights(model, weights, torch_backbone_weights=None, num_frames=None):
    """Loads whole-model `weights` or "pytorch"-layout backbone weights into a new model.

    Args:
        model: the model a factory just built.
        weights: None, "kinetics400", a name from `list_weights()`, a `.pth`
            file or a `.weights.h5` file.
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
        load_keras_weights(model, weights)
