"""Utilities: FLOPs and parameter counts."""

from keras_mvf.utils.flops import count_flops, count_params

__all__ = ["count_flops", "count_params"]
