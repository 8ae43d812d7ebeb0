"""One interface over the three formats a model ships in: `.keras`, SavedModel and `.tflite`."""

import io
import os

import numpy as np

from keras_mvf.export import common, metadata
from keras_mvf.export.saved_model import LABELS_FILE
from keras_mvf.export.tflite import labels_path
from keras_mvf.utils import files
from keras_mvf.utils.logs import stderr_hidden_when_quiet


class Predictor:
    """Maps uint8 RGB clips to class probabilities, whatever format the model is in.

    Build it with `load_predictor`.

    Args:
        predict_batch: function from uint8 clips `(n, *clip_shape)` to float32
            probabilities `(n, num_classes)`.
        clip_shape: `(num_frames, height, width, 3)` of one clip.
        labels: list of class names, or `None`.
        format: `"keras"`, `"saved_model"` or `"tflite"`.
        batch_size: clips per call of `predict_batch`. Defaults to `8`.
        make_stream: function returning a new `StreamingClassifier` that
            computes each frame's per-frame layers once, or `None` for
            formats without separate parts. Defaults to `None`.
    """

    def __init__(self, predict_batch, clip_shape, labels, format, batch_size=8, make_stream=None):
        self.predict_batch = predict_batch
        self.clip_shape = tuple(int(d) for d in clip_shape)
        self.labels = labels
        self.format = format
        self.batch_size = batch_size
        self.make_stream = make_stream

    @property
    def num_frames(self):
        return self.clip_shape[0]

    def label(self, index):
        """The name of class `index`, or the index itself when no labels are known."""
        return self.labels[index] if self.labels else str(index)

    def predict(self, clips):
        """Probabilities `(n, num_classes)` float32 for uint8 clips `(n, *clip_shape)`."""
        clips = np.asarray(clips)
        if clips.ndim != 5 or clips.shape[1:] != self.clip_shape:
            raise ValueError(
                f"Expected clips of shape (n, {', '.join(map(str, self.clip_shape))}). "
                f"Received: shape={clips.shape}"
            )
        clips = clips.astype(np.uint8)
        return np.concatenate(
            [
                np.asarray(self.predict_batch(clips[i : i + self.batch_size]), np.float32)
                for i in range(0, len(clips), self.batch_size)
            ]
        )

    def stream(self):
        """A new `StreamingClassifier` over this model: frames in, the last window's
        probabilities out. A `.keras` file or a streaming `.tflite` export computes each
        frame's per-frame layers once; other models run the whole window at every frame."""
        from keras_mvf.inference import StreamingClassifier

        if self.make_stream is not None:
            return self.make_stream()

        def classify(window):
            return self.predict(window[0][None])

        return StreamingClassifier.from_parts(
            lambda frames: [frames], classify, self.clip_shape[1:], self.num_frames
        )


def _saved_model_dir(path):
    """`path` itself, or its highest-numbered version subdirectory (TF Serving's layout)."""
    if files.isfile(files.join(path, "saved_model.pb")):
        return path
    versions = [
        int(name)
        for name in files.listdir(path)
        if name.isdigit() and files.isfile(files.join(path, name, "saved_model.pb"))
    ]
    if not versions:
        raise ValueError(
            f"Expected a SavedModel directory (with saved_model.pb, or version subdirectories "
            f"holding one). Received: path={path!r}"
        )
    return files.join(path, str(max(versions)))


def _load_keras(path):
    import keras

    from keras_mvf.models.pretrained import load_model

    model, labels = load_model(path)

    def predict_batch(clips):
        return keras.ops.convert_to_numpy(model(clips.astype(np.float32), training=False))

    def make_stream():
        from keras_mvf.inference import StreamingClassifier

        return StreamingClassifier(model)

    num_classes = model.outputs[0].shape[-1]
    return predict_batch, common.clip_shape(model), num_classes, labels, make_stream


def _load_saved_model(path):
    import tensorflow as tf

    path = _saved_model_dir(path)
    loaded = tf.saved_model.load(path)
    signature = loaded.signatures["serving_default"]
    if not hasattr(loaded, "clip_shape"):
        raise ValueError(
            f"Expected a SavedModel written by keras_mvf.export.export_saved_model. "
            f"Received: path={path!r}"
        )

    def predict_batch(clips):
        return signature(frames=tf.constant(clips))["probabilities"].numpy()

    num_classes = signature.structured_outputs["probabilities"].shape[-1]
    labels = files.join(path, "assets", LABELS_FILE)
    return predict_batch, loaded.clip_shape[0].numpy(), num_classes, labels, None


