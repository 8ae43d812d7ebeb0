"""Fine-tunes a video model on a folder of labelled videos: `ROOT/<class name>/<video file>`.

Indexes the folder into two manifests (every `--val-every`-th video of each class
goes to validation), then trains with `keras_mvf.training.train` and the UCF-101
recipe (lr 0.01, 25 epochs) unless flags say otherwise. Start from a Kinetics
release with `--weights mvfnet50_k400_8x8` (or a preset directory written by
`keras-mvf convert R50_8x8.pth k400/`) and the same `--model`: every variable
is loaded, in the checkpoint's "pytorch" layout, but the head, new for your
classes; a checkpoint of another model is an error. Or start from ImageNet with
the default `--backbone-weights imagenet` (`none` for random).

    python examples/finetune_folder.py my_videos/ --out runs/my_videos \
        --model mvfnet50 --frames 8 --batch-size 8
"""

import argparse
import os

from keras_mvf.data import Annotation, index_annotations, write_manifest
from keras_mvf.data.video import VIDEO_EXTENSIONS
from keras_mvf.training import train


def index_folder(root, out_dir, val_every):
    """Writes `train.jsonl` and `val.jsonl` manifests for `root/<class>/<video>`."""
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if not classes:
        raise ValueError(f"No class folders in {root!r}; expected ROOT/<class>/<video>.")
    splits = {"train": [], "val": []}
    for label, name in enumerate(classes):
        videos = sorted(
            f
            for f in os.listdir(os.path.join(root, name))
            if os.path.splitext(f)[1].lower() in VIDEO_EXTENSIONS
        )
        for i, video in enumerate(videos):
            path = os.path.join(name, video)
            split = "val" if i % val_every == val_every - 1 else "train"
            splits[split].append(Annotation((path,), label, source=path))
    manifests = {}
    for split, annotations in splits.items():
        entries, problems = index_annotations(annotations, root)
        for problem in problems:
            print(f"skipped: {problem}")
        manifests[split] = write_manifest(
            os.path.join(out_dir, f"{split}.jsonl"), entries, classes, root
        )
    return manifests


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="folder with one sub-folder of videos per class")
    parser.add_argument("--out", default="runs/finetune", help="run folder")
    parser.add_argument("--model", default="mvfnet50", help="a name from `keras-mvf models`")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=224, help="training crop size")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=None, help="recipe default: 25")
    parser.add_argument(
        "--weights",
        default=None,
        help="release name, preset directory or weights file to start from",
    )
    parser.add_argument("--backbone-weights", default="imagenet")
    parser.add_argument("--val-every", type=int, default=5)
    args = parser.parse_args(argv)

    os.makedirs(args.out, exist_ok=True)
    manifests = index_folder(args.root, args.out, args.val_every)
    backbone = None if args.backbone_weights == "none" or args.weights else args.backbone_weights
    train(
        args.model,
        manifests["train"],
        manifests["val"],
        out_dir=args.out,
        recipe="ucf101",
        num_frames=args.frames,
        crop_size=args.size,
        short_side=round(args.size * 256 / 224),
        batch_size=args.batch_size,
        epochs=args.epochs,
        weights=args.weights,
        backbone_weights=backbone,
    )
    print(f"Trained model: {os.path.join(args.out, 'model.keras')}")


if __name__ == "__main__":
    main()
