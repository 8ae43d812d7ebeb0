"""Named model configurations for the command line and `create_model`."""

from keras_mvf.models.mobilenet_v2 import MobileNetV2Video
from keras_mvf.models.resnet import ResNetVideo

RESNET_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


def _resnet(depth, **defaults):
    defaults = {"block_counts": RESNET_BLOCKS[depth], **defaults}
    return lambda **kwargs: ResNetVideo(**{**defaults, **kwargs})


def _mobilenet_v2(**defaults):
    return lambda **kwargs: MobileNetV2Video(**{**defaults, **kwargs})


# name -> (builder taking keyword arguments, one-line description). User kwargs win.
MODELS = {
    "mvfnet50": (_resnet(50, name="mvfnet50"), "MVFNet ResNet-50, alpha 1/8 in res4-5 (paper)"),
    "mvfnet101": (_resnet(101, name="mvfnet101"), "MVFNet ResNet-101, alpha 1/8 in res4-5"),
    "mvfnet_mobilenetv2": (
        _mobilenet_v2(name="mvfnet_mobilenetv2"),
        "MVFNet MobileNetV2, alpha 1/8 in residual blocks",
    ),
    "tsm50": (
        _resnet(50, temporal_module="tsm", stages=(2, 3, 4, 5), name="tsm50"),
        "TSM ResNet-50, 1/8 + 1/8 channels shifted in every block",
    ),
    "tsm101": (
        _resnet(101, temporal_module="tsm", stages=(2, 3, 4, 5), name="tsm101"),
        "TSM ResNet-101, 1/8 + 1/8 channels shifted in every block",
    ),
    "tsm_mobilenetv2": (
        _mobilenet_v2(temporal_module="tsm", name="tsm_mobilenetv2"),
        "TSM MobileNetV2",
    ),
    "c2d50": (_resnet(50, temporal_module=None, name="c2d50"), "C2D ResNet-50 (frames averaged)"),
    "c2d101": (_resnet(101, temporal_module=None, name="c2d101"), "C2D ResNet-101"),
    "c2d_mobilenetv2": (
        _mobilenet_v2(temporal_module=None, name="c2d_mobilenetv2"),
        "C2D MobileNetV2",
    ),
}


def list_models():
    """Names accepted by `create_model`, sorted."""
    return sorted(MODELS)


def create_model(name, **kwargs):
    """Builds a registered model; keyword arguments override the configuration's defaults.

    Unlike the `MVFNet50`-style factories, the backbone is randomly initialised
    unless `backbone_weights` is given. ResNet configurations also take
    `block_counts` (e.g. `(1, 1, 1, 1)` for a tiny test network).
    """
    if name not in MODELS:
        raise ValueError(
            f"Unknown model {name!r}; choose one of {list_models()}. Received: name={name!r}"
        )
    return MODELS[name][0](**kwargs)
