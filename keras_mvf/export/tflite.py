"""TFLite / LiteRT models of the video models: one clip in, 4-D tensors and builtin ops only."""

import contextlib
import os
import tempfile

import keras
import numpy as np

from keras_mvf.export import common
from keras_mvf.utils import logs

QUANTIZATIONS = (None, "float16", "dynamic", "int8")


def labels_path(path):
    """The labels file written next to a `.tflite` file: `model.tflite` -> `model.labels.txt`."""
    root, _ = os.path.splitext(os.fspath(path))
    return f"{root}.labels.txt"


def clip_model(model):
    """The part of `model` after its "fold_frames" layer: frames `(num_frames, H, W, 3)` in.

    A single clip folded into the batch is naturally 4-D, so the TFLite graph
    never holds the 5-D clip tensor that mobile delegates reject.
    """
    try:
        fold = model.get_layer("fold_frames")
    except ValueError as error:
        raise ValueError(
            "Expected a keras_mvf video model whose first layer is 'fold_frames'. "
            f"Received: model={model.name!r}"
        ) from error
    return keras.Model(fold.output, model.outputs[0], name=f"{model.name}_clip")


def _representative_clips(representative_data, clip_shape):
    """Turns clips, batches of clips, `(clip, label)` pairs or a `tf.data.Dataset` into a
    generator of `[clip]` float32 inputs, as the TFLite converter wants them."""

    def generate():
        count = 0
        for element in representative_data:
            if isinstance(element, (tuple, list)):
                element = element[0]
            clips = np.asarray(element, dtype=np.float32)
            if clips.shape == clip_shape:
                clips = clips[None]
            if clips.shape[1:] != clip_shape:
                raise ValueError(
                    f"Representative clips must have shape {clip_shape} (or a batch of them). "
                    f"Received: shape={clips.shape}"
                )
            for clip in clips:
                count += 1
                yield [clip]
        if not count:
            raise ValueError("`representative_data` is empty; int8 needs at least one clip.")

    return generate


def export_tflite(model, path, quantization=None, representative_data=None, labels=None):
    """Writes `model` as a TFLite (LiteRT) flatbuffer that takes one clip.

    The TFLite model takes `frames` float32 `(num_frames, height, width, 3)`, RGB
    0..255 (one clip; the model's normalisation is inside) and returns
    `probabilities` float32 `(1, num_classes)`. Every tensor is at most 4-D and
    every op is a TFLite builtin, so it runs on XNNPACK and mobile delegates
    without Flex ops. Quantized models keep float32 input and output.

    An existing `path` is replaced, and its labels file removed, only once the
    conversion succeeded; the new model is written beside it and renamed into
    place, so `path` never holds a half-written model.

    Args:
        model: a keras_mvf video model (its first layer is "fold_frames").
        path: the `.tflite` file to write.
        quantization: `None` (float32), `"float16"` (float16 weights),
            `"dynamic"` (int8 weights, float activations) or `"int8"` (int8
            weights and activations, calibrated on `representative_data`).
            Defaults to `None`.
        representative_data: for `"int8"`, an iterable of uint8 or float clips
            `(num_frames, height, width, 3)` (or batches of them, or `(clip,
            label)` pairs, or a `tf.data.Dataset` of those), RGB 0..255; a few
            dozen typical clips. Defaults to `None`.
        labels: optional list of class names, written to `labels_path(path)`
            where `keras-mvf predict` finds them. Defaults to `None`.

    Returns:
        `path`.
    """
    import tensorflow as tf

    common.check_backend()
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"`quantization` must be one of {QUANTIZATIONS}. "
            f"Received: quantization={quantization!r}"
        )
    if (quantization == "int8") != (representative_data is not None):
        raise ValueError(
            "`representative_data` is needed for, and only used by, quantization='int8'. "
            f"Received: quantization={quantization!r}, representative_data="
            f"{'None' if representative_data is None else type(representative_data).__name__}"
        )
    if not os.fspath(path).endswith(".tflite"):
        raise ValueError(f"`path` must end with '.tflite'. Received: path={path!r}")
    shape = common.clip_shape(model)
    labels = common.check_labels(labels, model.outputs[0].shape[-1])
    clips = clip_model(model)

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32, name="frames")])
    def serve(frames):
        return {"probabilities": tf.cast(clips(frames, training=False), tf.float32)}

    # The converter reads a SavedModel of just the variables and this one function:
    # Keras' ExportArchive would also trace every layer, three times slower for no gain here.
    module = tf.Module()
    module.weights = [variable.value for variable in clips.variables]
    with tempfile.TemporaryDirectory() as saved_model_dir:
        signatures = {"serving_default": serve.get_concrete_function()}
        tf.saved_model.save(module, saved_model_dir, signatures=signatures)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        elif quantization == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.representative_dataset = _representative_clips(representative_data, shape)
        with logs.stderr_hidden_when_quiet():  # the int8 calibrator prints its settings
            flatbuffer = converter.convert()
    # Old labels go first: a model is never seen with another model's labels.
    with contextlib.suppress(FileNotFoundError):
        os.remove(labels_path(path))
    with common.replacing(path) as partial, open(partial, "wb") as file:
        file.write(flatbuffer)
    if labels is not None:
        with common.replacing(labels_path(path)) as partial:
            common.write_labels(partial, labels)
    return path
