"""Deployment: TF Serving SavedModels, TFLite/LiteRT models and loading them back to predict."""

from keras_mvf._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".predictor": ("Predictor", "load_predictor"),
        ".saved_model": ("export_saved_model",),
        ".tflite": ("export_tflite", "labels_path"),
    },
)
