"""Training, evaluation, feature extraction and the synthetic demo."""

from keras_mvf.training.distribute import get_strategy
from keras_mvf.training.optimization import WarmupStepDecay, add_weight_decay, make_optimizer
from keras_mvf.training.recipes import RECIPES, TEST_VIEWS, get_recipe
from keras_mvf.training.synthetic import CLASS_NAMES, synthetic_clip, synthetic_clips
from keras_mvf.training.train import train

__all__ = [
    "CLASS_NAMES",
    "RECIPES",
    "TEST_VIEWS",
    "WarmupStepDecay",
    "add_weight_decay",
    "get_recipe",
    "get_strategy",
    "make_optimizer",
    "synthetic_clip",
    "synthetic_clips",
    "train",
]
