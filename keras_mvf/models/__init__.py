"""Video models: MVFNet, TSM and C2D on ResNet and MobileNetV2 backbones, and presets."""

from keras_mvf._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".mobilenet_v2": ("MobileNetV2Video", "MVFNetMobileNetV2"),
        ".pretrained": ("from_preset", "save_preset"),
        ".registry": ("create_model", "list_models"),
        ".resnet": ("MVFNet50", "MVFNet101", "ResNetVideo"),
    },
)
