"""TF Serving SavedModels of the video models, written with Keras 3's `ExportArchive`."""

import os
import tempfile

import keras

from keras_mvf.export import common
from keras_mvf.utils import files

LABELS_FILE = "labels.txt"


def _resize_and_centre_crop(tf, image, height, width):
    """Scales `image` so that it covers `(height, width)`, then crops the centre."""
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    target = tf.constant([height, width], tf.float32)
    scale = tf.reduce_max(target / size)
    scaled = tf.maximum(tf.cast(tf.round(size * scale), tf.int32), [height, width])
    image = tf.image.resize(image, scaled, method="bilinear", antialias=True)
    top, left = (scaled[0] - height) // 2, (scaled[1] - width) // 2
    return image[top : top + height, left : left + width, :]


def export_saved_model(model, export_dir, version=1, labels=None, top_k=5):
    """Writes `model` as a SavedModel that TF Serving loads, `export_dir/<version>/`.

    The SavedModel holds two signatures, each with a `frames` input and the
    outputs `probabilities` `[batch, num_classes]` float32, `top_k_indices`
    `[batch, k]` int32, `top_k_scores` `[batch, k]` float32 and, when `labels`
    are given, `top_k_labels` `[batch, k]` strings:

    - `serving_default`: `frames` uint8 `[batch, num_frames, height, width, 3]`,
      RGB clips at the model's size.
    - `serving_jpeg`: `frames` string `[batch, num_frames]`, encoded images
      (JPEG, or PNG) of any size, decoded, resized so that they cover the
      model's size and centre cropped inside the graph.

    An existing `export_dir/<version>/` is replaced as a whole (nothing of the
    old export, such as its labels, survives): the new version is written
    beside it and renamed into place once complete, so TF Serving never loads
    a half-written one.

    Shapes are checked inside the graph, so a bad request fails with a message
    naming the expected shape however it reaches the model (TF Serving REST or
    gRPC, `saved_model_cli`, `tf.saved_model.load`). The labels are an asset,
    `assets/labels.txt`. Loading needs only TensorFlow.

    Args:
        model: a video model taking clips `(batch, frames, height, width, 3)`
            RGB 0..255 and returning class probabilities.
        export_dir: the model's base directory, as given to TF Serving's
            `--model_base_path`.
        version: positive int, the version subdirectory. Defaults to `1`.
        labels: optional list of class names, one per class. Defaults to `None`.
        top_k: int, how many top classes the signatures return (capped at the
            number of classes). Defaults to `5`.

    Returns:
        The path of the written version directory.

    Example:

    >>> model = keras_mvf.MobileNetV2Video(num_classes=3, num_frames=4,
    ...     width_multiplier=0.35, input_shape=(32, 32, 3))
    >>> export_saved_model(model, "/tmp/mvf", labels=["a", "b", "c"])
    '/tmp/mvf/1'
    """
    import tensorflow as tf

    common.check_backend()
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"`version` must be a positive int. Received: version={version!r}")
    if not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"`top_k` must be a positive int. Received: top_k={top_k!r}")
    num_frames, height, width, channels = common.clip_shape(model)
    num_classes = model.outputs[0].shape[-1]
    labels = common.check_labels(labels, num_classes)
    k = min(top_k, num_classes)

    archive = keras.export.ExportArchive()
    archive.track(model)
    # Readable after loading as `loaded.clip_shape[0]`: the unknown-rank signatures don't say it.
    archive.add_variable_collection(
        "clip_shape",
        [keras.Variable([num_frames, height, width, channels], dtype="int32", trainable=False)],
    )
    with tempfile.TemporaryDirectory() as scratch:
        table = None
        if labels is not None:
            # The file becomes the SavedModel asset `assets/labels.txt`.
            labels_file = os.path.join(scratch, LABELS_FILE)
            common.write_labels(labels_file, labels)
            table = tf.lookup.StaticHashTable(
                tf.lookup.TextFileInitializer(
                    labels_file,
                    tf.int64,
                    tf.lookup.TextFileIndex.LINE_NUMBER,
                    tf.string,
                    tf.lookup.TextFileIndex.WHOLE_LINE,
                ),
                default_value="",
            )
            archive.track(table)

        def predictions(clips):
            probabilities = tf.cast(model(clips, training=False), tf.float32)
            scores, indices = tf.math.top_k(probabilities, k)
            outputs = {
                "probabilities": probabilities,
                "top_k_indices": indices,
                "top_k_scores": scores,
            }
            if table is not None:
                outputs["top_k_labels"] = table.lookup(tf.cast(indices, tf.int64))
            return outputs

        def serve_frames(frames):
            frames = tf.ensure_shape(frames, [None, num_frames, height, width, channels])
            return predictions(tf.cast(frames, tf.float32))

        def serve_encoded(frames):
            frames = tf.ensure_shape(frames, [None, num_frames])

            def decode(image):
                image = tf.io.decode_image(image, channels=channels, expand_animations=False)
                return _resize_and_centre_crop(tf, image, height, width)

            images = tf.map_fn(
                decode,
                tf.reshape(frames, [-1]),
                fn_output_signature=tf.TensorSpec([height, width, channels], tf.float32),
            )
            return predictions(tf.reshape(images, [-1, num_frames, height, width, channels]))

        # Unknown-rank inputs: the checks above run in the graph for every caller.
        archive.add_endpoint(
            "serving_default",
            serve_frames,
            input_signature=[tf.TensorSpec(None, tf.uint8, name="frames")],
        )
        archive.add_endpoint(
            "serving_jpeg",
            serve_encoded,
            input_signature=[tf.TensorSpec(None, tf.string, name="frames")],
        )
        path = files.join(export_dir, str(version))
        files.makedirs(export_dir)
        with common.replacing(path, directory=True) as partial:
            archive.write_out(partial, verbose=False)
    return path
