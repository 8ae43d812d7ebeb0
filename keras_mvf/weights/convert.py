"""PyTorch state dicts of the MVFNet release (and torchvision ResNets) -> Keras ResNet video models.

The Keras model must use `layout="pytorch"`. Its layers are named as Keras
Applications' ResNet, and each weighted layer names the checkpoint tensors it
takes: torch `layer{N}.{i}` is Keras `conv{N+1}_block{i+1}`, `downsample` is the
`_0_` shortcut, an MVF-wrapped block's first conv is `conv1.net` and its module
is `conv1.{shift,h,w}_conv` + `conv1.bn`, and the head is `cls_head.new_fc`
(release) or `fc` (torchvision, ImageNet classes, never used).
"""

import re

import numpy as np

from keras_mvf.weights.pth import CheckpointError

# Bump when a conversion's files or values change: cached conversions of any other
# version are rebuilt (the version is part of their cache directory's name).
CONVERTER_VERSION = 2

# Keys of the release's state dicts start with this; torchvision's carry no prefix.
RELEASE_PREFIX = "backbone."
RELEASE_HEAD = "cls_head.new_fc"
TORCHVISION_HEAD = "fc"

# Blocks per stage (layer1..layer4) of ResNet-101, the deepest network of the release.
MAX_BLOCKS = (3, 4, 23, 3)
# Filters of the stem: 64 in the release and torchvision; smaller ones build tiny test networks.
MAX_BASE_WIDTH = 64
MAX_CLASSES = 100_000
BATCH_NORM_TENSORS = ("weight", "bias", "running_mean", "running_var")

_BLOCK_LAYER = re.compile(r"conv(\d)_block(\d+)_(?:(\d)_(conv|bn)|(mvf))")


def _conv_kernel(weight):
    """`[out, in, kh, kw]` -> `(kh, kw, in, out)`."""
    if weight.ndim != 4:
        raise ValueError(f"expected a 4-D conv weight, got shape {weight.shape}")
    return weight.transpose(2, 3, 1, 0)


def _dense_kernel(weight):
    """`[out, in]` -> `(in, out)`."""
    if weight.ndim != 2:
        raise ValueError(f"expected a 2-D linear weight, got shape {weight.shape}")
    return weight.T


def _view_kernel(axis):
    """Depthwise Conv3d `[k, 1, kt, kh, kw]`, 1-D along `axis` (2, 3 or 4) -> `(size, k)`."""

    def convert(weight):
        others = [weight.shape[a] for a in (1, 2, 3, 4) if a != axis] if weight.ndim == 5 else None
        if others != [1, 1, 1]:
            name = {2: "[k, 1, n, 1, 1]", 3: "[k, 1, 1, n, 1]", 4: "[k, 1, 1, 1, n]"}[axis]
            raise ValueError(f"expected a depthwise Conv3d weight {name}, got shape {weight.shape}")
        return weight.reshape(weight.shape[0], weight.shape[axis]).T

    return convert


def _identity(value):
    return value


def _batch_norm(layer, key):
    variables = (layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance)
    return [
        (variable, f"{key}.{name}", _identity)
        for variable, name in zip(variables, BATCH_NORM_TENSORS, strict=True)
    ]


def _layer_mapping(layer, prefix, mvf_blocks):
    """`[(variable, checkpoint key, to_keras)]` for one Keras layer, or None if none applies."""
    name = layer.name
    if name == "conv1_conv":
        return [(layer.kernel, f"{prefix}conv1.weight", _conv_kernel)]
    if name == "conv1_bn":
        return _batch_norm(layer, f"{prefix}bn1")
    match = _BLOCK_LAYER.fullmatch(name)
    if match is None:
        return None
    stage, block, index, kind, mvf = match.groups()
    torch_block = f"{prefix}layer{int(stage) - 1}.{int(block) - 1}"
    if mvf:
        module = f"{torch_block}.conv1"
        views = [
            (layer.temporal_kernel, "shift_conv", 2),
            (layer.height_kernel, "h_conv", 3),
            (layer.width_kernel, "w_conv", 4),
        ]
        return [
            (variable, f"{module}.{conv}.weight", _view_kernel(axis))
            for variable, conv, axis in views
            if variable is not None
        ] + _batch_norm(layer.bn, f"{module}.bn")
    if index == "0":
        torch_layer = f"{torch_block}.downsample.{0 if kind == 'conv' else 1}"
    elif kind == "conv":
        wrapped = index == "1" and f"conv{stage}_block{block}" in mvf_blocks
        torch_layer = f"{torch_block}.conv{index}" + (".net" if wrapped else "")
    else:
        torch_layer = f"{torch_block}.bn{index}"
    if kind == "conv":
        return [(layer.kernel, f"{torch_layer}.weight", _conv_kernel)]
    return _batch_norm(layer, torch_layer)


