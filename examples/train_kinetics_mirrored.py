"""Trains MVFNet-50 on Kinetics-400 with the paper's recipe on every local GPU.

`MirroredStrategy` replicates the model on each GPU; `--batch-size` is the
global batch (8 clips per GPU as in the paper) and the learning rate scales with
it (0.01 per 8 clips). Build the manifests once with `keras-mvf data index`.
Running the same command after a crash resumes from the last finished epoch.

    python examples/train_kinetics_mirrored.py k400_train.jsonl k400_val.jsonl \
        --out runs/k400_r50_8x8 --batch-size 64 --mixed-precision
"""

import argparse

import tensorflow as tf

from keras_mvf.training import train


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train_manifest")
    parser.add_argument("val_manifest")
    parser.add_argument("--out", default="runs/k400")
    parser.add_argument("--frames", type=int, default=8, help="clip length (4, 8 or 16)")
    parser.add_argument("--interval", type=int, default=8, help="frame interval (16, 8 or 4)")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="global batch; default 8 per replica"
    )
    parser.add_argument("--mixed-precision", action="store_true")
    args = parser.parse_args(argv)

    strategy = tf.distribute.MirroredStrategy()
    batch_size = args.batch_size or 8 * strategy.num_replicas_in_sync
    train(
        "mvfnet50",
        args.train_manifest,
        args.val_manifest,
        out_dir=args.out,
        recipe="kinetics400",
        num_frames=args.frames,
        frame_interval=args.interval,
        batch_size=batch_size,
        backbone_weights="imagenet",
        strategy=strategy,
        mixed_precision=args.mixed_precision,
    )


if __name__ == "__main__":
    main()
