"""Trains a tiny MVFNet with `train()` under a strategy and saves its final weights.

Run as a script by the strategy tests (each strategy needs a fresh process:
logical devices and collective ops are fixed when TensorFlow starts). Under
`multi_worker` every worker runs it with its own `TF_CONFIG`; each saves its
weights in its folder of the run (`keras_mvf.training.distribute.worker_dir`).
BatchNorm is frozen and dropout off, so that every replica computes exactly what
one device computes and the runs must agree up to float rounding. Under
`mirrored` it also evaluates the trained model on five small videos on one
device, with `evaluate(strategy=)` and with `keras-mvf evaluate --strategy
mirrored`, and saves the three results.
"""

import argparse
import json
import os
import sys

import numpy as np


def tiny_model(**kwargs):
    import keras

    import keras_mvf

    model = keras_mvf.ResNetVideo((1, 1, 1, 1), base_width=8, stages=(3, 4, 5), **kwargs)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
        if isinstance(layer, keras_mvf.MVFModule):
            layer.bn.trainable = False
    return model


def evaluate_both_ways(out, strategy):
    """Evaluates the run's model.keras on five videos on one device and under `strategy`.

    Writes `evaluation.json` (the metrics of `evaluate` on one device and
    under the strategy, and those `keras-mvf evaluate --strategy mirrored`
    wrote to `ram://`) and returns the scores of every video both ways.
    """
    import keras
    import tensorflow as tf

    from keras_mvf import data
    from keras_mvf.cli import main as cli
    from keras_mvf.training.evaluation import clip_dataset, evaluate, on_replicas, predict_views

    rng = np.random.default_rng(1)
    entries = []
    for i in range(5):
        name = f"video{i}.avi"
        data.write_video(os.path.join(out, name), rng.integers(0, 256, (12, 36, 48, 3), "uint8"))
        entries.append(data.VideoEntry(name, 12, 30.0, i % 3))
    manifest = data.write_manifest(os.path.join(out, "eval.jsonl"), entries, ["a", "b", "c"], out)
    model_path = os.path.join(out, "model.keras")
    # Two clips x three crops per video, batches of three videos: the last one is partial.
    views = {"protocol": "accurate", "num_clips": 2, "batch_size": 3, "sampling": "uniform"}
    results = {
        name: evaluate(model_path, manifest, strategy=chosen, verbose=0, **views)
        for name, chosen in (("one", None), ("mirrored", strategy))
    }
    argv = ["evaluate", model_path, "--data", manifest, "--strategy", "mirrored"]
    argv += ["--protocol", "accurate", "--clips", "2", "--batch-size", "3", "--sampling", "uniform"]
    # The reports go to TensorFlow's in-memory filesystem, as they would to an object store.
    assert cli([*argv, "--out", "ram://evaluation"]) == 0
    with tf.io.gfile.GFile("ram://evaluation/metrics.json") as file:
        results["command"] = json.load(file)
    assert tf.io.gfile.stat("ram://evaluation/confusion.png").length > 1000
    with open(os.path.join(out, "evaluation.json"), "w") as file:
        json.dump(results, file)
    model = keras.models.load_model(model_path, compile=False)
    with strategy.scope():
        replicated = keras.models.load_model(model_path, compile=False)
    dataset, _ = clip_dataset(model, manifest, num_clips=2, num_crops=3, batch_size=3)
    functions = (model.predict_on_batch, on_replicas(replicated, strategy))
    return [predict_views(function, dataset, 5, verbose=0)[0] for function in functions]


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--strategy", default="default")
    parser.add_argument("--cpus", type=int, default=1, help="logical CPU devices")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    import tensorflow as tf

    if args.cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * args.cpus
        )
    from keras_mvf.training import distribute, get_strategy, train

    # Before any other TensorFlow op: multi-worker collectives are set up at startup.
    strategy = get_strategy(args.strategy)
    rng = np.random.default_rng(0)
    clips = rng.integers(0, 256, (16, 4, 32, 32, 3)).astype("uint8")
    labels = rng.integers(0, 3, 16).astype("int32")
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = tf.data.Dataset.from_tensor_slices((clips, labels)).batch(4).with_options(options)
    model, history = train(
        tiny_model,
        dataset,
        dataset.take(2),
        out_dir=args.out,
        num_classes=3,
        num_frames=4,
        crop_size=32,
        alpha=0.5,
        dropout=0.0,
        epochs=2,
        base_lr=0.01,
        warmup_epochs=0.5,
        lr_steps=(1,),
        clip_norm=0.05,
        strategy=strategy,
        tensorboard=False,
        seed=1,
        verbose=0,
    )
    np.savez(
        f"{distribute.worker_dir(args.out, strategy)}/final.npz",
        *[w.numpy() for w in model.trainable_weights],
        loss=np.array(history.history["loss"]),
        val_loss=np.array(history.history["val_loss"]),
    )
    if args.strategy == "mirrored":
        one, mirrored = evaluate_both_ways(args.out, strategy)
        np.savez(os.path.join(args.out, "scores.npz"), one=one, mirrored=mirrored)
    return 0


if __name__ == "__main__":
    sys.exit(main())
