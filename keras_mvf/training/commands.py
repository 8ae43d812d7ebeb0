"""`keras-mvf train`, `evaluate`, `extract-features` and `demo`."""

RECIPE = " (default: the recipe's)"


def _add_data_flags(parser):
    parser.add_argument("--batch-size", type=int, default=8, help="videos per batch")
    parser.add_argument(
        "--sampling",
        choices=("dense", "uniform"),
        default="dense",
        help="frame sampling: dense (Kinetics) or uniform segments (Something-Something)",
    )
    parser.add_argument("--frame-interval", type=int, default=8, help="dense sampling step")
    parser.add_argument(
        "--short-side",
        type=int,
        default=None,
        help="test resize (short side) (default: crop size * 256 / 224)",
    )
    parser.add_argument(
        "--crop-size",
        type=int,
        default=None,
        help="test crop, for models of any input size (default: the model's input size, or 224)",
    )
    parser.add_argument(
        "--root",
        default=None,
        help="folder the manifest paths are relative to (default: the manifest's root)",
    )


def _ints(text):
    return tuple(int(value) for value in text.split(",") if value)


def register(subparsers):
    train = subparsers.add_parser(
        "train",
        help="train with a paper recipe (model.fit, resumable)",
        description="Train a video model; flags left out take the recipe's values. Running "
        "the same command again after a crash resumes from the last finished epoch.",
    )
    train.add_argument(
        "--train",
        required=True,
        help="training manifest, or packed TFRecords: a folder, a glob, or a URI (gs://...)",
    )
    train.add_argument(
        "--val", default=None, help="validation manifest or packed TFRecords, like --train"
    )
    train.add_argument(
        "--model",
        default=None,
        help="a name from `keras-mvf models` (default: the --weights' model, else mvfnet50)",
    )
    train.add_argument(
        "--recipe",
        default="kinetics400",
        choices=("kinetics400", "sthv1", "sthv2", "ucf101", "hmdb51"),
        help="the paper's recipe giving the defaults of the flags below",
    )
    train.add_argument(
        "--out", default="runs/train", help="logs and checkpoints folder, or a URI (gs://...)"
    )
    train.add_argument("--batch-size", type=int, default=8, help="global batch (clips)")
    train.add_argument(
        "--steps-per-epoch",
        type=int,
        default=None,
        help="batches per epoch (default: one pass over the training videos)",
    )
    train.add_argument(
        "--data-service",
        default=None,
        metavar="ADDRESS",
        help="tf.data service dispatcher (grpc://HOST:PORT, see `keras-mvf data serve`) "
        "whose workers decode the TFRecords (default: decode here)",
    )
    train.add_argument(
        "--frames", dest="num_frames", type=int, default=None, help="frames per clip" + RECIPE
    )
    train.add_argument(
        "--sampling",
        choices=("dense", "uniform"),
        default=None,
        help="frame sampling: dense (Kinetics) or uniform segments (Something-Something)" + RECIPE,
    )
    train.add_argument(
        "--frame-interval", type=int, default=None, help="dense sampling step" + RECIPE
    )
    train.add_argument(
        "--alpha", type=float, default=None, help="fraction of channels in MVF" + RECIPE
    )
    train.add_argument("--epochs", type=int, default=None, help="epochs to train" + RECIPE)
    train.add_argument(
        "--lr-steps",
        type=_ints,
        default=None,
        help="epochs at which the learning rate decays, e.g. 90,130" + RECIPE,
    )
    train.add_argument(
        "--lr-decay", type=float, default=0.1, help="factor of each learning-rate decay"
    )
    train.add_argument(
        "--warmup-epochs",
        type=float,
        default=None,
        help="epochs of linear learning-rate warm-up, may be a fraction" + RECIPE,
    )
    train.add_argument(
        "--warmup-start",
        type=float,
        default=None,
        help="fraction of the learning rate the warm-up starts from" + RECIPE,
    )
    train.add_argument(
        "--flip", action="store_true", default=None, help="random horizontal flips" + RECIPE
    )
    train.add_argument(
        "--no-flip", dest="flip", action="store_false", help="no horizontal flips" + RECIPE
    )
    train.add_argument(
        "--train-crop",
        choices=("random_resized", "multi_scale"),
        default="random_resized",
        help="training crop: random resized (Kinetics) or multi-scale corner crops (TSN)",
    )
    train.add_argument(
        "--crop-size", type=int, default=None, help="frame height and width" + RECIPE
    )
    train.add_argument(
        "--short-side", type=int, default=None, help="test resize (short side)" + RECIPE
    )
    train.add_argument(
        "--root",
        default=None,
        help="folder the manifest paths are relative to (default: the manifest's root)",
    )
    train.add_argument(
        "--base-lr", type=float, default=None, help="learning rate per 8 clips" + RECIPE
    )
    train.add_argument("--momentum", type=float, default=None, help="SGD momentum" + RECIPE)
    train.add_argument("--weight-decay", type=float, default=None, help="L2 weight decay" + RECIPE)
    train.add_argument(
        "--clip-norm",
        type=float,
        default=None,
        help="global gradient-norm clipping, 0 turns it off" + RECIPE,
    )
    train.add_argument(
        "--dropout", type=float, default=None, help="dropout before the classifier" + RECIPE
    )
    train.add_argument(
        "--weights",
        default=None,
        help="what to fine-tune from: a release name (`keras-mvf weights`), a preset directory, "
        "a .pth, .weights.h5 or .keras file; loaded strictly (only a head of another class "
        "count is re-initialised) into the architecture the source states",
    )
    train.add_argument("--backbone-weights", default=None, help="'imagenet' or a file")
    train.add_argument(
        "--strategy",
        default="default",
        help="default (one device), mirrored (local GPUs), multi_worker (hosts in "
        "TF_CONFIG) or tpu; train() checks the name",
    )
    train.add_argument(
        "--mixed-precision", action="store_true", help="float16 on GPU, bfloat16 elsewhere"
    )
    train.add_argument("--xla", action="store_true", help="compile the train step with XLA")
    train.add_argument(
        "--no-tensorboard",
        dest="tensorboard",
        action="store_false",
        help="write no TensorBoard logs",
    )
    train.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seeds weights, sampling and augmentation (default: unseeded)",
    )
    train.set_defaults(run=run_train)

    evaluate = subparsers.add_parser(
        "evaluate", help="top-1/top-5/mean class accuracy, predictions CSV, confusion matrix"
    )
    evaluate.add_argument(
        "model", help="a .keras file, a preset directory or a release name (`keras-mvf weights`)"
    )
    evaluate.add_argument("--data", required=True, help="manifest to evaluate on")
    evaluate.add_argument(
        "--protocol",
        choices=("fast", "accurate"),
        default="fast",
        help="fast: 1 clip x centre crop; accurate: 10 clips x 3 crops",
    )
    evaluate.add_argument(
        "--clips", type=int, default=None, help="clips per video (default: the protocol's)"
    )
    evaluate.add_argument(
        "--crops",
        type=int,
        choices=(1, 3),
        default=None,
        help="crops per clip (default: the protocol's)",
    )
    evaluate.add_argument("--out", default=None, help="folder for CSVs, confusion.png, metrics")
    evaluate.add_argument(
        "--strategy",
        default="default",
        choices=("default", "mirrored"),
        help="default (one device) or mirrored (each batch split among the local GPUs, or "
        "the logical CPUs)",
    )
    _add_data_flags(evaluate)
    evaluate.set_defaults(run=run_evaluate)

    features = subparsers.add_parser(
        "extract-features", help="pooled features per video to .npz/.npy"
    )
    features.add_argument(
        "model", help="a .keras file, a preset directory or a release name (`keras-mvf weights`)"
    )
    features.add_argument("--data", required=True, help="manifest of the videos")
    features.add_argument("--out", required=True, help="output .npz or .npy")
    features.add_argument("--clips", type=int, default=1, help="clips per video, averaged")
    features.add_argument(
        "--crops", type=int, choices=(1, 3), default=1, help="crops per clip, averaged"
    )
    _add_data_flags(features)
    features.set_defaults(run=run_extract_features)

    demo = subparsers.add_parser(
        "demo", help="C2D vs MVFNet on a synthetic something-something, on the CPU"
    )
    demo.add_argument("--out", default="mvf_demo", help="output folder")
    demo.add_argument("--quick", action="store_true", help="a tiny run (seconds) for tests")
    demo.add_argument("--seed", type=int, default=0, help="seeds the data and the models")
    demo.set_defaults(run=run_demo)


