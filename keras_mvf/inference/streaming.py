"""Streaming inference: the probabilities of the last `num_frames` frames at every new frame.

A video model applies its first layers to each frame alone (folded into the
batch) up to its first temporal module. Those layers' outputs for a frame are
the same in every window the frame belongs to, so a stream computes them once
per frame, keeps the last `num_frames` of them, and runs only the rest of the
network per window. With MVFNet-50's default `stages=(4, 5)` the per-frame part
is the stem and res2-res3, about 45% of the FLOPs.
"""

import collections

import keras
import numpy as np

from keras_mvf.export import common
from keras_mvf.layers import FoldFrames, SplitChannels

# Layers that, at inference, compute each element of their batch (here: each frame) on its
# own. Any other layer (temporal modules, frame unfolding, unknown layers) starts the part of
# the network that runs per window, so an unknown layer costs speed, never correctness.
PER_FRAME_LAYERS = (
    keras.layers.Activation,
    keras.layers.Add,
    keras.layers.AveragePooling2D,
    keras.layers.BatchNormalization,
    keras.layers.Concatenate,
    keras.layers.Conv2D,
    keras.layers.Dense,
    keras.layers.DepthwiseConv2D,
    keras.layers.Dropout,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.Identity,
    keras.layers.MaxPooling2D,
    keras.layers.Multiply,
    keras.layers.Normalization,
    keras.layers.ReLU,
    keras.layers.Rescaling,
    keras.layers.ZeroPadding2D,
    SplitChannels,
)


def _acts_per_frame(layer):
    if isinstance(layer, keras.layers.Concatenate) and layer.axis == 0:
        return False  # concatenating along the batch axis joins frames
    return isinstance(layer, PER_FRAME_LAYERS)


def _fold_layer(model):
    """The `FoldFrames` layer that takes the model's clip input."""
    if len(model.inputs) == 1:
        for layer in model.layers:
            if isinstance(layer, FoldFrames) and layer.input is model.inputs[0]:
                return layer
    raise ValueError(
        "Expected a keras_mvf video model: one clip input folded into frames by a "
        f"FoldFrames layer. Received: model={model.name!r} with inputs {model.inputs}"
    )


def split_model(model):
    """Splits a video model where its layers start to mix frames.

    The split follows the model's graph (layer types, not names), so it holds
    for every model built here and for models loaded from `.keras` files.

    Args:
        model: a keras_mvf video model (clips `(batch, num_frames, H, W, 3)` in).

    Returns:
        `(frame_model, window_model)`: `frame_model` maps frames `(n, H, W, 3)`
        RGB 0..255 to a list of per-frame tensors `(n, ...)`; `window_model`
        maps that list for the `num_frames` frames of each of `batch` clips,
        frames folded into the batch `(batch * num_frames, ...)`, to the
        model's output. `window_model(frame_model(frames))` equals
        `model(clips)`.
    """
    fold = _fold_layer(model)
    per_frame = {id(fold.output)}
    cut = {}  # id -> per-frame tensor that a window layer takes, in graph order
    for layer in model.layers:  # in topological order
        if layer is fold or isinstance(layer, keras.layers.InputLayer):
            continue
        inputs = keras.tree.flatten(layer.input)
        if _acts_per_frame(layer) and all(id(tensor) in per_frame for tensor in inputs):
            per_frame.update(id(tensor) for tensor in keras.tree.flatten(layer.output))
            continue
        for tensor in inputs:
            if id(tensor) in per_frame:
                cut.setdefault(id(tensor), tensor)
    cut = list(cut.values())
    frame_model = keras.Model(fold.output, cut, name=f"{model.name}_frame")
    window_model = keras.Model(cut, model.outputs[0], name=f"{model.name}_window")
    return frame_model, window_model


def _compiled(model):
    """Inference calls of `model`: a `tf.function` on TensorFlow, where eager calls are slow."""

    def call(inputs):
        return model(inputs, training=False)

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        call = tf.function(call)
    return lambda inputs: keras.tree.map_structure(keras.ops.convert_to_numpy, call(inputs))


class StreamingClassifier:
    """Classifies a stream of frames: every frame ends a window of the last `num_frames`.

    Each pushed frame goes through the model's per-frame layers once (see
    `split_model`); the outputs of the last `num_frames` frames are kept, and
    each window runs only the rest of the network. The probabilities equal
    `model(window[None])[0]` up to float rounding.

    Args:
        model: a keras_mvf video model (built here or loaded from a `.keras`
            file) with a fixed clip shape `(num_frames, H, W, 3)`.

    Example:

    >>> stream = StreamingClassifier(model)
    >>> for frame in frames:  # uint8 (H, W, 3) RGB, sampled and cropped as the model expects
    ...     probabilities = stream.push(frame)  # None until num_frames frames have arrived
    """

    def __init__(self, model):
        num_frames, *frame_shape = common.clip_shape(model)
        frame_model, window_model = split_model(model)
        self._setup(_compiled(frame_model), _compiled(window_model), frame_shape, num_frames)

    @classmethod
    def from_parts(cls, encode, classify, frame_shape, num_frames):
        """A stream over other engines' two parts (the streaming `.tflite` export's).

        Args:
            encode: function from float32 frames `(1, H, W, 3)` to the list of
                per-frame arrays `(1, ...)`.
            classify: function from that list for a window, each `(num_frames,
                ...)`, to probabilities `(1, num_classes)`.
            frame_shape: `(H, W, 3)`.
            num_frames: frames per window.
        """
        stream = cls.__new__(cls)
        stream._setup(encode, classify, frame_shape, num_frames)
        return stream

    def _setup(self, encode, classify, frame_shape, num_frames):
        self._encode = encode
        self._classify = classify
        self.frame_shape = tuple(int(d) for d in frame_shape)
        self.num_frames = int(num_frames)
        self._features = collections.deque(maxlen=self.num_frames)

    def reset(self):
        """Forgets the frames pushed so far (a new stream starts)."""
        self._features.clear()

    def push(self, frame, classify=True):
        """Adds a frame; returns the probabilities of the window it ends, or None.

        Args:
            frame: uint8 `(H, W, 3)`, RGB, at the model's frame size.
            classify: whether to classify the window; False only stores the
                frame (for windows that start every few frames). Defaults to
                `True`.

        Returns:
            float32 probabilities `(num_classes,)` once `num_frames` frames have
            arrived (and `classify`), else None.
        """
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.shape != self.frame_shape:
            raise ValueError(
                f"Expected a uint8 RGB frame of shape {self.frame_shape}, the model's frame "
                f"size. Received: dtype={frame.dtype}, shape={frame.shape}"
            )
        self._features.append(keras.tree.flatten(self._encode(frame[None].astype(np.float32))))
        if not classify or len(self._features) < self.num_frames:
            return None
        window = [np.concatenate(parts) for parts in zip(*self._features, strict=True)]
        return np.asarray(self._classify(window), np.float32)[0]
