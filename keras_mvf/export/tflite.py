"""TFLite / LiteRT models of the video models: one clip in, 4-D tensors and builtin ops only."""

import contextlib
import json
import os
import tempfile

import keras
import numpy as np

from keras_mvf.export import common, metadata
from keras_mvf.layers import mvf_module
from keras_mvf.utils import files, logs
from keras_mvf.utils.files import labels_path

QUANTIZATIONS = (None, "float16", "dynamic", "int8")
INPUT_DTYPES = ("float32", "uint8")


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


def _representative_clips(representative_data, clip_shape, dtype="float32"):
    """Turns clips, batches of clips, `(clip, label)` pairs or a `tf.data.Dataset` into a
    generator of `[clip]` inputs of `dtype`, as the TFLite converter wants them."""

    def generate():
        count = 0
        for element in representative_data:
            if isinstance(element, (tuple, list)):
                element = element[0]
            clips = np.asarray(element).astype(dtype)
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


def _endpoints(model, shape, dtype, streaming):
    """`{signature: (function, input specs, output specs)}` of the TFLite model, and the
    Keras models the functions call (whose variables the SavedModel holds)."""
    import tensorflow as tf

    num_frames, *frame_shape = shape
    num_classes = model.outputs[0].shape[-1]
    probabilities = {"probabilities": tf.TensorSpec((1, num_classes), tf.float32)}
    if not streaming:
        clips = clip_model(model)

        def serve(frames):
            frames = tf.cast(frames, tf.float32)
            return {"probabilities": tf.cast(clips(frames, training=False), tf.float32)}

        inputs = [tf.TensorSpec(shape, dtype, name="frames")]
        return {"serving_default": (serve, inputs, probabilities)}, [clips]
    from keras_mvf.inference.streaming import split_model

    frame_model, window_model = split_model(model)
    features = {
        f"features_{i}": tf.TensorSpec((1, *tensor.shape[1:]), tensor.dtype)
        for i, tensor in enumerate(frame_model.outputs)
    }

    def frame(frame):
        outputs = frame_model(tf.cast(frame, tf.float32), training=False)
        return dict(zip(features, keras.tree.flatten(outputs), strict=True))

    def window(*features):
        outputs = window_model(list(features), training=False)
        return {"probabilities": tf.cast(outputs, tf.float32)}

    window_inputs = [
        tf.TensorSpec((num_frames, *spec.shape[1:]), spec.dtype, name=name)
        for name, spec in features.items()
    ]
    endpoints = {
        "frame": (frame, [tf.TensorSpec((1, *frame_shape), dtype, name="frame")], features),
        "window": (window, window_inputs, probabilities),
    }
    return endpoints, [frame_model, window_model]


def _description(model, shape, endpoints, labels, preprocessing):
    """The packed `model.json`: what an app needs to feed the model and read its output."""

    def tensors(specs):
        return {name: {"shape": list(spec.shape), "dtype": spec.dtype.name} for name, spec in specs}

    return {
        "name": model.name,
        "num_frames": shape[0],
        "num_classes": int(model.outputs[0].shape[-1]),
        "labels": metadata.LABELS_FILE if labels is not None else None,
        "pixels": {"color": "RGB", "range": [0, 255], "normalisation": "inside the model"},
        "preprocessing": {
            "sampling": "dense",
            "frame_interval": 8,
            "short_side": round(shape[1] * 256 / 224),
            "crop": "centre",
            **(preprocessing or {}),
        },
        "signatures": {
            key: {
                "inputs": tensors((spec.name, spec) for spec in inputs),
                "outputs": tensors(outputs.items()),
            }
            for key, (_, inputs, outputs) in endpoints.items()
        },
    }


