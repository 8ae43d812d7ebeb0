"""Inference on live video: a classifier fed one frame at a time."""

from keras_mvf._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {".streaming": ("StreamingClassifier", "split_model")},
)
