"""Named model configurations and the pretrained configurations of each (timm's way).

`MODELS` maps a name to its factory and default arguments; `PRETRAINED` maps
each released checkpoint to the registered model and the constructor
arguments it was trained with (its files and their facts are in
`keras_mvf.weights.presets`).
"""

from typing import NamedTuple

from keras_mvf.models.mobilenet_v2 import MobileNetV2Video
from keras_mvf.models.resnet import RESNET_BLOCKS, ResNetVideo


class Registered(NamedTuple):
    """A registered model: its factory, a one-line description and the factory's defaults."""

    factory: object
    description: str
    defaults: dict


def _resnet(depth, description, **defaults):
    return Registered(ResNetVideo, description, {"block_counts": RESNET_BLOCKS[depth], **defaults})


def _mobilenet_v2(description, **defaults):
    return Registered(MobileNetV2Video, description, defaults)


# User kwargs win over the defaults.
MODELS = {
    "mvfnet50": _resnet(50, "MVFNet ResNet-50, alpha 1/8 in res4-5 (paper)", name="mvfnet50"),
    "mvfnet101": _resnet(101, "MVFNet ResNet-101, alpha 1/8 in res4-5", name="mvfnet101"),
    "mvfnet_mobilenetv2": _mobilenet_v2(
        "MVFNet MobileNetV2, alpha 1/8 in residual blocks", name="mvfnet_mobilenetv2"
    ),
    "tsm50": _resnet(
        50,
        "TSM ResNet-50, 1/8 + 1/8 channels shifted in every block",
        temporal_module="tsm",
        stages=(2, 3, 4, 5),
        name="tsm50",
    ),
    "tsm101": _resnet(
        101,
        "TSM ResNet-101, 1/8 + 1/8 channels shifted in every block",
        temporal_module="tsm",
        stages=(2, 3, 4, 5),
        name="tsm101",
    ),
    "tsm_mobilenetv2": _mobilenet_v2(
        "TSM MobileNetV2", temporal_module="tsm", name="tsm_mobilenetv2"
    ),
    "c2d50": _resnet(50, "C2D ResNet-50 (frames averaged)", temporal_module=None, name="c2d50"),
    "c2d101": _resnet(101, "C2D ResNet-101", temporal_module=None, name="c2d101"),
    "c2d_mobilenetv2": _mobilenet_v2(
        "C2D MobileNetV2", temporal_module=None, name="c2d_mobilenetv2"
    ),
}

# The released Kinetics-400 checkpoints: registered model and constructor arguments.
PRETRAINED = {
    f"mvfnet{depth}_k400_{frames}x{interval}": (
        f"mvfnet{depth}",
        {"num_classes": 400, "num_frames": frames, "alpha": 0.125, "layout": "pytorch"},
    )
    for depth in (50, 101)
    for frames, interval in ((4, 16), (8, 8), (16, 4))
}


def list_models():
    """Names accepted by `create_model`, sorted."""
    return sorted(MODELS)


def create_model(name, /, **kwargs):
    """Builds a registered model; keyword arguments override the configuration's defaults.

    Unlike the `MVFNet50`-style factories, the backbone is randomly initialised
    unless `backbone_weights` is given. ResNet configurations also take
    `block_counts` (e.g. `(1, 1, 1, 1)` for a tiny test network). `weights`
    loads as in the factories (see `keras_mvf.models.pretrained.load_weights`);
    `name=` names the Keras model.
    """
    if name not in MODELS:
        raise ValueError(
            f"Unknown model {name!r}; choose one of {list_models()}. Received: name={name!r}"
        )
    entry = MODELS[name]
    return entry.factory(**{**entry.defaults, **kwargs})
