"""Keras layers of MVFNet: the MVF module, TSM's temporal shift, frame folding, and the
channel-split layers that keep ResNet activations split between MVF blocks."""

from keras_mvf.layers.channel_split import (
    ChannelSplitBatchNormalization,
    ChannelSplitConv2D,
    SplitChannels,
)
from keras_mvf.layers.fold_frames import FoldFrames
from keras_mvf.layers.mvf_module import MVFModule
from keras_mvf.layers.temporal_shift import TemporalShift
from keras_mvf.layers.unfold_frames import UnfoldFrames

__all__ = [
    "ChannelSplitBatchNormalization",
    "ChannelSplitConv2D",
    "FoldFrames",
    "MVFModule",
    "SplitChannels",
    "TemporalShift",
    "UnfoldFrames",
]
