"""Deployment: TF Serving SavedModels, TFLite/LiteRT models and loading them back to predict."""

from keras_mvf.export.predictor import Predictor, load_predictor
from keras_mvf.export.saved_model import export_saved_model
from keras_mvf.export.tflite import export_tflite, labels_path

__all__ = ["Predictor", "export_saved_model", "export_tflite", "labels_path", "load_predictor"]