def export_tflite(
    model,
    path,
    quantization=None,
    representative_data=None,
    labels=None,
    input_dtype="float32",
    streaming=False,
    preprocessing=None,
):
    """Writes `model` as a TFLite (LiteRT) flatbuffer that takes one clip, or a stream.

    The TFLite model takes `frames` `(num_frames, height, width, 3)`, RGB 0..255
    (one clip; the model's normalisation is inside), float32 or uint8, and
    returns `probabilities` float32 `(1, num_classes)`. Every tensor is at most
    4-D and every op is a TFLite builtin, so it runs on XNNPACK and mobile
    delegates without Flex ops. Quantized models keep float32 (or uint8)
    input and float32 output.

    With `streaming`, the file holds two signatures instead, the two parts of
    `keras_mvf.inference.StreamingClassifier`: `frame` takes one frame
    `(1, height, width, 3)` and returns its per-frame features
    `features_0`, `features_1`, ... `(1, ...)`; `window` takes each of them for
    the last `num_frames` frames, oldest first, `(num_frames, ...)`, and returns
    `probabilities`. An app keeps the features of the last frames and runs
    `window` at every new frame.

    The file carries, as TFLite model metadata does, a zip archive after the
    flatbuffer (LiteRT ignores it; any zip reader opens the file): `labels.txt`
    (with `labels`), one class name per line, and `model.json`, the input and
    output tensors of each signature, the frame count, the pixel format and the
    preprocessing (frame sampling, short side, centre crop).

    An existing `path` is replaced only once the conversion succeeded; the new
    model is written beside it and renamed into place, so `path` never holds a
    half-written model. A labels file older exports wrote beside it
    (`labels_path(path)`) is removed.

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
        labels: optional list of class names, packed in the file. Defaults to `None`.
        input_dtype: `"float32"` or `"uint8"` pixels. Defaults to `"float32"`.
        streaming: write the `frame` and `window` signatures instead of one
            for whole clips (not with `"int8"`). Defaults to `False`.
        preprocessing: optional dict recorded in `model.json` over the
            defaults `{"sampling": "dense", "frame_interval": 8, "short_side":
            round(height * 256 / 224), "crop": "centre"}`, e.g. the sampling
            the model was trained with. Defaults to `None`.

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
    if input_dtype not in INPUT_DTYPES:
        raise ValueError(
            f"`input_dtype` must be one of {INPUT_DTYPES}. Received: input_dtype={input_dtype!r}"
        )
    if streaming and quantization == "int8":
        raise ValueError(
            "A streaming export takes quantization None, 'float16' or 'dynamic'. "
            "Received: quantization='int8' with streaming=True"
        )
    if not os.fspath(path).endswith(".tflite"):
        raise ValueError(f"`path` must end with '.tflite'. Received: path={path!r}")
    shape = common.clip_shape(model)
    labels = common.check_labels(labels, model.outputs[0].shape[-1])
    endpoints, parts = _endpoints(model, shape, tf.as_dtype(input_dtype), streaming)

    # The converter reads a SavedModel of just the variables and the signatures' functions:
    # Keras' ExportArchive would also trace every layer, three times slower for no gain here.
    module = tf.Module()
    module.weights = [variable.value for part in parts for variable in part.variables]
    with mvf_module.tracing_for_litert(int8=quantization == "int8"):
        signatures = {
            key: tf.function(function, input_signature=inputs).get_concrete_function()
            for key, (function, inputs, _) in endpoints.items()
        }
    with tempfile.TemporaryDirectory() as saved_model_dir:
        tf.saved_model.save(module, saved_model_dir, signatures=signatures)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            saved_model_dir, signature_keys=list(endpoints)
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        elif quantization == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.representative_dataset = _representative_clips(
                representative_data, shape, input_dtype
            )
        with logs.stderr_hidden_when_quiet():  # the int8 calibrator prints its settings
            flatbuffer = converter.convert()
    packed = {
        metadata.DESCRIPTION_FILE: json.dumps(
            _description(model, shape, endpoints, labels, preprocessing), indent=2
        )
    }
    if labels is not None:
        packed[metadata.LABELS_FILE] = "".join(f"{label}\n" for label in labels)
    # A labels file older exports wrote beside the model would be taken for this model's.
    with contextlib.suppress(FileNotFoundError):
        files.remove(labels_path(path))
    with common.replacing(path) as partial, open(partial, "wb") as file:
        file.write(metadata.attach(flatbuffer, packed))
    return path
