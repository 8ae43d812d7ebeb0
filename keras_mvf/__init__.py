"""keras_mvf: MVFNet (Multi-View Fusion Network, AAAI 2021) for Keras 3 and TensorFlow.

Importing the package is cheap: its names (and those of its packages) import Keras
and TensorFlow on first use. The layers (and the training
optimizer) register with Keras, for `keras.models.load_model`, when their modules
are imported: by any model or layer, and by `import keras_mvf` itself when Keras
is imported already.
"""

import importlib.metadata
import sys

from keras_mvf._lazy import lazy_exports

__version__ = importlib.metadata.version("keras-mvf")  # pyproject.toml's

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".layers": ("MVFModule", "TemporalShift"),
        ".models": (
            "MobileNetV2Video",
            "MVFNet50",
            "MVFNet101",
            "MVFNetMobileNetV2",
            "ResNetVideo",
            "create_model",
            "from_preset",
            "list_models",
            "save_preset",
        ),
        ".weights": ("list_weights",),
    },
    submodules=("layers", "models", "utils"),
)

if "keras" in sys.modules:  # loaded already: registering for load_model is cheap
    from keras_mvf import layers  # noqa: F401
    from keras_mvf.training import optimization  # noqa: F401  (trained models' optimizer)
