"""Pretrained weights: the released Kinetics-400 MVFNet checkpoints as Keras models.

`read_pth` reads PyTorch checkpoints safely without torch, `load_state_dict`
maps them onto `layout="pytorch"` ResNet video models, and the registry
(`list_weights`, `weights_info`) downloads and converts the releases once.
This package imports `keras_mvf.models` only inside functions, because the
models call it.
"""

from keras_mvf._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".convert": ("infer_model_kwargs", "load_state_dict"),
        ".loading": ("convert_checkpoint", "load_weights", "resolve_layout"),
        ".presets": ("decode_predictions", "kinetics400_classes", "list_weights", "weights_info"),
        ".pth": ("CheckpointError", "UnsafeCheckpointError", "read_pth", "read_state_dict"),
    },
)
