"""Pretrained weights: the released Kinetics-400 MVFNet checkpoints as Keras models.

`read_pth` reads PyTorch checkpoints safely without torch, `load_state_dict`
maps them onto `layout="pytorch"` ResNet video models, and the registry
(`list_weights`, `weights_info`) downloads and converts the releases once.
This package imports `keras_mvf.models` only inside functions, because the
models call it.
"""

from keras_mvf.weights.convert import infer_model_kwargs, load_state_dict
from keras_mvf.weights.loading import (
    convert_checkpoint,
    load_weights,
    resolve_layout,
)
from keras_mvf.weights.presets import (
    decode_predictions,
    kinetics400_classes,
    list_weights,
    weights_info,
)
from keras_mvf.weights.pth import UnsafeCheckpointError, read_pth, read_state_dict

__all__ = [
    "UnsafeCheckpointError",
    "convert_checkpoint",
    "decode_predictions",
    "infer_model_kwargs",
    "kinetics400_classes",
    "list_weights",
    "load_state_dict",
    "load_weights",
    "read_pth",
    "read_state_dict",
    "resolve_layout",
    "weights_info",
]
