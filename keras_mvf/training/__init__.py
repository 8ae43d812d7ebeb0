"""Training, evaluation, feature extraction and the synthetic demo."""

import sys
import types

from keras_mvf._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".distribute": ("get_strategy",),
        ".optimization": ("WarmupStepDecay", "add_weight_decay", "make_optimizer"),
        ".recipes": ("RECIPES", "TEST_VIEWS", "get_recipe"),
        ".synthetic": ("CLASS_NAMES", "synthetic_clip", "synthetic_clips"),
        ".train": ("CorruptBackupError", "train"),
    },
)


class _Package(types.ModuleType):
    """Keeps `keras_mvf.training.train` the function when its module is imported.

    Importing a submodule binds it to its package's attribute of the same name.
    """

    def __setattr__(self, name, value):
        if name == "train" and isinstance(value, types.ModuleType):
            value = value.train
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
