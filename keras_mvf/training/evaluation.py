"""Evaluation (top-1, top-5, mean class accuracy, per-video CSV, confusion matrix) and features.

Two protocols, as in the paper: "fast" (one clip, centre crop) and "accurate"
(several clips x 3 crops per video, softmax scores averaged over the views).
"""

import contextlib
import csv
import io
import json
import os

import keras
import numpy as np

from keras_mvf.models.pretrained import load_model
from keras_mvf.utils import files
from keras_mvf.utils.progress import progress_verbosity

PROTOCOLS = ("fast", "accurate")


def top_k_accuracy(scores, labels, k):
    """Fraction of rows whose label is among the `k` highest scores."""
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1)[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


def confusion_matrix(labels, predictions, num_classes):
    """`(num_classes, num_classes)` counts; rows are true labels, columns predictions."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def per_class_accuracy(matrix):
    """Recall of every class (NaN for classes with no video)."""
    counts = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.diag(matrix) / counts


def clip_dataset(
    model,
    data,
    training=False,
    num_clips=1,
    num_crops=1,
    batch_size=8,
    sampling="dense",
    frame_interval=8,
    short_side=None,
    crop_size=None,
    root=None,
):
    """`(dataset, manifest)` of evaluation clips for `model` from a manifest.

    Frames per clip and crop size are read from the model's input; the crop
    size falls back to `crop_size` (or 224) for models of any input size. The
    videos come in manifest order and a video that fails to decode raises.
    """
    from keras_mvf import data as video_data

    _, num_frames, height, _, _ = model.input_shape
    crop_size = height or crop_size or 224
    manifest = video_data.load_manifest(data, root)
    dataset = video_data.build_dataset(
        manifest,
        training=training,
        num_frames=num_frames,
        sampling=sampling,
        frame_interval=frame_interval,
        batch_size=batch_size,
        crop_size=crop_size,
        short_side=short_side or round(crop_size * 256 / 224),
        num_clips=num_clips,
        num_crops=num_crops,
        deterministic=True,
        skip_bad_videos=False,
    )
    return dataset, manifest


def predict_views(function, dataset, num_videos, verbose=None):
    """Applies `function` to every view of every video and averages over the views.

    Args:
        function: maps clips `(n, T, H, W, 3)` to an array `(n, D)`.
        dataset: batches of `(clips, labels)`; clips `(batch, T, H, W, 3)` or,
            with several views, `(batch, views, T, H, W, 3)`.
        num_videos: videos in `dataset`, for the progress bar.
        verbose: 0 (silent), 1 (a progress bar) or 2 (one line at the end).
            Defaults to 1 on a terminal, 2 otherwise.

    Returns:
        `(outputs (num_videos, D), labels (num_videos,))`.
    """
    if verbose is None:
        verbose = progress_verbosity()
    progress = keras.utils.Progbar(num_videos, verbose=verbose, unit_name="video")
    outputs, labels = [], []
    for clips, batch_labels in dataset:
        clips = np.asarray(clips)
        views = clips.shape[1] if clips.ndim == 6 else 1
        flat = clips.reshape(-1, *clips.shape[-4:])
        result = np.asarray(function(flat), np.float32)
        outputs.append(result.reshape(len(clips), views, -1).mean(axis=1))
        labels.append(np.asarray(batch_labels))
        progress.add(len(clips))
    return np.concatenate(outputs), np.concatenate(labels)


def on_replicas(model, strategy):
    """A function clips -> `model` outputs (numpy) that splits each batch among the replicas.

    Each replica of `strategy` (a `tf.distribute.Strategy` on this host, such
    as `MirroredStrategy` over the local GPUs) runs the model on its share of
    the batch; the shares' outputs are put back together in order, so the
    result is the one device's (up to float rounding).
    """
    import tensorflow as tf

    from keras_mvf.training import distribute

    if distribute.is_multi_worker(strategy):
        raise ValueError(
            "Evaluation splits batches among the replicas of this host; a multi-worker "
            "strategy spans several hosts. Use `mirrored` on each host, on a share of the videos."
        )
    replicas = strategy.num_replicas_in_sync
    step = tf.function(
        lambda clips: strategy.run(lambda x: model(x, training=False), args=(clips,)),
        reduce_retracing=True,
    )

    def run(clips):
        shares = np.array_split(clips, replicas)
        values = strategy.experimental_distribute_values_from_function(
            lambda context: tf.constant(shares[context.replica_id_in_sync_group])
        )
        outputs = strategy.experimental_local_results(step(values))
        return np.concatenate([np.asarray(output) for output in outputs])

    return run


def evaluate(
    model,
    data,
    protocol="fast",
    num_clips=None,
    num_crops=None,
    batch_size=8,
    sampling="dense",
    frame_interval=8,
    short_side=None,
    crop_size=None,
    root=None,
    out_dir=None,
    verbose=None,
    strategy=None,
):
    """Evaluates a video classifier on a manifest.

    Args:
        model: a Keras model (clips -> class probabilities), a `.keras` file,
            a preset directory or a release name.
        data: a manifest file (`keras_mvf.data`).
        protocol: `"fast"` (1 clip x centre crop) or `"accurate"` (10 clips x 3
            crops); `num_clips` / `num_crops` override it. Defaults to `"fast"`.
        batch_size: videos per batch. Defaults to `8`.
        sampling, frame_interval: clip sampling, as in training.
        short_side, crop_size: test resize and crop; the crop defaults to the
            model's input size and the short side to `crop_size * 256 / 224`.
        root: folder the manifest paths are relative to.
        out_dir: if given, writes `predictions.csv` (per video: true label
            and class, top-5 labels, class names (`|`-separated) and scores),
            `per_class.csv`, `confusion.png` and `metrics.json` there.
        verbose: progress, as `predict_views`.
        strategy: None (one device), a name of `keras_mvf.training.get_strategy`
            (`"mirrored"`: every local GPU, or every logical CPU) or a
            `tf.distribute.Strategy` on this host: each batch is split among
            its replicas (see `on_replicas`), with the one device's results.

    Returns:
        dict with `top1`, `top5`, `mean_class_accuracy`, `num_videos`, `views`,
        `per_class` (list) and `confusion` (nested list).

    Raises:
        ValueError: before any video is decoded, for a manifest with unlabelled
            videos (accuracy needs labels; `extract_features` takes them) or
            labels outside the model's classes.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"`protocol` must be one of {PROTOCOLS}. Received: protocol={protocol!r}")
    default_clips, default_crops = (1, 1) if protocol == "fast" else (10, 3)
    num_clips = num_clips or default_clips
    num_crops = num_crops or default_crops
    if strategy is not None:
        from keras_mvf.training import distribute

        strategy = distribute.get_strategy(strategy)
    if isinstance(model, (str, os.PathLike)):
        # In the strategy's scope, the variables are copied to every replica.
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            model = load_model(model)[0]
    dataset, manifest = clip_dataset(
        model,
        data,
        num_clips=num_clips,
        num_crops=num_crops,
        batch_size=batch_size,
        sampling=sampling,
        frame_interval=frame_interval,
        short_side=short_side,
        crop_size=crop_size,
        root=root,
    )
    check_labels(manifest, model.output_shape[-1], data)
    function = model.predict_on_batch if strategy is None else on_replicas(model, strategy)
    scores, labels = predict_views(function, dataset, len(manifest.entries), verbose=verbose)
    num_classes = scores.shape[1]
    predictions = scores.argmax(axis=1)
    matrix = confusion_matrix(labels, predictions, num_classes)
    per_class = per_class_accuracy(matrix)
    results = {
        "top1": top_k_accuracy(scores, labels, 1),
        "top5": top_k_accuracy(scores, labels, 5),
        "mean_class_accuracy": float(np.nanmean(per_class)),
        "num_videos": int(len(labels)),
        "views": num_clips * num_crops,
        "per_class": [None if np.isnan(a) else float(a) for a in per_class],
        "confusion": matrix.tolist(),
    }
    if out_dir is not None:
        classes = (
            manifest.classes
            if len(manifest.classes) == num_classes
            else [str(i) for i in range(num_classes)]
        )
        write_reports(out_dir, results, scores, labels, manifest, classes)
    return results


def check_labels(manifest, num_classes, name):
    """Refuses entries accuracy cannot be measured on: unlabelled, or beyond `num_classes`.

    An unlabelled video (`NO_LABEL`) would count as class -1, that is the last
    class, and a label past the model's classes has no score to compare.
    """
    from keras_mvf.data import NO_LABEL

    unlabelled = [entry.path for entry in manifest.entries if entry.label == NO_LABEL]
    if unlabelled:
        raise ValueError(
            f"{name}: {len(unlabelled)} of the {len(manifest.entries)} videos have no label "
            f"(NO_LABEL), the first {unlabelled[0]}; accuracy needs labelled videos (for "
            f"features of unlabelled videos, see extract_features: keras-mvf extract-features)."
        )
    for entry in manifest.entries:
        if entry.label >= num_classes:
            raise ValueError(
                f"{name}: video {entry.path} has label {entry.label}, outside the model's "
                f"{num_classes} classes (0 to {num_classes - 1})."
            )


def write_reports(out_dir, results, scores, labels, manifest, classes):
    """Writes predictions.csv, per_class.csv, metrics.json and confusion.png to `out_dir`.

    `out_dir` may be a URI (`gs://...`).
    """
    files.makedirs(out_dir)
    top = np.argsort(-scores, axis=1)[:, :5]
    with files.open_file(files.join(out_dir, "predictions.csv"), "w") as file:
        writer = csv.writer(file)
        writer.writerow(
            ["video", "label", "class", "correct", "top5_labels", "top5_classes", "top5_scores"]
        )
        for entry, label, row, score in zip(manifest.entries, labels, top, scores, strict=True):
            writer.writerow(
                [
                    entry.path,
                    int(label),
                    classes[label],
                    int(row[0] == label),
                    " ".join(str(int(i)) for i in row),
                    "|".join(classes[i] for i in row),
                    " ".join(f"{score[i]:.4f}" for i in row),
                ]
            )
    counts = np.asarray(results["confusion"]).sum(axis=1)
    with files.open_file(files.join(out_dir, "per_class.csv"), "w") as file:
        writer = csv.writer(file)
        writer.writerow(["label", "class", "videos", "accuracy"])
        for label, (name, count, accuracy) in enumerate(
            zip(classes, counts, results["per_class"], strict=True)
        ):
            writer.writerow([label, name, int(count), "" if accuracy is None else accuracy])
    with files.open_file(files.join(out_dir, "metrics.json"), "w") as file:
        summary = {
            key: results[key]
            for key in ("top1", "top5", "mean_class_accuracy", "num_videos", "views")
        }
        json.dump(summary, file, indent=2)
    plot_confusion(np.asarray(results["confusion"]), classes, files.join(out_dir, "confusion.png"))


def plot_confusion(matrix, classes, path):
    """Saves the row-normalised confusion matrix as a PNG heat map."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = min(4 + 0.35 * len(classes), 40)
    figure, axes = pyplot.subplots(figsize=(size, size))
    image = axes.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    if len(classes) <= 60:
        ticks = np.arange(len(classes))
        axes.set_xticks(ticks, classes, rotation=90, fontsize=8)
        axes.set_yticks(ticks, classes, fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    with files.open_file(path, "wb") as file:
        figure.savefig(file, dpi=100, format="png")
    pyplot.close(figure)


def feature_model(model):
    """A function clips -> pooled features `(n, channels)`, averaged over frames.

    For a classifier (a model with the TSN head) the features are those of the
    per-frame global average pool ("avg_pool", 2048-d for ResNet-50), averaged
    over the clip's frames; a model built with `include_top=False,
    pooling="avg"` already returns them.
    """
    names = {layer.name for layer in model.layers}
    if "avg_pool" not in names or "predictions" not in names:
        return model.predict_on_batch
    frames = model.input_shape[1]
    pooled = keras.Model(model.inputs, model.get_layer("avg_pool").output)

    def features(clips):
        per_frame = np.asarray(pooled.predict_on_batch(clips))
        return per_frame.reshape(len(clips), frames, -1).mean(axis=1)

    return features


def extract_features(
    model,
    data,
    out_path,
    num_clips=1,
    num_crops=1,
    batch_size=8,
    sampling="dense",
    frame_interval=8,
    short_side=None,
    crop_size=None,
    root=None,
    verbose=None,
):
    """Pooled features of every video of a manifest, saved to `.npz` or `.npy`.

    Args:
        model: a Keras model, `.keras` file, preset directory or release name
            (see `feature_model`).
        data: a manifest file.
        out_path: `.npz` (arrays `features`, `labels`, `videos`, `classes`) or
            `.npy` (the features only).
        num_clips, num_crops: views per video; features are averaged over them.
        other arguments: as `evaluate`.

    Returns:
        The features, float32 `(num_videos, channels)`.
    """
    if not str(out_path).endswith((".npz", ".npy")):
        raise ValueError(f"`out_path` must end in .npz or .npy. Received: out_path={out_path}")
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)[0]
    dataset, manifest = clip_dataset(
        model,
        data,
        num_clips=num_clips,
        num_crops=num_crops,
        batch_size=batch_size,
        sampling=sampling,
        frame_interval=frame_interval,
        short_side=short_side,
        crop_size=crop_size,
        root=root,
    )
    features, labels = predict_views(
        feature_model(model), dataset, len(manifest.entries), verbose=verbose
    )
    buffer = io.BytesIO()  # numpy's zip writer reads back what it wrote: not on a stream
    if str(out_path).endswith(".npy"):
        np.save(buffer, features)
    else:
        np.savez(
            buffer,
            features=features,
            labels=labels,
            videos=np.array([entry.path for entry in manifest.entries]),
            classes=np.array(manifest.classes),
        )
    with files.open_file(out_path, "wb") as file:
        file.write(buffer.getvalue())
    return features
