"""`keras-mvf demo`: C2D versus MVFNet on a synthetic "something-something", on the CPU.

The synthetic classes come in time-reversed pairs (see `synthetic`), so a C2D
model, which averages per-frame predictions, can at best find the pair (50%
top-1 on 10 classes, chance 10%), while MVFNet's temporal convolutions can
also tell the direction. Both models share the backbone, data, recipe and seed;
the only difference is the temporal module (MVF on half the channels, the
Something-Something setting, against none).
"""

import os
import shutil
import time

import numpy as np

# Sizes of the full and `--quick` runs. The full run takes 4 to 5 minutes on a
# busy 2-core CPU (docs/training.md) and shows the gap; `--quick` only exercises the steps.
SETTINGS = {
    "full": {"size": 48, "train_per_class": 100, "val_per_class": 20, "epochs": 8},
    "quick": {"size": 32, "train_per_class": 4, "val_per_class": 2, "epochs": 1},
}
NUM_FRAMES = 8  # frames per clip the models see
VIDEO_FRAMES = 12  # frames per video: keeps test-time sampling symmetric in time
MVF_ALPHA = 0.5  # the Something-Something setting


def demo_model(temporal_module, **kwargs):
    """The demo backbone: a one-block-per-stage ResNet, 16 filters wide, MVF in every stage."""
    import keras_mvf

    return keras_mvf.ResNetVideo(
        (1, 1, 1, 1),
        base_width=16,
        stages=(2, 3, 4, 5),
        temporal_module=temporal_module,
        **kwargs,
    )


def plot_curves(histories, path, chance=None):
    """Loss and top-1 per epoch of every model (train solid, validation dashed), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(1, 2, figsize=(10, 4))
    for index, (name, history) in enumerate(histories.items()):
        epochs = np.arange(1, len(history["loss"]) + 1)
        colour = f"C{index}"
        for axis, key in zip(axes, ("loss", "accuracy"), strict=True):
            axis.plot(epochs, history[key], color=colour, label=f"{name} train")
            axis.plot(epochs, history[f"val_{key}"], "--", color=colour, label=f"{name} val")
    if chance is not None:
        axes[1].axhline(chance, color="grey", linestyle=":", label="chance")
    axes[0].set_ylabel("loss")
    axes[1].set_ylabel("top-1 accuracy")
    for axis in axes:
        axis.set_xlabel("epoch")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def pair_accuracy(confusion):
    """Fraction of videos whose prediction is in the right time-reversed pair (either order)."""
    matrix = np.asarray(confusion)
    pairs = matrix.reshape(len(matrix) // 2, 2, len(matrix) // 2, 2).sum(axis=(1, 3))
    return float(np.trace(pairs) / matrix.sum())


def run_demo(out_dir="mvf_demo", quick=False, seed=0, verbose=1):
    """Generates the synthetic set, trains C2D and MVFNet, evaluates both and predicts a video.

    The demo always starts afresh: the `videos/`, `c2d/` and `mvfnet/` folders
    of an earlier run in `out_dir` are replaced (otherwise `train()` would
    resume the finished runs and train nothing).

    Returns:
        dict `{model name: evaluation results}` (see `evaluate`).
    """
    import keras

    from keras_mvf import data
    from keras_mvf.training.evaluation import evaluate
    from keras_mvf.training.synthetic import CLASS_NAMES, synthetic_clip, write_synthetic_videos
    from keras_mvf.training.train import train

    settings = SETTINGS["quick" if quick else "full"]
    size = settings["size"]
    data_dir = os.path.join(out_dir, "videos")
    for folder in (data_dir, os.path.join(out_dir, "c2d"), os.path.join(out_dir, "mvfnet")):
        if os.path.isdir(folder):
            print(f"Replacing {folder} from an earlier run")
            shutil.rmtree(folder)
    start = time.perf_counter()
    manifests = {
        split: write_synthetic_videos(
            data_dir,
            split,
            settings[f"{split}_per_class"],
            num_frames=VIDEO_FRAMES,
            size=size,
            seed=seed + offset,
        )
        for offset, split in enumerate(("train", "val"))
    }
    print(
        f"Wrote {len(CLASS_NAMES) * settings['train_per_class']} training and "
        f"{len(CLASS_NAMES) * settings['val_per_class']} validation videos to {data_dir} "
        f"({time.perf_counter() - start:.0f} s)"
    )

    results, histories, times = {}, {}, {}
    for name, temporal_module in (("C2D", None), ("MVFNet", "mvf")):
        print(f"\nTraining {name} ...")
        start = time.perf_counter()
        model, history = train(
            lambda temporal_module=temporal_module, **kwargs: demo_model(temporal_module, **kwargs),
            manifests["train"],
            manifests["val"],
            out_dir=os.path.join(out_dir, name.lower()),
            recipe="sthv2",
            num_frames=NUM_FRAMES,
            alpha=MVF_ALPHA if temporal_module else 0.0,
            crop_size=size,
            short_side=size,
            train_crop="multi_scale",
            batch_size=16,
            epochs=settings["epochs"],
            base_lr=0.05,
            warmup_epochs=1,
            lr_steps=(round(settings["epochs"] * 0.8),),
            dropout=0.0,
            seed=seed,
            tensorboard=False,
            verbose=verbose,
        )
        times[name] = time.perf_counter() - start
        histories[name] = history.history
        results[name] = evaluate(
            model, manifests["val"], sampling="uniform", crop_size=size, short_side=size, verbose=0
        )

    chance = 1 / len(CLASS_NAMES)
    print(
        f"\nSynthetic something-something: {len(CLASS_NAMES)} classes in time-reversed "
        f"pairs, {results['C2D']['num_videos']} validation videos"
    )
    print(f"{'model':<8} {'top-1':>7} {'top-5':>7} {'right pair':>11} {'train time':>11}")
    for name, result in results.items():
        print(
            f"{name:<8} {result['top1']:>7.1%} {result['top5']:>7.1%} "
            f"{pair_accuracy(result['confusion']):>11.1%} {times[name]:>10.0f}s"
        )
    print(
        f"{'chance':<8} {chance:>7.1%}   (C2D sees the same frames in a clip and its reversal, "
        "so its top-1 is about half its right-pair rate)"
    )

    curves = os.path.join(out_dir, "training_curves.png")
    plot_curves(histories, curves, chance)
    saved = os.path.join(out_dir, "mvfnet", "model.keras")
    print(f"\nTraining curves: {curves}\nTrained MVFNet: {saved}")

    rng = np.random.default_rng(seed + 99)
    label = int(rng.integers(len(CLASS_NAMES)))
    held_out = os.path.join(out_dir, "held_out.mp4")
    data.write_video(held_out, synthetic_clip(label, rng, VIDEO_FRAMES, size), 8.0)
    indices = data.uniform_indices(data.probe(held_out).num_frames, NUM_FRAMES, training=False)
    frames = data.read_frames(held_out, np.asarray(indices).reshape(-1))
    mvfnet = keras.models.load_model(saved)
    probs = keras.ops.convert_to_numpy(mvfnet(frames[None], training=False))[0]
    print(f"\nHeld-out video {held_out} (true class: {CLASS_NAMES[label]}):")
    for index in np.argsort(-probs)[:5]:
        print(f"  {probs[index]:6.1%}  {CLASS_NAMES[index]}")
    return results