def run_train(args):
    from keras_mvf.training import train

    keys = (
        "num_frames",
        "sampling",
        "frame_interval",
        "alpha",
        "epochs",
        "lr_steps",
        "lr_decay",
        "warmup_epochs",
        "warmup_start",
        "flip",
        "train_crop",
        "crop_size",
        "short_side",
        "root",
        "base_lr",
        "momentum",
        "weight_decay",
        "clip_norm",
        "dropout",
        "weights",
        "backbone_weights",
        "strategy",
        "mixed_precision",
        "xla",
        "tensorboard",
        "seed",
        "batch_size",
        "steps_per_epoch",
        "data_service",
    )
    train(
        args.model or (None if args.weights else "mvfnet50"),
        args.train,
        args.val,
        out_dir=args.out,
        recipe=args.recipe,
        **{key: getattr(args, key) for key in keys},
    )
    return 0


def _data_kwargs(args):
    return {
        "batch_size": args.batch_size,
        "sampling": args.sampling,
        "frame_interval": args.frame_interval,
        "short_side": args.short_side,
        "crop_size": args.crop_size,
        "root": args.root,
    }


def run_evaluate(args):
    from keras_mvf.training.evaluation import evaluate

    results = evaluate(
        args.model,
        args.data,
        protocol=args.protocol,
        num_clips=args.clips,
        num_crops=args.crops,
        out_dir=args.out,
        strategy=None if args.strategy == "default" else args.strategy,
        **_data_kwargs(args),
    )
    print(
        f"{results['num_videos']} videos, {results['views']} view(s) each: "
        f"top-1 {results['top1']:.2%}, top-5 {results['top5']:.2%}, "
        f"mean class accuracy {results['mean_class_accuracy']:.2%}"
    )
    return 0


def run_extract_features(args):
    from keras_mvf.training.evaluation import extract_features

    features = extract_features(
        args.model,
        args.data,
        args.out,
        num_clips=args.clips,
        num_crops=args.crops,
        **_data_kwargs(args),
    )
    print(f"{features.shape[0]} videos x {features.shape[1]} features -> {args.out}")
    return 0


def run_demo(args):
    from keras_mvf.training.demo import run_demo as demo
    from keras_mvf.utils.progress import progress_verbosity

    demo(out_dir=args.out, quick=args.quick, seed=args.seed, verbose=progress_verbosity())
    return 0
