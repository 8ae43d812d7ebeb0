"""Utilities: FLOPs and parameter counts; files on any filesystem, written atomically;
quiet native logs; progress bars."""

from keras_mvf._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {".flops": ("count_flops", "count_params")})
