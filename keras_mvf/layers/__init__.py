"""Keras layers of MVFNet: the MVF module, TSM's temporal shift and frame folding."""

from keras_mvf.layers.fold_frames import FoldFrames
from keras_mvf.layers.mvf_module import MVFModule
from keras_mvf.layers.temporal_shift import TemporalShift
from keras_mvf.layers.unfold_frames import UnfoldFrames

__all__ = ["FoldFrames", "MVFModule", "TemporalShift", "UnfoldFrames"]