def _describe(keys, limit=8):
    keys = sorted(keys)
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_state_dict(model, state_dict):
    """Copies a release or torchvision state dict into a `layout="pytorch"` ResNet video model.

    Release checkpoints (`backbone.*` + `cls_head.new_fc.*`) must fill every
    weighted layer of the model; torchvision ImageNet checkpoints fill the 2D
    backbone only, leaving MVF modules and the classifier as initialised, and
    their 1000-class `fc` is dropped. The checkpoint's head is dropped, too, when
    the model has none (`include_top=False`) or a different number of classes
    (fine-tuning). Every other tensor must be used exactly once
    (`num_batches_tracked` is ignored).

    Args:
        model: a Keras model from `ResNetVideo(..., layout="pytorch")`.
        state_dict: dict of NumPy arrays, e.g. from `read_state_dict`.

    Raises:
        ValueError: the model is not in the "pytorch" layout, or tensors are
            missing, left over or of the wrong shape; the message names them.
    """
    state = {k: v for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
    release = any(key.startswith(RELEASE_PREFIX) for key in state)
    prefix, head = (RELEASE_PREFIX, RELEASE_HEAD) if release else ("", TORCHVISION_HEAD)
    layers = {layer.name: layer for layer in model.layers}
    first_conv = layers.get("conv1_conv")
    if first_conv is None or first_conv.use_bias:
        raise ValueError(
            "Checkpoints convert only into ResNet video models built with layout='pytorch'. "
            f"Received: model {model.name!r}"
            + (" in the 'keras' layout" if first_conv is not None else " (not a ResNet)")
        )
    # torchvision files predate MVF: their first convs are never wrapped (`conv1.net`).
    mvf_blocks = {name.removesuffix("_mvf") for name in layers if name.endswith("_mvf")}
    mvf_blocks = mvf_blocks if release else set()

    assignments = []
    fresh = []
    for layer in model.layers:
        if not layer.weights or layer.name == "preprocessing":
            continue
        if layer.name == "predictions":
            weight = state.get(f"{head}.weight")
            if release and weight is not None and weight.shape[0] == layer.units:
                assignments += [
                    (layer.kernel, f"{head}.weight", _dense_kernel),
                    (layer.bias, f"{head}.bias", _identity),
                ]
            else:
                fresh.append(layer.name)
            continue
        mapping = _layer_mapping(layer, prefix, mvf_blocks)
        if mapping is None:
            raise ValueError(f"No checkpoint tensor maps to layer {layer.name!r} of the model.")
        if not release and layer.name.endswith("_mvf"):
            fresh.append(layer.name)
            continue
        mapped = {id(variable) for variable, _, _ in mapping}
        unmapped = [v.path for v in layer.weights if id(v) not in mapped]
        if unmapped:
            raise ValueError(f"No checkpoint tensor maps to {unmapped} of layer {layer.name!r}.")
        assignments += mapping

    wanted = {key for _, key, _ in assignments}
    missing = wanted - set(state)
    dropped = {f"{head}.weight", f"{head}.bias"}
    leftover = set(state) - wanted - dropped
    if missing or leftover:
        raise ValueError(
            f"The checkpoint does not fit model {model.name!r}: "
            + (f"missing {len(missing)} tensors ({_describe(missing)})" if missing else "")
            + ("; " if missing and leftover else "")
            + (f"{len(leftover)} tensors left over ({_describe(leftover)})" if leftover else "")
            + ". Build the model with the checkpoint's depth, alpha and stages "
            "(MVF alpha 1/8 in res4-5 for the release)."
        )
    values = []
    for variable, key, to_keras in assignments:
        try:
            value = to_keras(np.asarray(state[key]))
        except ValueError as error:
            raise ValueError(f"Checkpoint tensor {key!r}: {error}") from None
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(
                f"Checkpoint tensor {key!r} has shape {state[key].shape}, which does not fit "
                f"{variable.path} of shape {tuple(variable.shape)}."
            )
        values.append(np.asarray(value, dtype=np.float32))
    for (variable, _, _), value in zip(assignments, values, strict=True):
        variable.assign(value)
    return fresh


def _checkpoint_shapes(block_counts, base_width, num_classes, alpha, stages, release=True):
    """`{key: shape}` of the tensors of a checkpoint of this network, `num_batches_tracked` aside.

    The torch layout of `ResNetVideo(block_counts, num_classes, alpha=alpha,
    stages=stages, base_width=base_width, layout="pytorch")`: MVF wraps the
    first conv of every block in `stages` (None for C2D); `num_classes=None`
    leaves the head out.
    """
    prefix, head = (RELEASE_PREFIX, RELEASE_HEAD) if release else ("", TORCHVISION_HEAD)

    def batch_norm(key, channels):
        return {f"{key}.{name}": (channels,) for name in BATCH_NORM_TENSORS}

    shapes = {
        f"{prefix}conv1.weight": (base_width, 3, 7, 7),
        **batch_norm(f"{prefix}bn1", base_width),
    }
    channels = base_width
    for layer, count in enumerate(block_counts, start=1):
        filters = base_width * 2 ** (layer - 1)
        for block in range(count):
            key = f"{prefix}layer{layer}.{block}"
            if stages and layer + 1 in stages:
                k = int(channels * alpha)
                shapes[f"{key}.conv1.net.weight"] = (filters, channels, 1, 1)
                shapes[f"{key}.conv1.shift_conv.weight"] = (k, 1, 3, 1, 1)
                shapes[f"{key}.conv1.h_conv.weight"] = (k, 1, 1, 3, 1)
                shapes[f"{key}.conv1.w_conv.weight"] = (k, 1, 1, 1, 3)
                shapes.update(batch_norm(f"{key}.conv1.bn", k))
            else:
                shapes[f"{key}.conv1.weight"] = (filters, channels, 1, 1)
            shapes[f"{key}.conv2.weight"] = (filters, filters, 3, 3)
            shapes[f"{key}.conv3.weight"] = (4 * filters, filters, 1, 1)
            for index, size in ((1, filters), (2, filters), (3, 4 * filters)):
                shapes.update(batch_norm(f"{key}.bn{index}", size))
            if block == 0:
                shapes[f"{key}.downsample.0.weight"] = (4 * filters, channels, 1, 1)
                shapes.update(batch_norm(f"{key}.downsample.1", 4 * filters))
            channels = 4 * filters
    if num_classes is not None:
        shapes[f"{head}.weight"] = (num_classes, channels)
        shapes[f"{head}.bias"] = (num_classes,)
    return shapes


def _size(key, value, index, name, limit):
    """Dimension `index` of checkpoint tensor `key`, checked to lie in 1..`limit`."""
    shape = tuple(value.shape)
    size = shape[index] if len(shape) > index else 0
    if not 1 <= size <= limit:
        raise CheckpointError(
            f"tensor {key!r} of shape {shape} gives {name} {size}; expected 1 to {limit}"
        )
    return int(size)


def infer_model_kwargs(state_dict):
    """Guesses `ResNetVideo` keyword arguments from a release or torchvision state dict.

    Validates the whole checkpoint before anything is built from it: at most
    ResNet-101's blocks per stage (`MAX_BLOCKS`), a stem of 1 to
    `MAX_BASE_WIDTH` filters, 1 to `MAX_CLASSES` classes, and every tensor
    named and shaped as `_checkpoint_shapes` of those settings says, so a
    declared shape never sizes a model its data does not fill.

    Returns:
        dict with `block_counts`, `base_width`, `num_classes`, `temporal_module`,
        `alpha`, `stages`.

    Raises:
        CheckpointError: the state dict is not such a checkpoint; the message
            names the offending tensor.
    """
    release = any(key.startswith(RELEASE_PREFIX) for key in state_dict)
    prefix, head = (RELEASE_PREFIX, RELEASE_HEAD) if release else ("", TORCHVISION_HEAD)
    found = {layer: {} for layer in range(1, 5)}  # layer -> {block index: a key of it}
    for key in state_dict:
        match = re.match(rf"{re.escape(prefix)}layer(\d{{1,9}})\.(\d{{1,9}})\.", key)
        if match:
            layer, block = int(match.group(1)), int(match.group(2))
            if layer not in found or block >= MAX_BLOCKS[layer - 1]:
                raise CheckpointError(
                    f"unexpected tensor {key!r}: a ResNet has layer1 to layer4, with at most "
                    f"{', '.join(map(str, MAX_BLOCKS))} blocks (ResNet-101, the deepest of the "
                    "release)"
                )
            found[layer].setdefault(block, key)
    blocks = [len(found[layer]) for layer in range(1, 5)]
    if 0 in blocks:
        raise CheckpointError(
            f"not a ResNet checkpoint: no layer1..layer4 blocks. Received keys like "
            f"{_describe(state_dict, 4)}"
        )
    for layer, keys in found.items():
        gaps = set(range(len(keys))) - set(keys)
        if gaps:
            raise CheckpointError(
                f"unexpected tensor {keys[max(keys)]!r}: layer{layer} has no block {min(gaps)}"
            )
    stem = f"{prefix}conv1.weight"
    if stem not in state_dict:
        raise CheckpointError(f"not a ResNet checkpoint: no {stem!r}")
    base_width = _size(stem, state_dict[stem], 0, "base width", MAX_BASE_WIDTH)
    stages, alpha = [], 0.0
    for layer in range(1, 5):
        # The first block of layer1 takes the stem's channels, of the others twice their filters.
        block = 1 if blocks[layer - 1] > 1 else 0
        inputs = base_width * 2 ** (layer - 1) * (4 if block else 1 if layer == 1 else 2)
        key = f"{prefix}layer{layer}.{block}.conv1.shift_conv.weight"
        if key in state_dict:
            stages.append(layer + 1)
            alpha = _size(key, state_dict[key], 0, "MVF channels", inputs) / inputs
    num_classes = None
    if f"{head}.weight" in state_dict:
        num_classes = _size(
            f"{head}.weight", state_dict[f"{head}.weight"], 0, "classes", MAX_CLASSES
        )
    expected = _checkpoint_shapes(blocks, base_width, num_classes, alpha, stages, release)
    for key, value in state_dict.items():
        if key.endswith("num_batches_tracked"):
            continue
        if key not in expected:
            raise CheckpointError(
                f"unexpected tensor {key!r}: no such tensor in a ResNet with blocks "
                f"{tuple(blocks)}" + (f" and MVF in stages {tuple(stages)}" if stages else "")
            )
        if tuple(value.shape) != expected[key]:
            raise CheckpointError(
                f"tensor {key!r} has shape {tuple(value.shape)}; expected {expected[key]} "
                f"from a base width of {base_width}" + (f" and MVF alpha {alpha}" if stages else "")
            )
    missing = set(expected) - set(state_dict)
    if missing:
        raise CheckpointError(f"missing {len(missing)} tensors ({_describe(missing)})")
    return {
        "block_counts": tuple(blocks),
        "base_width": base_width,
        "num_classes": 400 if num_classes is None else num_classes,
        "temporal_module": "mvf" if stages else None,
        "alpha": alpha,
        "stages": tuple(stages) or (4, 5),
    }