def _load_tflite(path, num_threads):
    from ai_edge_litert.interpreter import Interpreter

    # LiteRT reads local files; a URI's (`gs://...`) is read whole.
    content = files.read_bytes(path) if files.is_uri(path) else None
    model = {"model_path": os.fspath(path)} if content is None else {"model_content": content}
    with stderr_hidden_when_quiet():  # LiteRT's line about the XNNPACK delegate
        try:
            interpreter = Interpreter(**model, num_threads=num_threads)
        except ValueError as error:  # LiteRT's message does not name the file
            raise ValueError(f"{path}: not a TFLite model LiteRT can load ({error})") from error
        interpreter.allocate_tensors()  # creates the delegate
    signatures = interpreter.get_signature_list()
    archive = path if content is None else io.BytesIO(content)
    packed = metadata.read(archive).get(metadata.LABELS_FILE)
    # Labels packed in the file, else (older exports) the file beside it.
    labels = labels_path(path) if packed is None else packed.decode("utf-8").splitlines()
    if {"frame", "window"} <= set(signatures):
        predict_batch, clip_shape, num_classes, make_stream = _tflite_stream_parts(interpreter)
        return predict_batch, clip_shape, num_classes, labels, make_stream
    runner = interpreter.get_signature_runner()
    (source,) = runner.get_input_details().values()
    (target,) = runner.get_output_details().values()

    def predict_batch(clips):
        return np.concatenate(
            [runner(frames=clip.astype(source["dtype"]))["probabilities"] for clip in clips]
        )

    return predict_batch, tuple(source["shape"]), int(target["shape"][-1]), labels, None


def _tflite_stream_parts(interpreter):
    """`(predict_batch, clip_shape, num_classes, make_stream)` of a streaming export."""
    from keras_mvf.inference import StreamingClassifier

    frame = interpreter.get_signature_runner("frame")
    window = interpreter.get_signature_runner("window")
    source = frame.get_input_details()["frame"]
    names = list(window.get_input_details())
    num_frames = int(window.get_input_details()[names[0]]["shape"][0])
    frame_shape = tuple(int(d) for d in source["shape"][1:])

    def encode(frames):
        features = frame(frame=frames.astype(source["dtype"]))
        return [features[name] for name in names]

    def classify(features):
        return window(**dict(zip(names, features, strict=True)))["probabilities"]

    def make_stream():
        return StreamingClassifier.from_parts(encode, classify, frame_shape, num_frames)

    def predict_batch(clips):
        outputs = []
        for clip in clips:
            stream = make_stream()
            *_, probabilities = (stream.push(image) for image in clip)
            outputs.append(probabilities)
        return np.stack(outputs)

    num_classes = int(window.get_output_details()["probabilities"]["shape"][-1])
    return predict_batch, (num_frames, *frame_shape), num_classes, make_stream


def load_predictor(path, labels=None, num_threads=None):
    """Loads a `.keras` file, a preset (directory or release name), a SavedModel directory
    or a `.tflite` file for prediction.

    Labels come from `labels` if given, else from where the exports put them:
    the SavedModel's `assets/labels.txt`, `model.labels.txt` next to a
    `model.tflite` or `model.keras` file, a preset's `labels.txt` (also the
    one `train` writes beside its `model.keras`). Labels must name each of the model's
    classes once: a count that differs is a `ValueError` naming the file.

    Args:
        path: the model.
        labels: optional list of class names, or the path of a file with one
            per line. Defaults to `None`.
        num_threads: threads of the LiteRT interpreter. Defaults to `None`
            (LiteRT's default).

    Returns:
        A `Predictor`.
    """
    from keras_mvf.weights import preset_dir, presets

    path = os.fspath(path)
    if not (files.isfile(path) or files.isdir(path)) and path not in presets.PRESETS:
        raise FileNotFoundError(f"Model not found: {path}")
    if path.endswith(".keras") or preset_dir.is_preset(path) or path in presets.PRESETS:
        format, load = "keras", _load_keras
    elif files.isdir(path):
        format, load = "saved_model", _load_saved_model
    elif path.endswith(".tflite"):
        format, load = "tflite", lambda path: _load_tflite(path, num_threads)
    else:
        raise ValueError(
            "Expected a .keras file, a preset directory or release name, a SavedModel "
            f"directory or a .tflite file. Received: path={path!r}"
        )
    predict_batch, clip_shape, num_classes, default_labels, make_stream = load(path)
    if labels is None and isinstance(default_labels, list):  # packed in the model file
        labels = common.check_labels(
            default_labels, num_classes, f"{path} ({metadata.LABELS_FILE})"
        )
    labels = common.resolve_labels(labels, num_classes, default_labels)
    return Predictor(predict_batch, clip_shape, labels, format, make_stream=make_stream)
