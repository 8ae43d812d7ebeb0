"""Video models: MVFNet, TSM and C2D on ResNet and MobileNetV2 backbones."""

from keras_mvf.models.mobilenet_v2 import MobileNetV2Video, MVFNetMobileNetV2
from keras_mvf.models.registry import create_model, list_models
from keras_mvf.models.resnet import MVFNet50, MVFNet101, ResNetVideo

__all__ = [
    "MVFNet50",
    "MVFNet101",
    "MVFNetMobileNetV2",
    "MobileNetV2Video",
    "ResNetVideo",
    "create_model",
    "list_models",
]
