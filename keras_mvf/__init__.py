"""keras_mvf: MVFNet (Multi-View Fusion Network, AAAI 2021) for Keras 3 and TensorFlow."""

from keras_mvf import layers, models, utils
from keras_mvf.layers import MVFModule, TemporalShift
from keras_mvf.models import (
    MobileNetV2Video,
    MVFNet50,
    MVFNet101,
    MVFNetMobileNetV2,
    ResNetVideo,
    create_model,
    list_models,
)
from keras_mvf.weights import list_weights

__version__ = "0.1.0"

__all__ = [
    "MVFModule",
    "MVFNet50",
    "MVFNet101",
    "MVFNetMobileNetV2",
    "MobileNetV2Video",
    "ResNetVideo",
    "TemporalShift",
    "create_model",
    "layers",
    "list_models",
    "list_weights",
    "models",
    "utils",
]
