"""Utilities: FLOPs and parameter counts; `files`, paths on any filesystem TensorFlow reaches."""

from keras_mvf.utils.flops import count_flops, count_params

__all__ = ["count_flops", "count_params"]
