"""Pretrained weight files: the released Kinetics-400 MVFNet checkpoints and preset directories.

`read_pth` reads PyTorch checkpoints safely without torch, `load_state_dict`
maps them onto `layout="pytorch"` ResNet video models, `list_weights` and
`weights_info` describe the releases and download them, and `preset_dir`
reads and writes preset directories. This package reads, downloads and
converts files and never imports `keras_mvf.models`, which builds models
for them (`keras_mvf.from_preset`).
"""

from keras_mvf._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".convert": ("infer_model_kwargs", "load_state_dict"),
        ".loading": ("load_pth", "load_weights_file"),
        ".presets": ("decode_predictions", "kinetics400_classes", "list_weights", "weights_info"),
        ".pth": ("CheckpointError", "UnsafeCheckpointError", "read_pth", "read_state_dict"),
    },
)
